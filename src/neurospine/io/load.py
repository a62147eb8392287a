"""Reading images: NIfTI, DICOM series folders, NRRD/MHA. Every failure is an ``InputError``."""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt

from neurospine.errors import GeometryError, InputError
from neurospine.io.volume import Volume

log = logging.getLogger(__name__)

#: Refuse headers that announce more voxels than this before allocating anything.
MAX_VOXELS = 600_000_000
MAX_DIM = 8192
NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def load_volume(path: str | Path, *, check_intensity: bool = True) -> Volume:
    """Load a 3D image from a NIfTI file, NRRD/MHA file or DICOM series folder.

    ``check_intensity`` rejects empty, constant or non-finite images (set ``False`` for label maps
    that may legitimately be empty).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found", "check the path (relative paths start at the current folder)")
    if p.is_dir():
        vol = _load_dicom_series(p)
    else:
        low = p.name.lower()
        if p.stat().st_size == 0:
            raise InputError(p, "file is empty (0 bytes)", "re-export or re-copy the image")
        if low.endswith(NIFTI_SUFFIXES):
            vol = _load_nifti(p)
        elif low.endswith(ITK_SUFFIXES) or low.endswith(".dcm"):
            vol = _load_itk(p)
        else:
            raise InputError(
                p,
                f"unsupported file type '{p.suffix}'",
                "give a NIfTI (.nii/.nii.gz), NRRD/MHA file or a folder holding one DICOM series",
            )
    if check_intensity:
        check_image_values(vol)
    return vol


def check_image_values(vol: Volume) -> None:
    """Reject NaN/inf, empty and constant images."""
    data = vol.data
    if data.size == 0:
        raise InputError(vol.source, "image has no voxels", "check the file")
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.any():
            raise InputError(
                vol.source,
                f"image contains {int(bad.sum())} NaN/inf voxels",
                "replace them (e.g. fslmaths -nan) or re-export the image",
            )
    lo, hi = float(np.min(data)), float(np.max(data))
    if lo == hi:
        what = "empty (all zero)" if hi == 0 else f"constant (every voxel = {hi:g})"
        raise InputError(vol.source, f"image is {what}", "check that the right file was given")


def _squeeze_to_3d(arr_shape: tuple[int, ...], p: Path) -> tuple[int, ...]:
    shape = tuple(int(s) for s in arr_shape)
    if any(s <= 0 for s in shape):
        raise InputError(p, f"header declares a non-positive dimension {shape}", "repair or re-export the image")
    if any(s > MAX_DIM for s in shape) or int(np.prod([float(s) for s in shape])) > MAX_VOXELS:
        raise InputError(p, f"header declares an absurd size {shape}", "the header is corrupt; re-export the image")
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 2:
        raise InputError(
            p,
            f"image is 2D {shape}, a 3D volume is needed",
            "give the whole 3D series (for a 2D slice use `neurospine slice2d`)",
        )
    if len(shape) == 4:
        raise InputError(
            p,
            f"image is 4D {shape}",
            "extract one 3D volume first (e.g. fslroi IMG OUT 0 1 or the mean over time)",
        )
    if len(shape) != 3:
        raise InputError(p, f"image has {len(shape)} dimensions {shape}", "give a 3D volume")
    if min(shape) == 1:
        raise InputError(
            p,
            f"image is a single slice {shape} (2D stored as 3D), a 3D volume is needed",
            "give the whole 3D series (for a 2D slice use `neurospine slice2d`)",
        )
    return shape


def _load_nifti(p: Path) -> Volume:
    if p.name.lower().endswith(".gz"):
        with p.open("rb") as fh:
            magic = fh.read(2)
        if magic != b"\x1f\x8b":
            raise InputError(p, "named .gz but is not gzip-compressed", "rename it to .nii or re-compress it")
    _check_raw_pixdim(p)
    try:
        img = nib.load(str(p))
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(
            p, f"cannot read the file ({_first_line(e)})", "the file is truncated or corrupt; copy it again"
        ) from e
    except (nib.filebasedimages.ImageFileError, ValueError) as e:
        raise InputError(
            p, f"not a readable NIfTI image ({_first_line(e)})", "check the file type; convert it with dcm2niix"
        ) from e
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(p, "not a NIfTI image", "convert it to NIfTI")
    header = img.header
    shape = _squeeze_to_3d(tuple(img.shape), p)
    zooms = header.get_zooms()[:3]
    if any(float(z) <= 0 or not np.isfinite(float(z)) for z in zooms):
        raise GeometryError(
            p, f"zero or negative voxel spacing {tuple(float(z) for z in zooms)} mm", "set positive pixdim values"
        )
    _check_declared_size(p, img, shape)
    try:
        data = np.asanyarray(img.dataobj).reshape(shape)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile, ValueError) as e:
        raise InputError(
            p, f"image data cannot be read ({e})", "the file is truncated or corrupt; copy it again"
        ) from e
    affine = img.affine
    if affine is None:
        raise GeometryError(p, "no affine in header", "repair the header")
    return Volume(_native_dtype(data), np.asarray(affine, dtype=np.float64), str(p))


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split("\n")[:1]).strip()
    return text[:200] or type(e).__name__


def _check_declared_size(p: Path, img: nib.Nifti1Image | nib.Nifti2Image, shape: tuple[int, ...]) -> None:
    """Refuse a header that declares more data than the file can hold, before allocating it."""
    itemsize = np.dtype(img.get_data_dtype()).itemsize
    needed = int(np.prod([float(s) for s in shape])) * itemsize + int(img.header.get("vox_offset", 0) or 0)
    if p.name.lower().endswith(".gz"):
        with p.open("rb") as fh:
            fh.seek(-4, 2)
            isize = int.from_bytes(fh.read(4), "little")  # uncompressed size mod 2**32 (single member)
        available = isize if needed < 2**32 else None
    else:
        available = p.stat().st_size
    if available is not None and available < needed:
        raise InputError(
            p,
            f"file is truncated or corrupt: the header declares {shape} voxels ({needed} bytes) "
            f"but the file holds {available} bytes",
            "the file is truncated or its header is corrupt; copy or re-export it",
        )


def _check_raw_pixdim(p: Path) -> None:
    """nibabel silently replaces zero pixdim by 1; look at the header as written."""
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    try:
        with opener(p, "rb") as fh:
            block = fh.read(348)
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(p, f"cannot read the file ({e})", "the file is truncated or corrupt; copy it again") from e
    if len(block) < 348:
        raise InputError(p, "file is shorter than a NIfTI header", "the file is truncated or not NIfTI")
    for endian in ("<", ">"):
        if int(np.frombuffer(block[:4], dtype=f"{endian}i4")[0]) == 348:
            pixdim = np.frombuffer(block[76:108], dtype=f"{endian}f4")[1:4]
            if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
                raise GeometryError(
                    p,
                    f"zero, negative or invalid voxel spacing {tuple(float(v) for v in pixdim)} mm in the header",
                    "set positive pixdim values (e.g. nibabel header.set_zooms) or re-export the image",
                )
            return


def _native_dtype(data: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    if data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    return data


def _itk_to_volume(image: object, p: Path) -> Volume:
    import SimpleITK as sitk

    assert isinstance(image, sitk.Image)
    if image.GetDimension() != 3:
        dims = image.GetSize()
        _squeeze_to_3d(tuple(reversed(dims)), p)
        raise InputError(p, f"image has {image.GetDimension()} dimensions", "give a 3D volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(p, "image has several components per voxel (colour/vector)", "give a scalar image")
    arr = sitk.GetArrayFromImage(image)  # (z, y, x)
    data = np.ascontiguousarray(np.transpose(arr, (2, 1, 0)))
    spacing = np.array(image.GetSpacing(), dtype=np.float64)
    if np.any(spacing <= 0):
        raise GeometryError(p, f"zero or negative spacing {tuple(spacing)} mm", "repair the header")
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    origin = np.array(image.GetOrigin(), dtype=np.float64)
    lps = np.eye(4)
    lps[:3, :3] = direction * spacing[None, :]
    lps[:3, 3] = origin
    return Volume(data, _LPS_TO_RAS @ lps, str(p))


def _load_itk(p: Path) -> Volume:
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        reader.ReadImageInformation()
        size = reader.GetSize()
        _squeeze_to_3d(tuple(reversed(size)), p)
        image = reader.Execute()
    except RuntimeError as e:
        raise InputError(
            p, f"cannot read the image ({str(e).strip().splitlines()[-1]})", "check the file; convert to NIfTI"
        ) from e
    return _itk_to_volume(image, p)


def dicom_series_files(p: Path) -> list[str]:
    """The files of the one DICOM series in folder ``p``, in the slice order the loader uses.

    Slice ``k`` of the loaded volume (``data[:, :, k]``) comes from ``files[k]``; DICOM outputs that
    reference the series (``io.dicomseg``) rely on this order."""
    import SimpleITK as sitk

    try:
        series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(p))
    except RuntimeError as e:
        raise InputError(p, f"cannot scan folder for DICOM ({e})", "give a folder holding one DICOM series") from e
    if not series:
        raise InputError(p, "folder holds no DICOM series", "give a folder with the .dcm files of one series")
    if len(series) > 1:
        raise InputError(
            p, f"folder holds {len(series)} DICOM series", "put each series in its own folder (e.g. dcm2niix)"
        )
    files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(p), series[0]))
    if len(files) < 2:
        raise InputError(p, "the DICOM series has a single slice, a 3D volume is needed", "give the whole series")
    return files


def _load_dicom_series(p: Path) -> Volume:
    import SimpleITK as sitk

    files = dicom_series_files(p)
    try:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(files)
        image = reader.Execute()
    except RuntimeError as e:
        raise InputError(p, f"cannot read the DICOM series ({e})", "check the files") from e
    return _itk_to_volume(image, p)
