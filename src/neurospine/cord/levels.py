"""Vertebral level of every axial slice, from a level mask.

Two kinds of masks are accepted, both with SPINEPS/SCT vertebra ids (1..7 = C1..C7, 8..19 = T1..T12,
20..25 = L1..L6, 26 = S1, 28 = T13):

* a ``seg-vert`` instance mask (vertebral bodies; ``100+X`` discs and ``200+X`` endplates), or
* an SCT-style cord-by-level mask (the cord painted with the level id, e.g. ``cordlevels``).

A ``seg-vert`` mask given with ``--levels`` is first projected along the cord from the vertebral
bodies (:mod:`neurospine.cord.spinelevels`, :mod:`neurospine.cord.autolevels`), which turns it into a
cord-by-level mask; the slice-wise vote below is the fallback when no body lies in front of the cord.

Which kind a mask is (:func:`is_cord_by_level`): a mask holding disc (``100+X``) or endplate (``200+X``)
ids is a ``seg-vert`` mask; otherwise it is cord-by-level only when most of its vertebra voxels lie on
the cord (within ``ON_CORD_TOLERANCE_MM``). Touching the cord is not enough: the posterior elements
of a ``seg-vert`` mask often reach into a cord segmentation (a few hundred voxels of arcus on a real
T1w case) while nearly all of the mask lies outside it.

For each slice the level is the most frequent vertebra id in that slice (restricted to the cord for a
cord-by-level mask). Discs and endplates are left out (``200+X`` holds the endplates on both sides of
disc ``100+X``, so it does not belong to X alone); slices without a vertebra (discs, endplates, gaps)
take the level of the nearest labelled slice within ``max_gap_mm``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.labels import DISC_OFFSET, ENDPLATE_OFFSET, VERTEBRA_NAMES

#: Slices further than this from any labelled slice get no level.
MAX_GAP_MM = 8.0
#: A mask without disc or endplate ids is cord-by-level when at least this share of its vertebra voxels
#: lie on the cord (a real cord-by-level mask: 0.94 exactly on, 1.00 within 1 mm; a real seg-vert
#: mask whose arches touch the cord: 0.05 on, 0.07 within 1 mm).
CORD_BY_LEVEL_MIN_ON_CORD = 0.5
#: Vertebra voxels this close to the cord count as on it (a mask painted on another cord segmentation,
#: or resampled onto the image grid). Used when the voxel spacing is known.
ON_CORD_TOLERANCE_MM = 1.0


def vertebra_ids(mask: npt.NDArray[np.generic]) -> npt.NDArray[np.int32]:
    """Map a level mask to plain vertebra ids (discs, endplates and unknown values -> 0)."""
    out = np.asarray(mask).astype(np.int32)
    out = np.where(out >= DISC_OFFSET, 0, out)
    known = np.isin(out, np.array(sorted(VERTEBRA_NAMES), dtype=np.int32))
    return np.where(known, out, 0).astype(np.int32)


def has_disc_or_endplate_ids(mask: npt.NDArray[np.generic]) -> bool:
    """Whether ``mask`` holds a disc (``100+X``) or endplate (``200+X``) id of a known vertebra X."""
    raw = np.asarray(mask)
    high = np.unique(raw[raw > DISC_OFFSET]).astype(np.int64)
    return any(
        int(v) - offset in VERTEBRA_NAMES for v in high for offset in (DISC_OFFSET, ENDPLATE_OFFSET) if v > offset
    )


def _near(cord: npt.NDArray[np.bool_], spacing_mm: Sequence[float], tolerance_mm: float) -> npt.NDArray[np.bool_]:
    """Voxels within ``tolerance_mm`` of ``cord`` (distances computed in a box around the cord only)."""
    out = np.zeros(cord.shape, dtype=bool)
    idx = np.nonzero(cord)
    if idx[0].size == 0:
        return out
    box: list[slice] = []
    for i, n, sp in zip(idx, cord.shape, spacing_mm, strict=True):
        pad = math.ceil(tolerance_mm / float(sp)) + 1
        box.append(slice(max(int(i.min()) - pad, 0), min(int(i.max()) + pad + 1, n)))
    dist = ndimage.distance_transform_edt(~cord[tuple(box)], sampling=[float(sp) for sp in spacing_mm])
    out[tuple(box)] = np.asarray(dist) <= tolerance_mm
    return out


def on_cord_fraction(
    mask: npt.NDArray[np.generic],
    cord: npt.NDArray[np.bool_],
    *,
    spacing_mm: Sequence[float] | None = None,
    tolerance_mm: float = ON_CORD_TOLERANCE_MM,
) -> float:
    """Share of the vertebra voxels of ``mask`` on ``cord`` (within ``tolerance_mm`` when ``spacing_mm`` is given)."""
    labelled = vertebra_ids(mask) > 0
    n = int(np.count_nonzero(labelled))
    if n == 0:
        return 0.0
    near = np.asarray(cord, dtype=bool)
    if spacing_mm is not None and tolerance_mm > 0:
        near = _near(near, spacing_mm, tolerance_mm)
    return float(np.count_nonzero(labelled & near)) / n


def classify_level_mask(
    mask: npt.NDArray[np.generic],
    cord: npt.NDArray[np.bool_],
    *,
    spacing_mm: Sequence[float] | None = None,
    tolerance_mm: float = ON_CORD_TOLERANCE_MM,
) -> tuple[bool, str]:
    """Whether ``mask`` is a cord-by-level mask (else a ``seg-vert`` mask), and why: see the module docstring."""
    if has_disc_or_endplate_ids(mask):
        return False, "it holds disc/endplate ids"
    frac = on_cord_fraction(mask, cord, spacing_mm=spacing_mm, tolerance_mm=tolerance_mm)
    return frac >= CORD_BY_LEVEL_MIN_ON_CORD, f"{100 * frac:.0f}% of its voxels on the cord"


def is_cord_by_level(
    mask: npt.NDArray[np.generic],
    cord: npt.NDArray[np.bool_],
    *,
    spacing_mm: Sequence[float] | None = None,
    tolerance_mm: float = ON_CORD_TOLERANCE_MM,
) -> bool:
    """Whether ``mask`` is a cord-by-level mask (else a ``seg-vert`` mask): see the module docstring."""
    return classify_level_mask(mask, cord, spacing_mm=spacing_mm, tolerance_mm=tolerance_mm)[0]


def levels_per_slice(
    level_mask: npt.NDArray[np.generic],
    cord: npt.NDArray[np.bool_] | None,
    slice_positions_mm: npt.ArrayLike,
    *,
    axis: int = 2,
    max_gap_mm: float = MAX_GAP_MM,
    spacing_mm: Sequence[float] | None = None,
) -> npt.NDArray[np.int32]:
    """Level id per slice along ``axis`` (0 = unknown). ``cord`` (same shape) restricts the vote when
    ``level_mask`` is a cord-by-level mask (:func:`is_cord_by_level`, with its distance tolerance when the voxel
    ``spacing_mm`` of the arrays is given, as in :func:`neurospine.cord.spinelevels.levels_from_mask`)."""
    ids = np.moveaxis(vertebra_ids(level_mask), axis, 0)
    cord_s = None if cord is None else np.moveaxis(np.asarray(cord, dtype=bool), axis, 0)
    sp = (
        None
        if spacing_mm is None
        else [float(spacing_mm[axis])] + [float(v) for i, v in enumerate(spacing_mm) if i != axis]
    )
    use_cord = cord_s is not None and is_cord_by_level(
        np.moveaxis(np.asarray(level_mask), axis, 0), cord_s, spacing_mm=sp
    )
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
