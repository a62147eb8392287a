"""On a head MRI the spinal cord leaves the skull through the foramen magnum, on the head's midline.

`neurospine cord` on a head T1w MRI sometimes read an eyeball (round, dark, ringed by bright orbital fat) as
cord in canal, 30-48 mm off the midline (docs/decisions/cord-head-midline.md). When a head is in view, a cord
whose centroid lies more than :data:`HEAD_MIDLINE_MM` left or right of the head's middle is not the cord.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from neurospine.io import Volume, reorient
from neurospine.plausibility.common import otsu_threshold

#: farthest a cord's centroid may lie from the head's left-right middle on a head MRI (mm)
HEAD_MIDLINE_MM = 15.0
#: why a cord is rejected (``None``: accepted); the cord mask is on the image's RAS grid
CordTest = Callable[[npt.NDArray[np.bool_]], str | None]


def head_middle_mm(image: Volume) -> tuple[float, float]:
    """Left-right middle of the head, in mm from the centre of the first RAS left-right slice (the mean position
    of the voxels above the image's Otsu threshold), and the RAS left-right voxel size (mm)."""
    ras, _ = reorient(image, "RAS")
    data = np.asarray(ras.data, dtype=np.float32)
    positive = data[data > 0]
    head = data > otsu_threshold(positive if positive.size else data.ravel())
    weights = head.sum(axis=(1, 2)).astype(np.float64)
    spacing = float(ras.spacing_mm[0])
    if weights.sum() <= 0:
        return 0.5 * (data.shape[0] - 1) * spacing, spacing
    return float((np.arange(data.shape[0]) * weights).sum() / weights.sum()) * spacing, spacing


def midline_test(image: Volume) -> CordTest:
    """A :data:`CordTest` that rejects a cord whose centroid is more than :data:`HEAD_MIDLINE_MM` from the
    head's left-right middle (call it only for images with a head in view). The head's middle is measured on the
    first call, so a run whose first cord needs no test does not pay for it."""
    middle: list[tuple[float, float]] = []

    def test(cord_ras: npt.NDArray[np.bool_]) -> str | None:
        columns = np.argwhere(cord_ras)[:, 0]
        if columns.size == 0:
            return None
        if not middle:
            middle.append(head_middle_mm(image))
        centre_mm, spacing = middle[0]
        offset = abs(float(columns.mean()) * spacing - centre_mm)
        if offset <= HEAD_MIDLINE_MM:
            return None
        return f"{offset:.0f} mm left or right of the head's middle, more than {HEAD_MIDLINE_MM:.0f} mm: not the cord"

    return test
