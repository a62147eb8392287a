"""2D loaders (PNG, 2D NIfTI, DICOM), the canonical layout, modality detection and slice choice."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from neurospine.errors import InputError
from neurospine.slice2d.io2d import (
    ASSUMED_FOV_MM,
    canonical_slice_index,
    input_slice_index,
    load_input,
    model_shape,
    resize2d,
)
from neurospine.slice2d.modality import detect_modality
from neurospine.slice2d.slice_choice import body_score, candidate_slices, choose_slice


def _gradient(h: int = 40, w: int = 30) -> np.ndarray:
    return (np.arange(h)[:, None] * 100 + np.arange(w)[None, :]).astype(np.float32)


def test_png_loaded_as_displayed(tmp_path) -> None:
    arr = (_gradient() / _gradient().max() * 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    loaded = load_input(tmp_path / "x.png")
    assert loaded.kind == "image2d" and loaded.plane is not None
    assert loaded.plane.shape == (40, 30)
    np.testing.assert_array_equal(loaded.plane.pixels, arr.astype(np.float32))
    assert not loaded.plane.spacing_known and not loaded.plane.orientation_known
    assert loaded.plane.spacing_mm[0] == pytest.approx(ASSUMED_FOV_MM / 40)


def test_rgb_jpeg_becomes_grey(tmp_path) -> None:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, 24:] = 200
    Image.fromarray(rgb).save(tmp_path / "c.jpg")
    loaded = load_input(tmp_path / "c.jpg")
    assert loaded.plane is not None and loaded.plane.pixels.ndim == 2 and loaded.plane.shape == (32, 48)


def test_nifti2d_ipl_is_canonical(tmp_path) -> None:
    g = _gradient()
    aff = np.array([[0, 0, -1.0, 0], [0, -0.5, 0, 0], [-2.0, 0, 0, 0], [0, 0, 0, 1]])  # I, P, L
    nib.save(nib.Nifti1Image(g[:, :, None], aff), tmp_path / "s.nii.gz")
    loaded = load_input(tmp_path / "s.nii.gz")
    assert loaded.plane is not None and loaded.plane.orientation_known
    np.testing.assert_array_equal(loaded.plane.pixels, g)
    assert loaded.plane.spacing_mm == pytest.approx((2.0, 0.5))


def test_nifti2d_flipped_and_transposed(tmp_path) -> None:
    g = _gradient()  # rows I, cols P wanted; store transposed with S and A directions
    stored = g[::-1, ::-1].T  # axis0 = A..., axis1 = S...
    aff = np.array([[0, 0, 1.0, 0], [1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])  # axis0 -> A, axis1 -> S
    nib.save(nib.Nifti1Image(stored[:, :, None], aff), tmp_path / "t.nii.gz")
    loaded = load_input(tmp_path / "t.nii.gz")
    assert loaded.plane is not None
    np.testing.assert_array_equal(loaded.plane.pixels, g)
    back = loaded.plane.from_canonical(loaded.plane.pixels)
    np.testing.assert_array_equal(back, stored)


def test_3d_slice_indices_roundtrip(tmp_path) -> None:
    data = np.random.default_rng(0).random((12, 10, 8)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 1.0, 1.0])), tmp_path / "v.nii.gz")  # RAS: axis0 is L-R
    loaded = load_input(tmp_path / "v.nii.gz")
    assert loaded.kind == "volume" and loaded.n_slices() == 12
    for i in (0, 3, 11):
        k = canonical_slice_index(loaded, i)
        assert input_slice_index(loaded, k) == i
        plane = loaded.slice_plane(k)
        # canonical rows run inferior (axis2 reversed), cols posterior (axis1 reversed)
        np.testing.assert_array_equal(plane.pixels, data[i, ::-1, ::-1].T)
    with pytest.raises(InputError):
        loaded.slice_plane(99)


@pytest.mark.parametrize("name,content", [("e.png", b""), ("bad.png", b"not an image"), ("x.txt", b"abc")])
def test_bad_inputs_raise_input_error(tmp_path, name, content) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError):
        load_input(tmp_path / name)


def test_missing_file() -> None:
    with pytest.raises(InputError):
        load_input("/nonexistent/file.png")


def test_resize_roundtrip_and_model_shape() -> None:
    a = np.zeros((20, 30), np.uint8)
    a[5:10, 10:20] = 3
    up = resize2d(a, (40, 60), order=0)
    np.testing.assert_array_equal(resize2d(up, (20, 30), order=0), a)
    assert model_shape((256, 256), (1.25, 1.25)) == (256, 256)
    assert model_shape((100, 200), (2.5, 0.625)) == (200, 100)


def test_modality_rules() -> None:
    hu = np.array([-1000.0, 0.0, 1200.0])
    assert detect_modality(hu, is_volume=True)[0] == "ct"
    assert detect_modality(np.array([0.0, 500.0]), is_volume=True)[0] == "mr"
    assert detect_modality(np.array([0.0, 255.0]), is_volume=False)[0] == "xray"
    assert detect_modality(hu, is_volume=True, dicom_modality="MR")[0] == "mr"
    assert detect_modality(hu, is_volume=False, dicom_modality="DX")[0] == "xray"
    assert detect_modality(hu, is_volume=True, override="xray")[0] == "xray"
    with pytest.raises(InputError):
        detect_modality(hu, is_volume=True, override="pet")


def test_slice_choice_midline_then_most_bodies() -> None:
    cands = candidate_slices(81, 1.0)
    assert 40 in cands and min(cands) >= 16 and max(cands) <= 64

    # bodies visible on slices 28..60 (midline 44, off the volume centre 40); the midline has most bodies
    def score(k: int) -> tuple[int, float]:
        if not 28 <= k <= 60:
            return (0, 0.0)
        return (6 if k == 44 else 5 if abs(k - 44) <= 2 else 4, 100.0)

    choice = choose_slice(81, 1.0, score)
    assert choice.index == 44
    # a better score far from the midline (a parasagittal artefact) is not taken
    choice = choose_slice(81, 1.0, lambda k: (9 if k == 60 else score(k)[0], score(k)[1]))
    assert choice.index == 44
    choice = choose_slice(81, 1.0, lambda k: (0, 0.0))
    assert choice.index == 40 and "mid-sagittal" in choice.how


def test_body_score_penalises_irregular_bodies() -> None:
    assert body_score([]) == (0, 0.0)
    assert body_score([800, 850, 900, 820])[0] == 4
    # a pedicle fragment and a fused pair cost two points each
    assert body_score([800, 850, 900, 100, 2000])[0] == 3 - 4


def test_dicom_radiograph(tmp_path) -> None:
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = (_gradient(48, 32) % 4000).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Modality = "DX"
    ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1"  # inverted: bright = low values
    ds.ImagerPixelSpacing = [0.15, 0.2]
    ds.PixelData = arr.tobytes()
    ds.save_as(str(tmp_path / "xr.dcm"), enforce_file_format=True)
    loaded = load_input(tmp_path / "xr.dcm")
    assert loaded.plane is not None and loaded.modality_tag == "DX"
    assert loaded.plane.spacing_known and loaded.plane.spacing_mm == pytest.approx((0.15, 0.2))
    np.testing.assert_allclose(loaded.plane.pixels, arr.max() - arr.astype(np.float32))
    assert detect_modality(loaded.plane.pixels, is_volume=False, dicom_modality=loaded.modality_tag)[0] == "xray"
