"""Vertebral level of every cord voxel from a vertebra segmentation, by projection along the cord.

Convention (as in SCT's cord-by-level masks): a cord cross-section belongs to vertebral level X when it
lies opposite the body of X, between the middle of the disc above X and the middle of the disc below
X. "Opposite" is measured along the cord, not along the image's slice axis: every point is mapped to
the position of the cord cross-section whose plane (normal to the cord) passes through it.

Steps:

1. Cord centreline: weighted centroid of every axial slice of the cord mask, smoothed by
   :func:`neurospine.cord.centerline.fit_centerline` (``c(s)`` and its tangent ``t(s)``, with ``s``
   the slice position along the slice normal, growing superiorly).
2. Projection: a point ``p`` maps to the ``s`` where ``(p - c(s)) . t(s)`` changes sign (bisection over
   the centreline samples, linear interpolation between them); beyond the ends of the cord the end
   tangent is followed.
3. Spans: each vertebral body (corpus + endplates, level id) projects to an interval (1st-99th
   percentile of its voxels) and a median. Between two neighbouring bodies the boundary is the median
   projection of the disc that lies between them, or the midpoint of the gap between the bodies when no
   disc was segmented. Above the top body and below the bottom body the span ends at the next disc when
   one is seen within one body height, else at the body's own end (the cord further out gets no level).
4. Every cord voxel takes the level of the span its projection falls into. Bodies without a name
   (level 0) keep their span but paint nothing, so they do not stretch their neighbours.

When the vertebra map holds whole vertebrae (a ``seg-vert`` mask: body and posterior elements share
the id), ``min_anterior_mm`` keeps only the voxels lying at least that far in front of the cord
centre in its cross-section, i.e. the bodies; the posterior elements slope caudally and would
stretch the spans downwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from neurospine.cord.centerline import DEFAULT_BANDWIDTH_MM, Centerline, fit_centerline
from neurospine.cord.morphometry import PRESENT_THRESHOLD, slice_centroids
from neurospine.io import Volume, reorient
from neurospine.labels import DISC_OFFSET, ENDPLATE_OFFSET, VERTEBRA_NAMES

FloatArray = npt.NDArray[np.float64]

#: Percentiles of a body's projections taken as its extent (robust to stray voxels).
EXTENT_PERCENTILES = (1.0, 99.0)
#: At most this many voxels of one structure are projected (a regular subsample beyond that).
MAX_POINTS = 20_000
#: Vertebra voxels at least this far in front of the cord centre count as the body (seg-vert masks).
BODY_MIN_ANTERIOR_MM = 6.0


@dataclass(frozen=True)
class LevelSpan:
    """Interval of cord positions (mm along the slice normal, superior = larger) given to one level."""

    level: int  # vertebra id (neurospine.labels); 0 = a body without a name
    lower_mm: float
    upper_mm: float


@dataclass(frozen=True)
class BodyExtent:
    """A vertebral body projected onto the cord: its extent and median position (mm)."""

    level: int
    lower_mm: float
    upper_mm: float
    median_mm: float


def cord_centerline(
    cord: Volume, *, present_threshold: float = PRESENT_THRESHOLD, bandwidth_mm: float = DEFAULT_BANDWIDTH_MM
) -> Centerline | None:
    """Smoothed centreline of a cord mask (world RAS mm), ``None`` when no slice holds cord."""
    data = np.clip(np.asarray(cord.data, dtype=np.float64), 0.0, 1.0)
    ras, _ = reorient(cord.with_data(data), "RAS")
    sc = slice_centroids(np.asarray(ras.data, dtype=np.float64), ras.affine, present_threshold)
    if not sc.slices:
        return None
    return fit_centerline(sc.positions_mm, sc.centroids_mm, sc.normal, weights=sc.areas_mm2, bandwidth_mm=bandwidth_mm)


def project_onto_centerline(points_mm: npt.ArrayLike, cl: Centerline) -> FloatArray:
    """Cord position ``s`` (mm) of each point: the cross-section (plane normal to the cord) through it."""
    p = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    s, c, t = cl.positions_mm, cl.points_mm, cl.tangents
    k = len(s)
    if k == 0:
        raise ValueError("empty centreline")
    if k == 1:
        cos0 = float(np.cos(np.radians(cl.angles_deg[0])))
        return s[0] + ((p - c[0]) @ t[0]) * cos0
    # f_i(p) = (p - c_i) . t_i falls with i (s grows along t): find the last i with f_i >= 0
    lo = np.zeros(len(p), dtype=np.int64)
    hi = np.full(len(p), k - 1, dtype=np.int64)
    for _ in range(int(np.ceil(np.log2(k))) + 1):
        mid = (lo + hi) // 2
        f = np.einsum("ij,ij->i", p - c[mid], t[mid])
        ok = f >= 0
        lo = np.where(ok, mid, lo)
        hi = np.where(ok, hi, mid)
    i0 = np.clip(lo, 0, k - 2)
    f0 = np.einsum("ij,ij->i", p - c[i0], t[i0])
    f1 = np.einsum("ij,ij->i", p - c[i0 + 1], t[i0 + 1])
    denom = np.where(np.abs(f0 - f1) < 1e-9, 1.0, f0 - f1)
    w = f0 / denom
    out = s[i0] + w * (s[i0 + 1] - s[i0])
    # beyond the ends: follow the end tangent (the distance along t times cos(angle) in slice position)
    cos = np.cos(np.radians(cl.angles_deg))
    below = (f0 < 0) & (i0 == 0)
    above = (f1 > 0) & (i0 == k - 2)
    out = np.where(below, s[0] + f0 * cos[0], out)
    out = np.where(above, s[-1] + f1 * cos[-1], out)
    return np.asarray(out, dtype=np.float64)


def anterior_offsets_mm(points_mm: npt.ArrayLike, positions_mm: npt.ArrayLike, cl: Centerline) -> FloatArray:
    """Distance (mm) of each point in front of the cord centre, in the cross-section at its position."""
    p = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    idx = np.clip(
        np.searchsorted(cl.positions_mm, np.asarray(positions_mm, dtype=np.float64)), 0, len(cl.positions_mm) - 1
    )
    t = cl.tangents[idx]
    ant = np.array([0.0, 1.0, 0.0])[None, :] - t[:, 1:2] * t  # world anterior, made normal to the cord
    ant /= np.linalg.norm(ant, axis=1, keepdims=True)
    return np.asarray(np.einsum("ij,ij->i", p - cl.points_mm[idx], ant), dtype=np.float64)


def _points_mm(mask: npt.NDArray[np.bool_], affine: npt.NDArray[np.float64]) -> FloatArray:
    idx = np.argwhere(mask)
    if len(idx) > MAX_POINTS:
        idx = idx[:: int(np.ceil(len(idx) / MAX_POINTS))]
    return np.asarray(idx @ affine[:3, :3].T + affine[:3, 3], dtype=np.float64)


def body_extents(
    bodies: npt.NDArray[np.integer],
    affine: npt.NDArray[np.float64],
    cl: Centerline,
    *,
    min_anterior_mm: float | None = None,
) -> list[BodyExtent]:
    """Extent of every labelled body along the cord (superior first); see the module docstring."""
    out = []
    for v in np.unique(bodies):
        v = int(v)
        if v == 0:
            continue
        pts = _points_mm(bodies == v, affine)
        s = project_onto_centerline(pts, cl)
        if min_anterior_mm is not None:
            keep = anterior_offsets_mm(pts, s, cl) >= min_anterior_mm
            if not keep.any():
                continue
            s = s[keep]
        lo, hi = np.percentile(s, EXTENT_PERCENTILES)
        out.append(BodyExtent(v if v in VERTEBRA_NAMES else 0, float(lo), float(hi), float(np.median(s))))
    return sorted(out, key=lambda b: -b.median_mm)  # superior first


def disc_positions(discs: npt.NDArray[np.integer], affine: npt.NDArray[np.float64], cl: Centerline) -> list[float]:
    ids = [int(v) for v in np.unique(discs) if DISC_OFFSET < int(v) < ENDPLATE_OFFSET]
    return [float(np.median(project_onto_centerline(_points_mm(discs == v, affine), cl))) for v in ids]


def level_spans(bodies: list[BodyExtent], discs_mm: list[float]) -> list[LevelSpan]:
    """Spans between mid-disc boundaries (see the module docstring, step 3); superior first."""
    if not bodies:
        return []
    d = np.asarray(discs_mm, dtype=np.float64)
    bounds: list[float] = []
    for above, below in pairwise(bodies):
        gap_mid = 0.5 * (above.lower_mm + below.upper_mm)
        between = d[(d < above.median_mm) & (d > below.median_mm)]
        bounds.append(float(between[np.argmin(np.abs(between - gap_mid))]) if between.size else gap_mid)
    top, bottom = bodies[0], bodies[-1]
    reach_top = top.upper_mm + (top.upper_mm - top.lower_mm)
    up = d[(d > top.median_mm) & (d <= reach_top)]
    upper = float(up.min()) if up.size else top.upper_mm
    reach_bottom = bottom.lower_mm - (bottom.upper_mm - bottom.lower_mm)
    down = d[(d < bottom.median_mm) & (d >= reach_bottom)]
    lower = float(down.max()) if down.size else bottom.lower_mm
    edges = [upper, *bounds, lower]
    return [LevelSpan(b.level, edges[i + 1], edges[i]) for i, b in enumerate(bodies)]


def level_of_positions(positions_mm: npt.ArrayLike, spans: list[LevelSpan]) -> npt.NDArray[np.int32]:
    """Level id for each cord position (0 outside every span or in an unnamed body's span)."""
    s = np.asarray(positions_mm, dtype=np.float64)
    out = np.zeros(s.shape, dtype=np.int32)
    for sp in spans:
        out[(s >= sp.lower_mm) & (s < sp.upper_mm)] = sp.level
    return out


def paint_cord_levels(
    cord: Volume,
    bodies: npt.NDArray[np.integer],
    discs: npt.NDArray[np.integer],
    *,
    present_threshold: float = PRESENT_THRESHOLD,
    bandwidth_mm: float = DEFAULT_BANDWIDTH_MM,
    min_anterior_mm: float | None = None,
) -> tuple[npt.NDArray[np.int16], list[LevelSpan]]:
    """Cord-by-level mask (level ids on cord voxels, on ``cord``'s grid) and the spans used.

    ``bodies``: vertebral bodies labelled by level id (ids outside ``neurospine.labels`` count as
    unnamed); ``discs``: a map whose ``100+X`` values are discs (other values are ignored). Both on the
    cord's grid. ``min_anterior_mm``: keep only body voxels that far in front of the cord (whole
    vertebrae in ``bodies``).
    """
    shape = np.asarray(cord.data).shape
    if np.asarray(bodies).shape != shape or np.asarray(discs).shape != shape:
        raise ValueError("bodies and discs must be on the cord's grid")
    out = np.zeros(shape, dtype=np.int16)
    cl = cord_centerline(cord, present_threshold=present_threshold, bandwidth_mm=bandwidth_mm)
    if cl is None:
        return out, []
    aff = np.asarray(cord.affine, dtype=np.float64)
    extents = body_extents(np.asarray(bodies), aff, cl, min_anterior_mm=min_anterior_mm)
    spans = level_spans(extents, disc_positions(np.asarray(discs), aff, cl))
    if not spans:
        return out, spans
    in_cord = np.asarray(cord.data, dtype=np.float64) >= present_threshold
    idx = np.argwhere(in_cord)
    pos = project_onto_centerline(idx @ aff[:3, :3].T + aff[:3, 3], cl)
    out[tuple(idx.T)] = level_of_positions(pos, spans)
    return out, spans
