"""Vertebral level of every axial slice, from a level mask.

Two kinds of masks are accepted, both with SPINEPS/SCT vertebra ids (1..7 = C1..C7, 8..19 = T1..T12,
20..25 = L1..L6, 26 = S1, 28 = T13):

* a ``seg-vert`` instance mask (vertebral bodies; ``100+X`` discs and ``200+X`` endplates), or
* an SCT-style cord-by-level mask (the cord painted with the level id, e.g. ``cordlevels``).

A ``seg-vert`` mask given with ``--levels`` is first projected along the cord from the vertebral
bodies (:mod:`neurospine.cord.spinelevels`, :mod:`neurospine.cord.autolevels`), which turns it into a
cord-by-level mask; the slice-wise vote below is the fallback when no body lies in front of the cord.

For each slice the level is the most frequent vertebra id in that slice (restricted to the cord
when the mask overlaps the cord, which handles the cord-by-level kind). Discs and endplates are left
out (``200+X`` holds the endplates on both sides of disc ``100+X``, so it does not belong to X alone);
slices without a vertebra (discs, endplates, gaps) take the level of the nearest labelled slice within
``max_gap_mm``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from neurospine.labels import DISC_OFFSET, VERTEBRA_NAMES

#: Slices further than this from any labelled slice get no level.
MAX_GAP_MM = 8.0


def vertebra_ids(mask: npt.NDArray[np.generic]) -> npt.NDArray[np.int32]:
    """Map a level mask to plain vertebra ids (discs, endplates and unknown values -> 0)."""
    out = np.asarray(mask).astype(np.int32)
    out = np.where(out >= DISC_OFFSET, 0, out)
    known = np.isin(out, np.array(sorted(VERTEBRA_NAMES), dtype=np.int32))
    return np.where(known, out, 0).astype(np.int32)


def levels_per_slice(
    level_mask: npt.NDArray[np.generic],
    cord: npt.NDArray[np.bool_] | None,
    slice_positions_mm: npt.ArrayLike,
    *,
    axis: int = 2,
    max_gap_mm: float = MAX_GAP_MM,
) -> npt.NDArray[np.int32]:
    """Level id per slice along ``axis`` (0 = unknown). ``cord`` (same shape) restricts the vote."""
    ids = np.moveaxis(vertebra_ids(level_mask), axis, 0)
    cord_s = None if cord is None else np.moveaxis(np.asarray(cord, dtype=bool), axis, 0)
    use_cord = cord_s is not None and bool(np.any((ids > 0) & cord_s))
    n = ids.shape[0]
    out = np.zeros(n, dtype=np.int32)
    for k in range(n):
        sl = ids[k]
        if use_cord and cord_s is not None:
            sl = sl[cord_s[k]]
        vals = sl[sl > 0]
        if vals.size:
            counts = np.bincount(vals.ravel())
            out[k] = int(np.argmax(counts))
    pos = np.asarray(slice_positions_mm, dtype=np.float64).reshape(-1)
    if pos.size != n:
        raise ValueError("one position per slice is needed")
    labelled = np.flatnonzero(out > 0)
    if labelled.size == 0:
        return out
    filled = out.copy()
    for gap in np.flatnonzero(out == 0):
        d = np.abs(pos[labelled] - pos[gap])
        j = int(np.argmin(d))
        if d[j] <= max_gap_mm:
            filled[gap] = out[labelled[j]]
    return filled


def level_name(level_id: int) -> str:
    """``3`` -> ``"C3"``; ``0`` -> ``""``."""
    return VERTEBRA_NAMES.get(int(level_id), "") if level_id else ""
