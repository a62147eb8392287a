"""Input checks and the model grid: PIR orientation, fixed in-plane spacing, normalised intensities.

The model grid keeps the input's left-right (slice) spacing, clamped to ``[MIN_LR_MM, MAX_LR_MM]``, and
resamples the sagittal plane (posterior and inferior axes) to ``inplane_mm``. ``ModelGrid.to_input``
brings a label map back onto the input's exact grid (nearest neighbour, then exact axis permutation).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neurospine.errors import InputError
from neurospine.io import Reorientation, Volume, reorient
from neurospine.io.resample import grid_for_spacing, resample_to_grid

log = logging.getLogger(__name__)

CANONICAL = "PIR"
MIN_LR_MM = 1.0
MAX_LR_MM = 6.0
#: thinnest field of view (mm) along each sagittal-plane axis that still shows two vertebrae
MIN_FOV_MM = 40.0


@dataclass(frozen=True)
class ModelGrid:
    """An image on the model grid and what is needed to go back to the input grid."""

    image: npt.NDArray[np.float32]  # (P, I, R), intensities in [0, 1]
    affine: npt.NDArray[np.float64]
    spacing_mm: tuple[float, float, float]
    reoriented_shape: tuple[int, int, int]
    reoriented_affine: npt.NDArray[np.float64]
    record: Reorientation

    @property
    def input_spacing_mm(self) -> tuple[float, float, float]:
        """The input's voxel size along the model grid's axes (P, I, R)."""
        sp = np.linalg.norm(self.reoriented_affine[:3, :3], axis=0)
        return (float(sp[0]), float(sp[1]), float(sp[2]))

    def to_input(self, labels: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        """Label map on the model grid -> the input's exact grid (nearest neighbour)."""
        same = labels.shape == self.reoriented_shape and np.allclose(self.affine, self.reoriented_affine, atol=1e-4)
        if same:
            on_pir = labels
        else:
            on_pir = resample_to_grid(labels, self.affine, self.reoriented_shape, self.reoriented_affine, order=0)
        return self.record.undo(on_pir)


def check_input(vol: Volume) -> None:
    """Refuse inputs the sagittal model cannot read: thick axial/coronal stacks, tiny fields of view."""
    plane = vol.plane
    if plane in ("axial", "coronal"):
        sp = ", ".join(f"{s:.2f}" for s in vol.spacing_mm)
        raise InputError(
            vol.source,
            f"this is a thick-slice {plane} acquisition (spacing {sp} mm, orientation {''.join(vol.axcodes)}); the "
            "spine model reads sagittal or isotropic images",
            "give the sagittal series of the exam (or a 3D isotropic scan); "
            "for axial cord images use `neurospine cord`",
        )
    extent = np.array(vol.shape) * np.array(vol.spacing_mm)
    codes = vol.axcodes
    for axis, code in enumerate(codes):
        if code in "PAIS" and extent[axis] < MIN_FOV_MM:
            raise InputError(
                vol.source,
                f"field of view is only {extent[axis]:.0f} mm along the {code} axis",
                f"give an image covering at least {MIN_FOV_MM:.0f} mm of the spine (two vertebrae)",
            )


def normalise_intensity(
    data: npt.NDArray[np.generic], *, low_pct: float = 0.5, high_pct: float = 99.5
) -> npt.NDArray[np.float32]:
    """Percentile scaling to [0, 1] (percentiles from a strided subsample for speed)."""
    arr = np.asarray(data, dtype=np.float32)
    sample = arr.ravel()[:: max(1, arr.size // 2_000_000)]
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    if hi <= lo:
        hi = lo + 1.0
    out = (arr - np.float32(lo)) / np.float32(hi - lo)
    np.clip(out, 0.0, 1.0, out=out)
    return out


def model_spacing(vol_pir: Volume, inplane_mm: float) -> tuple[float, float, float]:
    lr = float(np.clip(vol_pir.spacing_mm[2], MIN_LR_MM, MAX_LR_MM))
    return (inplane_mm, inplane_mm, lr)


def to_model_grid(vol: Volume, *, inplane_mm: float = 1.0) -> ModelGrid:
    """Reorient to PIR, resample the sagittal plane to ``inplane_mm`` and normalise intensities."""
    pir, record = reorient(vol, CANONICAL)
    spacing = model_spacing(pir, inplane_mm)
    if np.allclose(pir.spacing_mm, spacing, atol=1e-3):
        data = np.asarray(pir.data, dtype=np.float32)
        affine = pir.affine
    else:
        shape, affine = grid_for_spacing(pir, spacing)
        data = resample_to_grid(pir.data, pir.affine, shape, affine, order=1).astype(np.float32, copy=False)
    image = normalise_intensity(data)
    log.debug("model grid %s at %s mm (input %s %s)", image.shape, spacing, vol.shape, "".join(vol.axcodes))
    return ModelGrid(image, affine, spacing, pir.shape, pir.affine, record)
