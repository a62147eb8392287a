"""Test helper: write a ``Volume`` as a classic single-frame MR DICOM series (any orientation, oblique too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurospine.io import Volume

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_series(vol: Volume, folder: Path, *, series_uid: str | None = None, shuffle_names: bool = True) -> list[str]:
    """One file per slice ``k`` (``data[:, :, k]``), with the geometry of ``vol.affine``; returns SOPInstanceUIDs
    in slice order. File names are shuffled so the loader must sort by position."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = _RAS_TO_LPS @ vol.affine
    sp = np.sqrt((lps[:3, :3] ** 2).sum(axis=0))
    row_dir, col_dir = lps[:3, 0] / sp[0], lps[:3, 1] / sp[1]
    data = np.asarray(vol.data)
    lo, hi = float(data.min()), float(data.max())
    scaled = np.round((data - lo) / max(hi - lo, 1e-9) * 4000).astype(np.uint16)
    study, series, frame = generate_uid(), series_uid or generate_uid(), generate_uid()
    uids = []
    nz = data.shape[2]
    order = np.random.default_rng(0).permutation(nz) if shuffle_names else np.arange(nz)
    for k in range(nz):
        meta = FileMetaDataset()
        uid = generate_uid()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "Test^Phantom", "NS0001", "O", ""
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
        ds.ReferringPhysicianName = ""
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", 1, k + 1
        ds.Manufacturer = "neurospine-tests"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions, ds.MRAcquisitionType = "SE", "NONE", "", "2D"
        ds.EchoTrainLength = 1
        ds.ImageOrientationPatient = [float(f"{v:.10f}") for v in (*row_dir, *col_dir)]
        pos = lps[:3, :3] @ np.array([0.0, 0.0, float(k)]) + lps[:3, 3]
        ds.ImagePositionPatient = [float(f"{v:.10f}") for v in pos]
        ds.PixelSpacing = [float(f"{sp[1]:.10f}"), float(f"{sp[0]:.10f}")]
        ds.SliceThickness = float(f"{sp[2]:.10f}")
        ds.Rows, ds.Columns = data.shape[1], data.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = np.ascontiguousarray(scaled[:, :, k].T).tobytes()
        ds.save_as(folder / f"im{order[k]:04d}.dcm", enforce_file_format=True)
        uids.append(uid)
    return uids


def oblique_affine(spacing_mm: tuple[float, float, float], degrees: float = 12.0) -> np.ndarray:
    """A sagittal-ish RAS affine (voxel axes ~P, ~I, ~R... ) tilted by ``degrees`` about two world axes."""
    a, b = np.deg2rad(degrees), np.deg2rad(degrees / 2)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    base = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # i->P, j->I, k->R (PIR)
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ base @ np.diag(spacing_mm)
    aff[:3, 3] = (12.5, -40.25, 30.0)
    return aff
