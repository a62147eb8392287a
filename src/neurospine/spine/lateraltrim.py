"""Trim the partial-volume lateral slices of each vertebral body (on the input grid).

On thick sagittal slices the outermost slice a body reaches holds a thin partial-volume sliver of it, which the
network labels and SPINEPS-style references do not. Each body (corpus + endplates of one vertebra) loses the
sagittal slices at its left and right ends whose body area is below ``fraction`` times its largest sagittal area,
trimmed from the outside in (a slice between two kept slices is never removed). Posterior elements, discs and
the sacrum are untouched. Chosen on training cases: ``docs/decisions/spine-lateral-trim.md``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

#: trim fraction of the shipped pipeline (0 = off); chosen on training cases, see the module docstring
BODY_LATERAL_TRIM = 0.0


def lateral_axis(affine: npt.NDArray[np.float64]) -> int:
    """The voxel axis that runs left-right in world space."""
    import nibabel as nib

    return int(np.nonzero(nib.orientations.io_orientation(affine)[:, 0] == 0)[0][0])


def trim_lateral_bodies(
    body: npt.NDArray[np.integer],
    others: list[npt.NDArray[np.integer]],
    axis: int,
    fraction: float,
) -> int:
    """Unlabel, in place, the trimmed voxels of every body in ``body`` (level ids) and at the same voxels in each
    array of ``others`` (the semantic and seg-vert maps). Returns the number of voxels removed."""
    if fraction <= 0.0 or not body.any():
        return 0
    removed = 0
    ids, inverse = np.unique(body, return_inverse=True)
    compact = inverse.reshape(body.shape).astype(np.int32) + (0 if ids[0] == 0 else 1)
    levels = ids[ids != 0]
    for idx, box in enumerate(ndimage.find_objects(compact), start=1):
        if box is None:
            continue
        m = body[box] == levels[idx - 1]
        other_axes = tuple(a for a in range(m.ndim) if a != axis)
        area = m.sum(axis=other_axes)
        kept = np.nonzero(area >= fraction * area.max())[0]
        drop = np.ones(area.shape, dtype=bool)
        drop[kept.min() : kept.max() + 1] = False
        if not drop.any():
            continue
        shape = [1] * m.ndim
        shape[axis] = drop.size
        gone = m & drop.reshape(shape)
        removed += int(gone.sum())
        for arr in (body, *others):
            arr[box][gone] = 0
    return removed
