"""``Volume``: a validated 3D array with its affine (voxel -> RAS+ mm) and source path."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import numpy.typing as npt

from neurospine.errors import GeometryError, InputError

#: Ratio of the thickest to the thinnest voxel side above which an image counts as anisotropic.
ANISOTROPY_RATIO = 1.5


@dataclass(frozen=True)
class Volume:
    """A 3D image or label map in world space.

    ``data[i, j, k]`` sits at ``affine @ (i, j, k, 1)`` in RAS+ millimetres. Construction validates
    the dimensions, the affine and the spacing, so every ``Volume`` in the code base is usable.
    """

    data: npt.NDArray[np.generic]
    affine: npt.NDArray[np.float64]
    source: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        affine = np.asarray(self.affine, dtype=np.float64)
        where = self.source
        if data.ndim != 3:
            raise InputError(
                where, f"expected a 3D image, got {data.ndim}D with shape {data.shape}", "pass a single 3D volume"
            )
        if affine.shape != (4, 4):
            raise GeometryError(where, f"affine must be 4x4, got {affine.shape}", "repair the header")
        if not np.all(np.isfinite(affine)):
            raise GeometryError(where, "affine contains NaN or inf", "repair the header (qform/sform)")
        spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        if np.any(spacing <= 0) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise GeometryError(
                where,
                f"zero or degenerate voxel spacing {tuple(np.round(spacing, 4))} mm",
                "set positive pixdim values in the header",
            )
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "affine", affine)

    # ---- geometry -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        s = self.data.shape
        return (int(s[0]), int(s[1]), int(s[2]))

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        sp = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        return (float(sp[0]), float(sp[1]), float(sp[2]))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        codes = nib.orientations.aff2axcodes(self.affine)
        return (str(codes[0]), str(codes[1]), str(codes[2]))

    @property
    def plane(self) -> str:
        """``"sagittal"``, ``"axial"``, ``"coronal"`` (thick axis along L-R, S-I, A-P) or ``"isotropic"``."""
        sp = np.array(self.spacing_mm)
        if sp.max() / sp.min() < ANISOTROPY_RATIO:
            return "isotropic"
        thick = int(np.argmax(sp))
        code = self.axcodes[thick]
        return {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal"}.get(code, "axial")

    @property
    def name(self) -> str:
        """File stem without ``.nii.gz``/``.nii`` etc. (``"image"`` when there is no source)."""
        return stem_of(self.source) if self.source else "image"

    def with_data(self, data: npt.NDArray[np.generic]) -> Volume:
        """A new volume on the same grid (shape must match)."""
        if tuple(np.shape(data)) != self.shape:
            raise GeometryError(
                self.source, f"array shape {np.shape(data)} does not match grid {self.shape}", "internal"
            )
        return Volume(data, self.affine, self.source)

    def same_grid(self, other: Volume, tolerance_mm: float = 1e-3) -> bool:
        """True when both volumes share shape and affine (within ``tolerance_mm``)."""
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=tolerance_mm))

    def world_coords(self, ijk: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Voxel indices (N, 3) -> RAS mm (N, 3)."""
        pts = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return pts @ self.affine[:3, :3].T + self.affine[:3, 3]


_SUFFIXES = (
    ".nii.gz",
    ".nii",
    ".nrrd",
    ".nhdr",
    ".mha",
    ".mhd",
    ".dcm",
    ".dicom",
    ".ima",
    ".png",
    ".jpg",
    ".jpeg",
    ".tif",
    ".tiff",
    ".bmp",
)


def stem_of(path: str | Path) -> str:
    """``/x/sub-01_T2w.nii.gz`` -> ``sub-01_T2w`` (a DICOM folder keeps its folder name)."""
    name = Path(str(path).rstrip("/")).name
    low = name.lower()
    for suffix in _SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name
