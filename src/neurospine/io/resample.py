"""Resampling between grids in world space. Label maps always use nearest neighbour (order 0)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io.volume import Volume


def grid_for_spacing(
    vol: Volume, spacing_mm: tuple[float, float, float]
) -> tuple[tuple[int, int, int], npt.NDArray[np.float64]]:
    """Shape and affine of a grid with the same axes and extent as ``vol`` at ``spacing_mm``.

    The first voxel's corner stays put (field of view preserved, voxel centres shifted by half the
    spacing change), so resampling there and back is well defined.
    """
    old_sp = np.array(vol.spacing_mm)
    new_sp = np.array(spacing_mm, dtype=np.float64)
    extent = np.array(vol.shape) * old_sp
    shape = np.maximum(1, np.round(extent / new_sp)).astype(int)
    direction = vol.affine[:3, :3] / old_sp[None, :]
    affine = np.eye(4)
    affine[:3, :3] = direction * new_sp[None, :]
    # corner of voxel (-0.5,-0.5,-0.5) is shared
    corner = vol.affine[:3, :3] @ np.full(3, -0.5) + vol.affine[:3, 3]
    affine[:3, 3] = corner - affine[:3, :3] @ np.full(3, -0.5)
    return (int(shape[0]), int(shape[1]), int(shape[2])), affine


def resample_to_grid(
    data: npt.NDArray[np.generic],
    src_affine: npt.NDArray[np.float64],
    dst_shape: tuple[int, int, int],
    dst_affine: npt.NDArray[np.float64],
    *,
    order: int,
    cval: float = 0.0,
) -> npt.NDArray[np.generic]:
    """Sample ``data`` (on ``src_affine``) at the voxel centres of the destination grid."""
    mapping = np.linalg.inv(src_affine) @ dst_affine
    matrix, offset = mapping[:3, :3], mapping[:3, 3]
    if order == 0:
        # 'grid-constant': a destination centre within half a voxel of the source edge still takes
        # the edge voxel; beyond that it is background.
        out = ndimage.affine_transform(
            data, matrix, offset=offset, output_shape=dst_shape, order=0, mode="grid-constant", cval=cval
        )
        return out.astype(data.dtype, copy=False)
    src = np.asarray(data, dtype=np.float32)
    out = ndimage.affine_transform(
        src, matrix, offset=offset, output_shape=dst_shape, order=order, mode="nearest", prefilter=order > 1
    )
    inside = ndimage.affine_transform(
        np.ones(src.shape, np.uint8), matrix, offset=offset, output_shape=dst_shape, order=0, mode="grid-constant"
    )
    out[inside == 0] = cval
    return out


def resample_to_spacing(vol: Volume, spacing_mm: tuple[float, float, float], *, order: int) -> Volume:
    """Resample ``vol`` to ``spacing_mm`` (order 0 for labels, 1 for images)."""
    shape, affine = grid_for_spacing(vol, spacing_mm)
    return Volume(resample_to_grid(vol.data, vol.affine, shape, affine, order=order), affine, vol.source)


def resample_like(vol: Volume, reference: Volume, *, order: int) -> Volume:
    """Resample ``vol`` onto ``reference``'s exact grid."""
    return Volume(
        resample_to_grid(vol.data, vol.affine, reference.shape, reference.affine, order=order),
        reference.affine,
        reference.source,
    )
