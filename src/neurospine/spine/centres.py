"""Label centroids and voxel counts of a big, mostly empty label map, computed inside the labels' bounding box.

``scipy.ndimage.center_of_mass`` with a label list walks the whole array once per statistic; an input-grid
spine map (for example 381 x 381 x 76) is mostly background, so cropping first is several times faster and
gives the same numbers (sums of absolute voxel coordinates, in the same order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage


def _box(labels: npt.NDArray[np.integer]) -> tuple[slice, ...] | None:
    found = ndimage.find_objects((np.asarray(labels) != 0).astype(np.uint8))
    return found[0] if found else None


def _check_ids(ids: Sequence[int]) -> list[int]:
    out = [int(i) for i in ids]
    if 0 in out:
        raise ValueError("id 0 is the background, which lies partly outside the labels' box; ask scipy.ndimage")
    return out


def label_stats(
    labels: npt.NDArray[np.integer], ids: Sequence[int]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Voxel counts (0 for absent ids) and (len(ids), ndim) centroids in voxel coordinates (NaN rows for absent
    ids) of ``ids`` (> 0) in ``labels``. Sums of the absolute voxel coordinates, so the centroids equal
    ``ndimage.center_of_mass`` on the whole map bit for bit."""
    arr = np.asarray(labels)
    wanted = _check_ids(ids)
    counts = np.zeros(len(wanted), dtype=np.int64)
    centres = np.full((len(wanted), arr.ndim), np.nan)
    box = _box(arr)
    if box is None or not wanted:
        return counts, centres
    crop = arr[box]
    n = np.asarray(ndimage.sum_labels(np.ones(crop.shape, np.float64), crop, wanted), dtype=np.float64)
    grids = np.ogrid[tuple(slice(s.start, s.stop) for s in box)]
    with np.errstate(invalid="ignore", divide="ignore"):
        for axis, grid in enumerate(grids):
            coord = np.broadcast_to(np.asarray(grid, dtype=np.float64), crop.shape)
            centres[:, axis] = np.asarray(ndimage.sum_labels(coord, crop, wanted), dtype=np.float64) / n
    return n.astype(np.int64), centres


def label_centres(labels: npt.NDArray[np.integer], ids: Sequence[int]) -> npt.NDArray[np.float64]:
    """The centroids of :func:`label_stats`."""
    return label_stats(labels, ids)[1]


def label_counts(labels: npt.NDArray[np.integer], ids: Sequence[int]) -> npt.NDArray[np.int64]:
    """The voxel counts of :func:`label_stats`."""
    return label_stats(labels, ids)[0]
