"""Array plumbing shared by the metric modules: validation, spacing checks and tight crops."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

BoolArray = npt.NDArray[np.bool_]


def as_mask(arr: npt.ArrayLike) -> BoolArray:
    """Non-zero voxels as a boolean array (no copy when ``arr`` is already boolean)."""
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        return a
    return a != 0


def check_pair(pred: npt.NDArray[np.generic], ref: npt.NDArray[np.generic]) -> None:
    """Raise ``ValueError`` unless both arrays have the same shape."""
    if pred.shape != ref.shape:
        raise ValueError(
            f"prediction shape {pred.shape} differs from reference shape {ref.shape}; "
            "resample the prediction onto the reference grid first (neurospine.io.resample_like, order=0)"
        )


def check_spacing(spacing_mm: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Spacing as a tuple of positive finite floats, one per array axis."""
    try:
        sp = tuple(float(s) for s in spacing_mm)
    except TypeError as e:
        raise ValueError(f"spacing_mm must be a sequence of {ndim} numbers, got {spacing_mm!r}") from e
    if len(sp) != ndim:
        raise ValueError(f"spacing_mm has {len(sp)} values but the arrays have {ndim} axes")
    if not all(math.isfinite(s) and s > 0 for s in sp):
        raise ValueError(f"spacing_mm must be positive and finite, got {sp}")
    return sp


def bbox(mask: BoolArray) -> tuple[slice, ...] | None:
    """Tightest slices holding every true voxel, or ``None`` for an empty mask."""
    if not mask.any():
        return None
    out = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        out.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(out)


def union_slices(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    """Smallest box holding both boxes."""
    if a is None:
        return b
    if b is None:
        return a
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True))


def crop_pad(mask: BoolArray, box: tuple[slice, ...], pad: int = 1) -> BoolArray:
    """``mask[box]`` with ``pad`` background voxels around it (so surfaces at the crop edge are kept)."""
    return np.pad(mask[box], pad, mode="constant", constant_values=False)


class LabelBoxes:
    """Bounding box of each label value of an integer map, by ``ndimage.find_objects`` when ids are small."""

    #: Above this id, boxes are found one label at a time instead of one list slot per possible id.
    MAX_TABLE_ID = 1 << 16

    def __init__(self, labels: npt.NDArray[np.integer[Any]]) -> None:
        self._labels = labels
        self._table: list[tuple[slice, ...] | None] | None = None
        top = int(labels.max()) if labels.size else 0
        if 0 < top <= self.MAX_TABLE_ID:
            self._table = list(ndimage.find_objects(labels))
        elif top == 0:
            self._table = []

    def __call__(self, value: int) -> tuple[slice, ...] | None:
        if self._table is not None:
            return self._table[value - 1] if 0 < value <= len(self._table) else None
        return bbox(self._labels == value)
