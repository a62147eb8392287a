"""Body and disc instances from semantic labels, and their level ids.

Bodies: connected components of the body class after removing pixels where the disc probability is
high (this cuts bodies merged across a thin disc), then grown back inside the body mask. Discs:
connected components of the disc class. Small components are dropped (areas in mm^2), and so are disc
components that do not lie on the column of bodies: farther than ``DISC_NEAR_MM`` from every body, or
with a centroid off the line through the centroids of the two bodies around it by more than
``DISC_OFF_AXIS_FRACTION`` of those bodies' mean depth across that line (``discs_on_column``: a blob in
the spinal canal or in front of the column is not between two bodies).

Ids follow ``neurospine.labels``: vertebra ids for bodies and ``100 + id of the vertebra above`` for
discs. Levels are only known from an anchor: ``lowest_level`` (e.g. ``"S1"`` when the most inferior
body in view is S1). Without one, bodies get positional ids 1..N from superior to inferior (flagged
``positional``; they are not C1..). With anchored levels a disc component below a sacral body (S1 and
lower) is dropped: the sacrum is fused and has no disc below it; the disc below the lowest body in view
is named after the next level of the standard column (``L5-S1`` when S1 is not segmented).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.labels import DISC_OFFSET, VERTEBRA_IDS, VERTEBRA_NAMES

MIN_BODY_MM2 = 60.0
MIN_DISC_MM2 = 15.0
SPLIT_DISC_PROB = 0.35
#: Bodies closer than this (mm, boundary to boundary) belong to the same spinal column.
LINK_MM = 20.0
#: Bodies smaller than this fraction of the column's median body area are dropped.
MIN_BODY_FRACTION = 0.2
#: Discs farther than this (mm) from every kept body are dropped.
DISC_NEAR_MM = 6.0
#: Discs whose centroid lies farther than this fraction of the neighbouring bodies' mean depth (extent
#: across the column axis) from the line through their centroids are dropped. Bodies span about +-0.5
#: of their depth around that line, so 0.5 = the centroid is outside the column's front-back extent.
DISC_OFF_AXIS_FRACTION = 0.5
#: A body larger than this multiple of the median body area is checked for a waist to cut at.
OVERSIZE = 1.8
#: ... and cut where its width drops below this fraction of its median width.
WAIST = 0.75

#: Standard column used to name levels from an anchor (no T13/L6).
STANDARD_LEVELS: tuple[int, ...] = (*range(1, 8), *range(8, 20), *range(20, 25), 26, 29, 30, 31, 32)
#: Sacrum and coccyx: fused, no intervertebral disc below them (S1..S6, Cocc).
SACRAL_IDS: frozenset[int] = frozenset((26, 27, 29, 30, 31, 32, 33))


@dataclass
class Instance:
    value: int
    kind: str  # "body" or "disc"
    name: str
    mask: npt.NDArray[np.bool_]
    centroid_rc: tuple[float, float]


@dataclass
class Instances2D:
    label_map: npt.NDArray[np.int16]
    bodies: list[Instance] = field(default_factory=list)
    discs: list[Instance] = field(default_factory=list)
    naming: str = "positional"  # or "anchored"


def _components(mask: npt.NDArray[np.bool_], min_px: int) -> list[npt.NDArray[np.bool_]]:
    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
    return [lab == i + 1 for i in range(n) if sizes[i] >= min_px]


def split_bodies(
    body: npt.NDArray[np.bool_], disc_prob: npt.NDArray[np.float32], min_px: int
) -> list[npt.NDArray[np.bool_]]:
    """Body components; bodies bridged by a likely disc are cut there and regrown inside ``body``."""
    seeds = body & (disc_prob < SPLIT_DISC_PROB)
    seeds = ndimage.binary_erosion(seeds, iterations=1)  # also cuts one-pixel bridges
    lab, n = ndimage.label(seeds)
    if n == 0:
        return _components(body, min_px)
    sizes = ndimage.sum_labels(seeds, lab, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= max(4, min_px // 4)
    lab = np.where(keep[lab], lab, 0)
    # grow seeds back over the whole body mask (nearest seed)
    _, (ri, ci) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    grown = np.where(body, lab[ri, ci], 0)
    out = []
    for v in np.unique(grown):
        if v == 0:
            continue
        m = grown == v
        if m.sum() >= min_px:
            out.append(m)
    return out


def split_oversized(masks: list[npt.NDArray[np.bool_]], min_px: int, depth: int = 2) -> list[npt.NDArray[np.bool_]]:
    """Cut bodies much larger than the median (two bodies fused across a missed disc) at their waist.

    A mask larger than ``OVERSIZE`` x the median body area is cut along the image row (the spine runs
    roughly along the rows of a sagittal view) where it is narrowest, within the middle 60 % of its
    height, if that row is narrower than ``WAIST`` x its median row width.
    """
    if len(masks) < 3 or depth <= 0:
        return masks
    areas = np.array([float(m.sum()) for m in masks])
    med = float(np.median(areas))
    out: list[npt.NDArray[np.bool_]] = []
    changed = False
    for m, a in zip(masks, areas, strict=True):
        if a <= OVERSIZE * med:
            out.append(m)
            continue
        widths = m.sum(axis=1).astype(float)
        rows = np.flatnonzero(widths > 0)
        r0, r1 = rows[0], rows[-1]
        lo, hi = int(r0 + 0.2 * (r1 - r0)), int(r0 + 0.8 * (r1 - r0))
        if hi <= lo:
            out.append(m)
            continue
        cut = lo + int(np.argmin(widths[lo : hi + 1]))
        if widths[cut] >= WAIST * float(np.median(widths[rows])):
            out.append(m)
            continue
        top, bottom = m.copy(), m.copy()
        top[cut + 1 :] = False
        bottom[: cut + 1] = False
        parts = [p for p in (top, bottom) if p.sum() >= min_px]
        out.extend(parts if parts else [m])
        changed = changed or len(parts) == 2
    return split_oversized(out, min_px, depth - 1) if changed else out


def split_at_discs(
    bodies: list[npt.NDArray[np.bool_]], discs: list[npt.NDArray[np.bool_]], min_px: int
) -> list[npt.NDArray[np.bool_]]:
    """Cut a body that wraps around a disc (two bodies joined by a rim around a narrow disc).

    A disc whose centroid lies inside a body's bounding box, in the middle 60 % of its height, with body
    pixels both above and below it, cuts that body along the image row through the disc centroid.
    """
    out: list[npt.NDArray[np.bool_]] = []
    queue = list(bodies)
    cents = [_centroid(d) for d in discs]
    while queue:
        m = queue.pop()
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1], cols[0], cols[-1]
        cut = None
        for r, c in cents:
            ri, ci = int(np.rint(r)), int(np.rint(c))
            inside = r0 + 0.2 * (r1 - r0) <= r <= r0 + 0.8 * (r1 - r0) and c0 <= c <= c1
            # the body must lie both above and below the disc centre (it wraps around the disc)
            if inside and m[:ri, ci].any() and m[ri + 1 :, ci].any():
                cut = ri
                break
        if cut is None:
            out.append(m)
            continue
        top, bottom = m.copy(), m.copy()
        top[cut + 1 :] = False
        bottom[: cut + 1] = False
        if top.sum() >= min_px and bottom.sum() >= min_px:
            queue.extend([top, bottom])
        else:
            out.append(m)
    return out


def _boundary_points_mm(
    m: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], max_points: int = 400
) -> npt.NDArray[np.float64]:
    box = ndimage.find_objects(m.astype(np.uint8))[0]
    assert box is not None
    sub = np.pad(m[box], 1)
    edge = sub & ~ndimage.binary_erosion(sub)
    pts = np.argwhere(edge if edge.any() else sub).astype(np.float64) - 1.0
    pts += np.array([box[0].start, box[1].start], dtype=np.float64)
    if len(pts) > max_points:
        pts = pts[:: int(np.ceil(len(pts) / max_points))]
    return pts * np.asarray(spacing_mm)


def spine_chain(
    bodies: list[npt.NDArray[np.bool_]], spacing_mm: tuple[float, float], link_mm: float = LINK_MM
) -> list[int]:
    """Indices of the bodies forming the spine: the largest (by area) group of bodies linked by gaps < ``link_mm``.

    Removes isolated false positives (bowel, pelvis, labels on a radiograph) that are not part of the
    column of vertebral bodies.
    """
    n = len(bodies)
    if n <= 1:
        return list(range(n))
    from scipy.spatial import cKDTree

    pts = [_boundary_points_mm(m, spacing_mm) for m in bodies]
    trees = [cKDTree(p) for p in pts]
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            dist, _ = trees[j].query(pts[i], k=1, distance_upper_bound=link_mm)
            if np.isfinite(dist).any():
                parent[find(i)] = find(j)
    areas = np.array([float(m.sum()) for m in bodies])
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    best = max(groups.values(), key=lambda g: float(areas[g].sum()))
    med = float(np.median(areas[best]))
    return sorted(i for i in best if areas[i] >= MIN_BODY_FRACTION * med)


def _near_union(
    items: list[npt.NDArray[np.bool_]], union: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], mm: float
) -> list[bool]:
    """For each mask: does some pixel lie within ``mm`` of ``union``? (one distance map on a crop)."""
    rows = np.flatnonzero(union.any(axis=1))
    cols = np.flatnonzero(union.any(axis=0))
    pr, pc = int(np.ceil(mm / spacing_mm[0])) + 1, int(np.ceil(mm / spacing_mm[1])) + 1
    r0, r1 = max(0, rows[0] - pr), min(union.shape[0], rows[-1] + pr + 1)
    c0, c1 = max(0, cols[0] - pc), min(union.shape[1], cols[-1] + pc + 1)
    dist = ndimage.distance_transform_edt(~union[r0:r1, c0:c1], sampling=spacing_mm)
    out = []
    for m in items:
        sub = m[r0:r1, c0:c1]
        out.append(bool(sub.any() and float(dist[sub].min()) <= mm))
    return out


def discs_on_column(
    discs: list[npt.NDArray[np.bool_]],
    bodies: list[npt.NDArray[np.bool_]],
    spacing_mm: tuple[float, float],
    fraction: float = DISC_OFF_AXIS_FRACTION,
) -> list[bool]:
    """For each disc: does its centroid lie within the front-back extent of the bodies around it?

    The column runs roughly along the image rows (as elsewhere in this module). For a disc, the two
    bodies consecutive along the rows whose centroids bracket the disc's centroid row (the first or last
    two bodies for a disc beyond the ends) define the local column axis, the line through their centroids
    (mm). The disc is kept when its centroid's distance from that line is at most ``fraction`` x the
    mean depth of the two bodies, a body's depth being the extent of its pixel centres across the axis.
    With fewer than two bodies there is no axis and every disc is kept.
    """
    if len(bodies) < 2:
        return [True] * len(discs)
    sp = np.asarray(spacing_mm, dtype=np.float64)
    pts = [np.argwhere(m).astype(np.float64) * sp for m in bodies]
    cents = np.array([p.mean(axis=0) for p in pts])
    order = np.argsort(cents[:, 0], kind="stable")
    pts = [pts[i] for i in order]
    cents = cents[order]
    out = []
    for m in discs:
        c = np.argwhere(m).astype(np.float64).mean(axis=0) * sp
        i = int(np.clip(np.searchsorted(cents[:, 0], c[0]) - 1, 0, len(cents) - 2))
        axis = cents[i + 1] - cents[i]
        length = float(np.hypot(axis[0], axis[1]))
        if length == 0.0:
            out.append(True)
            continue
        normal = np.array([-axis[1], axis[0]]) / length
        depths = [float(np.ptp(pts[k] @ normal)) for k in (i, i + 1)]
        offset = abs(float((c - cents[i]) @ normal))
        out.append(offset <= fraction * float(np.mean(depths)))
    return out


def _centroid(m: npt.NDArray[np.bool_]) -> tuple[float, float]:
    pts = np.argwhere(m)
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def build_instances(
    labels: npt.NDArray[np.uint8],
    probs: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float],
    *,
    lowest_level: str | None = None,
    filter_off_column: bool = True,
) -> Instances2D:
    """Instances from semantic ``labels`` (0/1/2) and probabilities (3, H, W).

    ``filter_off_column``: drop disc components off the column of bodies (``discs_on_column``).
    """
    px_mm2 = spacing_mm[0] * spacing_mm[1]
    bodies = split_bodies(labels == 1, probs[2], int(np.ceil(MIN_BODY_MM2 / px_mm2)))
    discs = _components(labels == 2, int(np.ceil(MIN_DISC_MM2 / px_mm2)))
    bodies = split_at_discs(bodies, discs, int(np.ceil(MIN_BODY_MM2 / px_mm2)))
    bodies = split_oversized(bodies, int(np.ceil(MIN_BODY_MM2 / px_mm2)))
    keep = spine_chain(bodies, spacing_mm)
    bodies = [bodies[i] for i in keep]
    if bodies:
        union = np.zeros(labels.shape, bool)
        for m in bodies:
            union |= m
        near = _near_union(discs, union, spacing_mm, DISC_NEAR_MM)
        discs = [m for m, ok in zip(discs, near, strict=True) if ok]
        if filter_off_column:
            on = discs_on_column(discs, bodies, spacing_mm)
            discs = [m for m, ok in zip(discs, on, strict=True) if ok]
    bodies.sort(key=lambda m: _centroid(m)[0])
    discs.sort(key=lambda m: _centroid(m)[0])
    body_rows = [_centroid(m)[0] for m in bodies]
    naming = "positional"
    ids: list[int]
    first = 1
    if discs and bodies and _centroid(discs[0])[0] < body_rows[0]:
        first = 2  # positional: a disc above the top body needs a body id above it
    ids = list(range(first, first + len(bodies)))
    if lowest_level is not None and bodies:
        lowest = VERTEBRA_IDS[lowest_level.upper()]
        pos = STANDARD_LEVELS.index(lowest)
        if pos + 1 >= len(bodies):
            ids = [STANDARD_LEVELS[pos - (len(bodies) - 1 - i)] for i in range(len(bodies))]
            naming = "anchored"
    out = Instances2D(np.zeros(labels.shape, np.int16), naming=naming)
    for m, v in zip(bodies, ids, strict=True):
        name = VERTEBRA_NAMES.get(v, f"body{v}") if naming == "anchored" else f"body{v}"
        out.bodies.append(Instance(v, "body", name, m, _centroid(m)))
        out.label_map[m] = v
    used: set[int] = set()
    for m in discs:
        r = _centroid(m)[0]
        above = [i for i, br in enumerate(body_rows) if br < r]
        if above:
            v_above = ids[above[-1]]
        elif bodies:
            v_above = _previous_id(ids[0], naming)
        else:
            v_above = len(used) + 1
        if naming == "anchored" and (v_above in SACRAL_IDS or v_above not in VERTEBRA_NAMES):
            continue  # no disc below the sacrum nor above C1: a disc-like blob there is not created
        value = DISC_OFFSET + v_above
        if value in used:  # two disc pieces between the same bodies: merge them
            prev = next(d for d in out.discs if d.value == value)
            prev.mask = prev.mask | m
            prev.centroid_rc = _centroid(prev.mask)
            out.label_map[m] = value
            continue
        used.add(value)
        below = [i for i, br in enumerate(body_rows) if br > r]
        if naming == "anchored" and v_above in VERTEBRA_NAMES:
            low = VERTEBRA_NAMES.get(ids[below[0]] if below else _next_id(v_above), "?")
            name = f"{VERTEBRA_NAMES[v_above]}-{low}"
        else:
            name = f"disc{v_above}"
        out.discs.append(Instance(value, "disc", name, m, _centroid(m)))
        out.label_map[m] = value
    return out


def _next_id(v: int) -> int:
    """The level below ``v`` in the standard column (``v`` is not sacral)."""
    i = STANDARD_LEVELS.index(v) if v in STANDARD_LEVELS else -1
    return STANDARD_LEVELS[i + 1] if 0 <= i < len(STANDARD_LEVELS) - 1 else 0


def _previous_id(v: int, naming: str) -> int:
    if naming == "anchored" and v in STANDARD_LEVELS and STANDARD_LEVELS.index(v) > 0:
        return STANDARD_LEVELS[STANDARD_LEVELS.index(v) - 1]
    return max(0, v - 1)
