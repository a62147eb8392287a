"""Loading 2D images and sagittal slices of 3D volumes into the canonical 2D layout.

Canonical layout: ``pixels[row, col]``, rows superior -> inferior, columns anterior -> posterior
(for coronal images: towards the patient's left). 3D volumes are reoriented to ``IPL`` so that a
sagittal slice ``data[:, :, k]`` is already canonical. 2D NIfTI files are flipped/transposed into the
layout using their affine. PNG/JPEG images carry no orientation: they are taken as displayed (top =
superior, left = anterior) and flagged ``orientation_known=False``.

Pixel size of 2D images: PNG/JPEG carry none. A 2D NIfTI or DICOM whose stored pixel size is implausible
(:func:`implausible_spacing`: not a positive number, a field of view over ``MAX_PLAUSIBLE_FOV_MM``, or
exactly 1 mm -- the usual placeholder -- on an image of at least ``PLACEHOLDER_MIN_SIDE_PX`` pixels) is
treated the same way: the pixel size is unknown and the longest side is assumed to span
``ASSUMED_FOV_MM``. ``load_input(..., pixel_mm=)`` (``--pixel-mm``) sets the in-plane pixel size of any
2D input instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.errors import InputError
from neurospine.io import Reorientation, Volume, load_volume, reorient

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]

#: Pixel size of the grid the model sees (mm).
MODEL_PIXEL_MM = 1.25
#: When the pixel size is unknown, the longest image side is assumed to span this many mm.
ASSUMED_FOV_MM = 320.0
#: A 2D image whose stored pixel size gives a longer field of view than this (mm) has a placeholder spacing.
MAX_PLAUSIBLE_FOV_MM = 1000.0
#: Exactly 1 mm pixels on a 2D image with a side of at least this many pixels is taken as a placeholder.
PLACEHOLDER_MIN_SIDE_PX = 768
#: Orientation of reoriented 3D volumes (axis0 -> inferior, axis1 -> posterior, axis2 -> left).
CANONICAL_3D = "IPL"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Plane2D:
    """A 2D image in the canonical layout with the transform back to the original 2D array.

    ``to_canonical`` applies, in order: transpose (if ``transpose``), flip rows, flip columns.
    """

    pixels: FloatArray
    spacing_mm: tuple[float, float]
    spacing_known: bool
    orientation_known: bool
    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    spacing_note: str = ""  # where the pixel size came from when it is not simply the file's

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    def from_canonical(self, arr: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Map a canonical-layout array back onto the original 2D array layout."""
        out = arr
        if self.flip_cols:
            out = out[:, ::-1]
        if self.flip_rows:
            out = out[::-1, :]
        if self.transpose:
            out = out.T
        return np.ascontiguousarray(out)


def to_canonical(
    arr: npt.NDArray[np.generic], transpose: bool, flip_rows: bool, flip_cols: bool
) -> npt.NDArray[np.generic]:
    out = arr.T if transpose else arr
    if flip_rows:
        out = out[::-1, :]
    if flip_cols:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class LoadedInput:
    """What ``load_input`` found: a 3D volume (sagittal slices to choose from) or one 2D image."""

    path: Path
    kind: str  # "volume" or "image2d"
    volume: Volume | None = None  # original 3D volume
    canonical: Volume | None = None  # volume reoriented to IPL
    record: Reorientation | None = None
    plane: Plane2D | None = None  # 2D input in canonical layout
    original_shape2d: tuple[int, ...] | None = None  # array shape of the 2D input as stored
    affine2d: npt.NDArray[np.float64] | None = None  # affine for a (H, W, 1) NIfTI of the 2D input
    modality_tag: str | None = None  # DICOM Modality or similar metadata
    file_format: str = ""
    singleton_axis: int = 2  # 2D NIfTI: the size-1 axis of the stored array

    def n_slices(self) -> int:
        return 1 if self.canonical is None else int(self.canonical.shape[2])

    def slice_plane(self, index: int) -> Plane2D:
        """Sagittal slice ``index`` (axis 2 of the IPL-reoriented volume) of a 3D input."""
        if self.canonical is None:
            if self.plane is None:
                raise ValueError("empty input")
            return self.plane
        if not 0 <= index < self.canonical.shape[2]:
            raise InputError(
                self.path,
                f"slice {index} is outside the volume (0..{self.canonical.shape[2] - 1} sagittal slices)",
                "give a --slice within range, or omit it for automatic choice",
            )
        sp = self.canonical.spacing_mm
        data = np.asarray(self.canonical.data[:, :, index], dtype=np.float32)
        return Plane2D(data, (sp[0], sp[1]), spacing_known=True, orientation_known=True)


def input_lr_axis(loaded: LoadedInput) -> tuple[int, bool]:
    """For a 3D input: (stored voxel axis that became the canonical left-right axis, flipped?)."""
    if loaded.record is None:
        raise ValueError("not a 3D input")
    fwd = loaded.record.forward
    for i in range(3):
        if int(fwd[i, 0]) == 2:
            return i, bool(fwd[i, 1] < 0)
    raise ValueError("no left-right axis")


def canonical_slice_index(loaded: LoadedInput, input_index: int) -> int:
    """Canonical (IPL axis 2) index of slice ``input_index`` along the stored left-right voxel axis."""
    _axis, flipped = input_lr_axis(loaded)
    n = loaded.n_slices()
    return n - 1 - input_index if flipped else input_index


def input_slice_index(loaded: LoadedInput, canonical_index: int) -> int:
    """Inverse of :func:`canonical_slice_index`."""
    return canonical_slice_index(loaded, canonical_index)


def unknown_spacing_mm(shape: tuple[int, int]) -> float:
    """Pixel size assumed for images without spacing: the longest side spans ``ASSUMED_FOV_MM``."""
    return ASSUMED_FOV_MM / float(max(shape))


def implausible_spacing(shape: tuple[int, int], spacing_mm: tuple[float, float]) -> str | None:
    """Why the stored pixel size of a 2D image cannot be its real one (None when it is plausible)."""
    sp = (float(spacing_mm[0]), float(spacing_mm[1]))
    if not all(np.isfinite(s) and s > 0 for s in sp):
        return f"stored pixel size {sp[0]:g} x {sp[1]:g} mm is not a positive number"
    fov = (shape[0] * sp[0], shape[1] * sp[1])
    size = f"stored pixel size {sp[0]:g} x {sp[1]:g} mm on {shape[0]} x {shape[1]} pixels"
    if max(fov) > MAX_PLAUSIBLE_FOV_MM:
        return f"{size} gives a {fov[0]:.0f} x {fov[1]:.0f} mm field of view (over {MAX_PLAUSIBLE_FOV_MM:.0f} mm)"
    if sp == (1.0, 1.0) and max(shape) >= PLACEHOLDER_MIN_SIDE_PX:
        return f"{size}: exactly 1 mm is the usual placeholder and no scanner makes pixels that size"
    return None


def _checked_spacing(
    p: Path, shape: tuple[int, int], spacing_mm: tuple[float, float]
) -> tuple[tuple[float, float], bool, str]:
    """``(spacing, known, note)``: the stored spacing, or the assumed one when it is implausible."""
    why = implausible_spacing(shape, spacing_mm)
    if why is None:
        return (float(spacing_mm[0]), float(spacing_mm[1])), True, ""
    s = unknown_spacing_mm(shape)
    log.warning("%s: %s; pixel size treated as unknown (give --pixel-mm to set it)", p, why)
    return (s, s), False, why


def with_pixel_mm(loaded: LoadedInput, pixel_mm: float) -> LoadedInput:
    """``loaded`` with the in-plane pixel size of its 2D image set to ``pixel_mm`` (square pixels).

    A 2D NIfTI keeps its own affine for the output mask (the mask lies on the input's grid); PNG/JPEG and
    DICOM masks are written with the given pixel size.
    """
    if loaded.kind != "image2d" or loaded.plane is None:
        raise InputError(
            loaded.path,
            "--pixel-mm was given for a 3D volume",
            "omit --pixel-mm: a volume's voxel size comes from its header (correct the header if it is wrong)",
        )
    v = float(pixel_mm)
    if not (np.isfinite(v) and 0.0 < v <= 10.0):
        raise InputError(
            loaded.path, f"--pixel-mm {pixel_mm} is not a pixel size in mm", "give e.g. 0.15 (0 < mm <= 10)"
        )
    plane = replace(loaded.plane, spacing_mm=(v, v), spacing_known=True, spacing_note=f"given: {v:g} mm")
    affine = loaded.affine2d if loaded.file_format == "nifti2d" else _affine_2d(v, v)
    return replace(loaded, plane=plane, affine2d=affine)


# ---- loaders --------------------------------------------------------------------------------


def load_input(path: str | Path, *, pixel_mm: float | None = None) -> LoadedInput:
    """Load a 3D volume (NIfTI/NRRD/MHA/DICOM folder) or a 2D image (NIfTI, DICOM, PNG, JPEG).

    ``pixel_mm``: in-plane pixel size (mm) of a 2D input, replacing the stored or assumed one.
    """
    loaded = _load_input(Path(path))
    return loaded if pixel_mm is None else with_pixel_mm(loaded, pixel_mm)


def _load_input(p: Path) -> LoadedInput:
    if not p.exists():
        raise InputError(p, "file not found", "check the path")
    low = p.name.lower()
    if p.is_dir():
        return _volume_input(p, load_volume(p))
    if p.stat().st_size == 0:
        raise InputError(p, "file is empty (0 bytes)", "re-export or re-copy the image")
    if low.endswith(IMAGE_SUFFIXES):
        return _load_bitmap(p)
    if low.endswith(NIFTI_SUFFIXES):
        return _load_nifti_any(p)
    if low.endswith(DICOM_SUFFIXES) or _has_dicom_magic(p):
        return _load_dicom_file(p)
    if low.endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
        return _volume_input(p, load_volume(p))
    raise InputError(
        p,
        f"unsupported file type '{p.suffix}'",
        "give a NIfTI, a DICOM file or series folder, NRRD/MHA, or a PNG/JPEG radiograph",
    )


def _has_dicom_magic(p: Path) -> bool:
    try:
        with p.open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _volume_input(p: Path, vol: Volume, modality_tag: str | None = None) -> LoadedInput:
    canon, record = reorient(vol, CANONICAL_3D)
    return LoadedInput(
        p, "volume", volume=vol, canonical=canon, record=record, modality_tag=modality_tag, file_format="volume"
    )


def _check_2d(p: Path, arr: npt.NDArray[np.generic]) -> FloatArray:
    a = np.asarray(arr)
    if a.ndim != 2:
        raise InputError(p, f"expected a 2D image, got shape {a.shape}", "give a single 2D image or a 3D volume")
    if min(a.shape) < 16:
        raise InputError(p, f"image is too small {a.shape}", "give an image of at least 16x16 pixels")
    f = a.astype(np.float32)
    if not np.all(np.isfinite(f)):
        raise InputError(p, "image contains NaN/inf pixels", "re-export the image")
    if float(f.min()) == float(f.max()):
        raise InputError(p, "image is constant", "check that the right file was given")
    return f


def _load_bitmap(p: Path) -> LoadedInput:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I", "F"):
                arr = np.asarray(im, dtype=np.float32)
            else:
                arr = np.asarray(im.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(p, f"cannot read the image ({e})", "re-export it as PNG or JPEG") from e
    pix = _check_2d(p, arr)
    sp = unknown_spacing_mm((pix.shape[0], pix.shape[1]))
    note = "PNG/JPEG images carry no pixel size"
    plane = Plane2D(pix, (sp, sp), spacing_known=False, orientation_known=False, spacing_note=note)
    return LoadedInput(
        p, "image2d", plane=plane, original_shape2d=pix.shape, affine2d=_affine_2d(sp, sp), file_format="bitmap"
    )


def _affine_2d(row_mm: float, col_mm: float) -> npt.NDArray[np.float64]:
    """Affine of a (rows, cols, 1) array taken as displayed: rows -> inferior, cols -> posterior."""
    aff = np.zeros((4, 4))
    aff[2, 0] = -row_mm  # rows go inferior
    aff[1, 1] = -col_mm  # cols go posterior
    aff[0, 2] = 1.0  # the singleton axis points right
    aff[3, 3] = 1.0
    return aff


def _load_nifti_any(p: Path) -> LoadedInput:
    try:
        img: Any = nib.load(str(p))
        shape = tuple(int(s) for s in img.shape)
    except Exception as e:  # nibabel raises several unrelated types for broken files
        raise InputError(p, f"not a readable NIfTI image ({e})", "check the file; convert it with dcm2niix") from e
    squeezed = [s for s in shape if s != 1]
    if len(squeezed) >= 3:
        return _volume_input(p, load_volume(p))
    if len(squeezed) < 2:
        raise InputError(p, f"image has shape {shape}", "give a 2D image or a 3D volume")
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as e:
        raise InputError(p, f"image data cannot be read ({e})", "the file is truncated or corrupt") from e
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise InputError(p, f"2D image stored with shape {shape}", "store it as (rows, cols) or (rows, cols, 1)")
    affine = np.asarray(img.affine, dtype=np.float64)
    single = [i for i in range(3) if data.shape[i] == 1]
    axis_single = single[-1]
    inplane = [i for i in range(3) if i != axis_single]
    arr2d = np.moveaxis(data, axis_single, 2)[:, :, 0]
    ornt = nib.orientations.io_orientation(affine)
    world = {i: int(ornt[i, 0]) for i in range(3)}
    sign = {i: float(ornt[i, 1]) for i in range(3)}
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    # rows: the in-plane axis along S/I if any, pointing inferior
    row_ax = next((a for a in inplane if world[a] == 2), inplane[0])
    col_ax = inplane[1] if row_ax == inplane[0] else inplane[0]
    transpose = row_ax != inplane[0]
    # RAS+: sign +1 means the axis points toward R/A/S. Rows should point I (flip if S), cols P or L.
    flip_rows = world[row_ax] == 2 and sign[row_ax] > 0
    flip_cols = (world[col_ax] == 1 and sign[col_ax] > 0) or (world[col_ax] == 0 and sign[col_ax] > 0)
    pix = _check_2d(p, to_canonical(np.asarray(arr2d, dtype=np.float32), transpose, flip_rows, flip_cols))
    sp, known, note = _checked_spacing(p, (pix.shape[0], pix.shape[1]), (float(zooms[row_ax]), float(zooms[col_ax])))
    orientation_known = world[row_ax] == 2
    plane = Plane2D(
        pix,
        sp,
        spacing_known=known,
        orientation_known=orientation_known,
        spacing_note=note,
        transpose=transpose,
        flip_rows=flip_rows,
        flip_cols=flip_cols,
    )
    return LoadedInput(
        p,
        "image2d",
        plane=plane,
        original_shape2d=tuple(int(s) for s in data.shape),
        affine2d=affine,
        file_format="nifti2d",
        singleton_axis=axis_single,
    )


def _load_dicom_file(p: Path) -> LoadedInput:
    try:
        import pydicom
    except ImportError:  # pragma: no cover - pydicom is optional
        return _load_dicom_sitk(p)
    try:
        ds = pydicom.dcmread(str(p))
        arr = np.asarray(ds.pixel_array, dtype=np.float32)
    except Exception as e:  # pydicom raises many types for unsupported transfer syntaxes
        log.debug("pydicom failed on %s (%s); trying SimpleITK", p, e)
        return _load_dicom_sitk(p)
    modality = str(getattr(ds, "Modality", "") or "") or None
    if (
        arr.ndim == 3
        and arr.shape[-1] in (3, 4)
        and str(getattr(ds, "PhotometricInterpretation", "")).startswith(("RGB", "YBR"))
    ):
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(
            p,
            f"DICOM file holds {arr.shape} pixels (multi-frame)",
            "give a single-frame image, or the folder of a 3D series",
        )
    slope = float(getattr(ds, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(ds, "RescaleIntercept", 0.0) or 0.0)
    arr = arr * slope + intercept
    if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
        arr = arr.max() - arr
    spacing = getattr(ds, "PixelSpacing", None) or getattr(ds, "ImagerPixelSpacing", None)
    pix = _check_2d(p, arr)
    if spacing is not None and len(spacing) == 2 and float(spacing[0]) > 0 and float(spacing[1]) > 0:
        sp, known, note = _checked_spacing(p, (pix.shape[0], pix.shape[1]), (float(spacing[0]), float(spacing[1])))
    else:
        s = unknown_spacing_mm((pix.shape[0], pix.shape[1]))
        sp, known, note = (s, s), False, "no PixelSpacing in the DICOM file"
    plane = Plane2D(pix, sp, spacing_known=known, orientation_known=False, spacing_note=note)
    return LoadedInput(
        p,
        "image2d",
        plane=plane,
        original_shape2d=pix.shape,
        affine2d=_affine_2d(*sp),
        modality_tag=modality,
        file_format="dicom",
    )


def _load_dicom_sitk(p: Path) -> LoadedInput:
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(p))
        reader.LoadPrivateTagsOn()
        image = reader.Execute()
    except RuntimeError as e:
        raise InputError(p, f"cannot read the DICOM file ({str(e).strip().splitlines()[-1]})", "check the file") from e
    modality = reader.GetMetaData("0008|0060").strip() if reader.HasMetaDataKey("0008|0060") else None
    arr = sitk.GetArrayFromImage(image).astype(np.float32)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(p, f"DICOM file holds {arr.shape} pixels", "give a single-frame image or a series folder")
    photometric = reader.GetMetaData("0028|0004").strip() if reader.HasMetaDataKey("0028|0004") else ""
    if photometric == "MONOCHROME1":
        arr = arr.max() - arr
    sx, sy = image.GetSpacing()[:2]
    pix = _check_2d(p, arr)
    sp, known, note = _checked_spacing(p, (pix.shape[0], pix.shape[1]), (float(sy), float(sx)))
    plane = Plane2D(pix, sp, spacing_known=known, orientation_known=False, spacing_note=note)
    return LoadedInput(
        p,
        "image2d",
        plane=plane,
        original_shape2d=pix.shape,
        affine2d=_affine_2d(*sp),
        modality_tag=modality,
        file_format="dicom",
    )


# ---- resampling to and from the model grid --------------------------------------------------


def resize2d(arr: npt.NDArray[np.generic], out_shape: tuple[int, int], *, order: int) -> npt.NDArray[np.generic]:
    """Resample a 2D (or channels-first 3D) array to ``out_shape`` keeping the field of view.

    Pixel areas are aligned: output pixel ``i`` samples input position ``(i + 0.5) * in/out - 0.5``.
    """
    a = np.asarray(arr)
    if a.ndim == 3:
        return np.stack([resize2d(c, out_shape, order=order) for c in a])
    if order == 1:
        # PIL's bilinear filter: same pixel-area alignment, C speed, and it averages when shrinking
        from PIL import Image

        im = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))  # float32 -> mode "F"
        small = im.resize((int(out_shape[1]), int(out_shape[0])), Image.Resampling.BILINEAR)
        return np.asarray(small, dtype=np.float32)
    scale = np.array([a.shape[0] / out_shape[0], a.shape[1] / out_shape[1]])
    offset = 0.5 * scale - 0.5
    src = a if order == 0 else a.astype(np.float32)
    out = ndimage.affine_transform(
        src, scale, offset=offset, output_shape=out_shape, order=order, mode="nearest", prefilter=False
    )
    return out.astype(a.dtype, copy=False) if order == 0 else out


def model_shape(
    shape: tuple[int, int], spacing_mm: tuple[float, float], pixel_mm: float = MODEL_PIXEL_MM
) -> tuple[int, int]:
    """Shape of ``shape`` at ``spacing_mm`` resampled to ``pixel_mm`` pixels."""
    return (
        max(16, int(np.rint(shape[0] * spacing_mm[0] / pixel_mm))),
        max(16, int(np.rint(shape[1] * spacing_mm[1] / pixel_mm))),
    )
