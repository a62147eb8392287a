"""Phase 2: vertebra instances from the semantic class map (model grid, PIR).

Route (no second network): vertebral-body seeds are eroded corpus components; a seed much larger than
its neighbours is split by further erosion (bodies touching through a thin disc); seeds grow back over
corpus and endplate (nearest seed). Posterior elements join the body they reach first through bone
(shortest paths, multi-source Dijkstra); below the lowest body the column's sacrum competes with the bodies,
so the sacrum's own arch, which the network paints with posterior-element classes, joins the sacrum rather
than L5 (docs/decisions/spine-sacral-arch.md). Each disc / endplate voxel is tied to the vertebra above it
along the local spine axis (SPINEPS rule 100+X / 200+X).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cc3d
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.spine import classes as C

log = logging.getLogger(__name__)

#: smallest vertebral body kept (mm^3); a cervical body is about 3,000 mm^3
MIN_BODY_MM3 = 400.0
#: a body seed this many times the median volume is checked for a merge of two bodies
MERGE_RATIO = 1.6
#: a body smaller than this fraction of its neighbours' median volume is a fragment, not a vertebra
FRAGMENT_RATIO = 0.25
#: a body whose centroid is this far (left-right) from the column's median is off the column
OFF_MIDLINE_MM = 20.0
#: a body seed taller than this many times its depth is checked too (C2 with its dens is about 2.4)
ELONGATION = 2.8
#: two body seeds side by side (left-right) sharing this fraction of the shorter one's craniocaudal extent
#: and of the shallower one's anterior-posterior extent are one vertebra (vertebrae stack, they never sit
#: side by side; thick-slice input can break one body into left-right pieces)
SIDE_BY_SIDE_OVERLAP = 0.6
#: a posterior-element piece that no path through the posterior classes links to a body joins the nearest
#: labelled bone only when it is at most this far (mm) from it; farther pieces stay unassigned (a vertebra never
#: absorbs a detached piece of soft tissue the network mislabelled)
POSTERIOR_JUMP_MM = 10.0
#: the sacrum competes (by path) for posterior-element voxels only this far (mm) below the lowest body's inferior
#: surface: above it lies L5's own arch (docs/decisions/spine-sacral-arch.md); below it, L5's inferior articular
#: processes still join L5 when a path from L5 reaches them first
SACRAL_ARCH_BELOW_MM = 5.0
#: farther than this (mm) below it, a posterior-element voxel is the sacrum's arch even when no path through bone
#: reaches it from the sacrum (the network's sacrum may be the sacral bodies only, the sacral canal between):
#: L5's inferior articular processes end about one lumbosacral disc height below L5
SACRAL_ARCH_DEEP_MM = 12.0
#: a grown body whose narrowest row (inferior-superior axis) holds less than this share of its fullest row, with
#: a disc in that row, is two vertebrae joined across the disc (docs/decisions/spine-disc-waist.md)
WAIST_RATIO = 0.25
#: rows above half the fullest row needed on each side of such a waist (a body end tapering out is no waist)
WAIST_FULL_ROWS = 2


@dataclass
class Vertebra:
    """One vertebra found on the model grid (index = rank from the top, 1-based)."""

    index: int
    centroid_vox: npt.NDArray[np.float64]  # body centroid (P, I, R) voxel coordinates
    body_voxels: int
    height_mm: float
    depth_mm: float
    top_row: float
    bottom_row: float


@dataclass
class InstanceResult:
    """Instance map on the model grid: 1..N vertebrae (top to bottom), 100+k discs, 200+k endplates,
    ``SACRUM_TMP`` sacrum; ``body`` holds corpus+endplate voxels per vertebra (for body metrics)."""

    instances: npt.NDArray[np.int16]
    body: npt.NDArray[np.int16]
    vertebrae: list[Vertebra] = field(default_factory=list)
    sacrum_voxels: int = 0  # voxels of the sacrum class (without the arch it took: naming reads this)
    split_bodies: int = 0
    #: posterior-element voxels the sacrum took (``SACRUM_TMP`` in ``instances``; None: none) and the vertebra the
    #: bodies-only assignment gave each of them (0: none), for :func:`settle_sacral_arch`
    arch: npt.NDArray[np.bool_] | None = None
    arch_owner: npt.NDArray[np.int16] | None = None


#: sacrum value on the temporary map (vertebra ranks are 1..98, discs 100+rank, endplates 200+rank)
SACRUM_TMP = 99
MAX_VERTEBRAE = 98
_DISC, _EP = 100, 200
#: temporary endplate ids: 200 + the rank of the vertebra above the disc the endplate faces
ENDPLATE_ID_OFFSET = _EP


def _ball(radius_vox: tuple[int, int, int]) -> npt.NDArray[np.bool_]:
    rz = [max(0, r) for r in radius_vox]
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in rz)]
    dist = sum((g / max(r, 1)) ** 2 for g, r in zip(grids, rz, strict=True))
    return np.asarray(dist <= 1.0)


def _components(mask: npt.NDArray[np.bool_], min_vox: int) -> tuple[npt.NDArray[np.int32], int]:
    labels, n = cc3d.connected_components(mask.astype(np.uint8), connectivity=6, return_N=True)
    if n == 0:
        return labels.astype(np.int32), 0
    sizes = np.bincount(labels.ravel())
    keep = np.nonzero(sizes >= min_vox)[0]
    keep = keep[keep > 0]
    lut = np.zeros(sizes.size, dtype=np.int32)
    lut[keep] = np.arange(1, keep.size + 1)
    return lut[labels], int(keep.size)


def _split_merged(
    seeds: npt.NDArray[np.int32], n: int, spacing_mm: tuple[float, float, float]
) -> tuple[npt.NDArray[np.int32], int, int]:
    """Split seeds much larger than the median, or much taller than deep (bodies merged along the column),
    by eroding until they fall apart."""
    if n == 0:
        return seeds, n, 0
    sizes = np.bincount(seeds.ravel(), minlength=n + 1)[1:]
    candidates = set()
    if n >= 3:
        median = float(np.median(sizes))
        candidates |= {int(i) + 1 for i in np.nonzero(sizes > MERGE_RATIO * median)[0]}
    for i, box in enumerate(ndimage.find_objects(seeds), start=1):
        if box is None:
            continue
        height = (box[1].stop - box[1].start) * spacing_mm[1]
        depth = (box[0].stop - box[0].start) * spacing_mm[0]
        if height > ELONGATION * depth:
            candidates.add(i)
    out = seeds.copy()
    next_id = n + 1
    splits = 0
    struct = _ball(tuple(max(1, round(1.0 / s)) for s in spacing_mm))  # type: ignore[arg-type]
    for lab in sorted(candidates):
        region = seeds == lab
        sl = ndimage.find_objects(region.astype(np.uint8))[0]
        sub = region[sl]
        eroded = sub
        for _ in range(8):
            eroded = ndimage.binary_erosion(eroded, struct)
            vox = float(np.prod(spacing_mm))
            parts, k = _components(eroded, max(1, int(0.05 * sub.sum()), int(0.3 * MIN_BODY_MM3 / vox)))
            if k >= 2:
                # regrow parts inside the original region by nearest part
                _, idx = ndimage.distance_transform_edt(parts == 0, sampling=spacing_mm, return_indices=True)
                grown = parts[tuple(idx)]
                grown[~sub] = 0
                view = out[sl]
                view[sub] = 0
                for p in range(1, k + 1):
                    view[grown == p] = lab if p == 1 else next_id
                    if p > 1:
                        next_id += 1
                splits += k - 1
                break
            if not eroded.any():
                break
    return out, next_id - 1, splits


def _extent(idx: npt.NDArray[np.intp]) -> tuple[float, float]:
    return float(np.percentile(idx, 5)), float(np.percentile(idx, 95))


def _overlap_fraction(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    shorter = min(a[1] - a[0], b[1] - b[0]) + 1.0
    return max(0.0, inter + 1.0) / shorter


def merge_side_by_side(seeds: npt.NDArray[np.int32], n: int) -> tuple[npt.NDArray[np.int32], int, int]:
    """Join body seeds that sit side by side (same rows and columns, different left-right position).

    Returns the relabelled seeds (1..m), m, and the number of joins.
    """
    if n < 2:
        return seeds, n, 0
    rows: dict[int, tuple[float, float]] = {}
    cols: dict[int, tuple[float, float]] = {}
    for lab, box in enumerate(ndimage.find_objects(seeds), start=1):
        if box is None:
            continue
        pts = np.nonzero(seeds[box] == lab)
        rows[lab] = _extent(pts[1] + box[1].start)
        cols[lab] = _extent(pts[0] + box[0].start)
    parent = list(range(n + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    joins = 0
    labs = sorted(rows)
    for i, a in enumerate(labs):
        for b in labs[i + 1 :]:
            if (
                _overlap_fraction(rows[a], rows[b]) >= SIDE_BY_SIDE_OVERLAP
                and _overlap_fraction(cols[a], cols[b]) >= SIDE_BY_SIDE_OVERLAP
                and root(a) != root(b)
            ):
                parent[root(b)] = root(a)
                joins += 1
    if not joins:
        return seeds, n, 0
    roots = sorted({root(i) for i in labs})
    lut = np.zeros(n + 1, dtype=np.int32)
    for i in labs:
        lut[i] = roots.index(root(i)) + 1
    return lut[seeds], len(roots), joins


def _waist_row(prof: npt.NDArray[np.int64]) -> int | None:
    """The narrowest row of a body's row profile if it is a waist (see :data:`WAIST_RATIO`), else None."""
    full = float(prof.max())
    strong = np.cumsum(prof > 0.5 * full)
    rows = [
        r
        for r in range(prof.size)
        if prof[r] < WAIST_RATIO * full and strong[r] >= WAIST_FULL_ROWS and strong[-1] - strong[r] >= WAIST_FULL_ROWS
    ]
    return min(rows, key=lambda r: int(prof[r])) if rows else None


def split_at_disc_waist(
    body: npt.NDArray[np.int32], n: int, cls: npt.NDArray[np.integer]
) -> tuple[npt.NDArray[np.int32], int, int]:
    """Cut each grown body (P, I, R grid) at a waist that is a disc: its narrowest row holds less than
    :data:`WAIST_RATIO` of its fullest row and more disc voxels inside the body's footprint than body voxels.

    Growth over corpus and endplate voxels can cross a disc where the network paints corpus through it (lateral
    slices the disc has left) and carry a body's label into a neighbour too thin to have a seed of its own (a
    slice of the next vertebra at the field's edge). The larger part keeps the label and the waist row; the other
    part becomes a body of its own (the caller's size and column rules then keep or drop it). Only the narrowest row
    is tested, so a body is cut at most once per call."""
    out = body.copy()
    next_id = n + 1
    splits = 0
    for k, box in enumerate(ndimage.find_objects(body, max_label=n), start=1):
        if box is None:
            continue
        own = body[box] == k
        prof = own.sum(axis=(0, 2))
        r = _waist_row(prof)
        if r is None:
            continue
        disc = (np.asarray(cls[box])[:, r, :] == C.DISC) & own.any(axis=1)
        if int(disc.sum()) <= int(prof[r]) or next_id > MAX_VERTEBRAE:  # the cap keeps the id ranges disjoint
            continue
        rows = np.arange(own.shape[1])[None, :, None]
        smaller = own & (rows < r) if prof[:r].sum() < prof[r + 1 :].sum() else own & (rows > r)
        out[box][smaller] = next_id
        next_id += 1
        splits += 1
    return out, next_id - 1, splits


def _relabel_top_to_bottom(labels: npt.NDArray[np.int32], n: int) -> tuple[npt.NDArray[np.int32], int]:
    present = [i for i in range(1, n + 1)]
    if not present:
        return labels, 0
    with np.errstate(invalid="ignore", divide="ignore"):
        coms = ndimage.center_of_mass(np.ones_like(labels, dtype=np.uint8), labels, present)
    valid = [(lab, c[1]) for lab, c in zip(present, coms, strict=True) if np.isfinite(c[1])]
    valid.sort(key=lambda t: t[1])
    lut = np.zeros(n + 1, dtype=np.int32)
    for rank, (lab, _) in enumerate(valid, start=1):
        lut[lab] = rank
    return lut[labels], len(valid)


def _nearest_label(
    labels: npt.NDArray[np.integer], pts: tuple[npt.NDArray[np.intp], ...], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.int32]:
    """Label of the nearest labelled voxel for each point (EDT on the points' bounding box + margin)."""
    lo = [max(0, int(p.min()) - 40) for p in pts]
    hi = [min(dim, int(p.max()) + 41) for p, dim in zip(pts, labels.shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    sub = labels[box]
    if not (sub > 0).any():
        sub, lo = labels, [0, 0, 0]
    _, idx = ndimage.distance_transform_edt(sub == 0, sampling=spacing_mm, return_indices=True)
    local = tuple(p - o for p, o in zip(pts, lo, strict=True))
    return np.asarray(sub[tuple(i[local] for i in idx)], dtype=np.int32)


def grow_labels(
    seeds: npt.NDArray[np.int32],
    mask: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float, float],
    max_steps: int = 6,
) -> npt.NDArray[np.int32]:
    """Grow ``seeds`` inside ``mask`` by constrained dilation, then give what is left the nearest seed."""
    lab = np.where(mask, seeds, 0).astype(np.int32)
    cross = ndimage.generate_binary_structure(3, 1)
    for _ in range(max_steps):
        todo = mask & (lab == 0)
        if not todo.any():
            break
        grown = ndimage.grey_dilation(lab, footprint=cross)
        new = todo & (grown > 0)
        if not new.any():
            break
        lab[new] = grown[new]
    rest = mask & (lab == 0)
    if rest.any() and (lab > 0).any():
        # only pieces connected (inside the mask) to a grown body join it; a detached fragment (e.g. a
        # piece of S1 across the L5-S1 disc) is not glued to the nearest vertebra
        comp, _ = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
        attached = np.unique(comp[lab > 0])
        rest &= np.isin(comp, attached[attached > 0])
        if rest.any():
            pts = np.nonzero(rest)
            lab[pts] = _nearest_label(lab, pts, spacing_mm)
    return lab


def _tie_above(
    mask: npt.NDArray[np.bool_],
    body: npt.NDArray[np.int32],
    centroids: npt.NDArray[np.float64],
    spacing_mm: tuple[float, float, float],
) -> npt.NDArray[np.int32]:
    """For each voxel of ``mask``, the index of the vertebra just above it (0 when none is above)."""
    out = np.zeros(mask.shape, dtype=np.int32)
    if not mask.any() or centroids.shape[0] == 0:
        return out
    pts = np.nonzero(mask)
    nearest = _nearest_label(body, pts, spacing_mm)  # 1..N
    n = centroids.shape[0]
    sp = np.asarray(spacing_mm)
    # local spine axis (pointing inferiorly) at each vertebra
    axes = np.zeros((n, 3))
    for k in range(n):
        lo, hi = max(0, k - 1), min(n - 1, k + 1)
        d = (centroids[hi] - centroids[lo]) * sp if hi > lo else np.array([0.0, 1.0, 0.0])
        axes[k] = d / (np.linalg.norm(d) + 1e-9)
    coords = np.stack(pts, axis=1).astype(np.float64)
    rel = (coords - centroids[nearest - 1]) * sp
    below = np.einsum("ij,ij->i", rel, axes[nearest - 1]) > 0
    out[pts] = np.where(below, nearest, nearest - 1)
    return out


def _off_column(body: npt.NDArray[np.int32], n: int, spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.intp]:
    """Bodies that are fragments rather than vertebrae: much smaller than their neighbours along the column
    (< ``FRAGMENT_RATIO`` of the median of the 3 above and 3 below; not for the top and bottom ones) or off the
    column's midline (left-right
    distance of the centroid from the median > ``OFF_MIDLINE_MM``)."""
    if n < 3:
        return np.zeros(0, dtype=np.intp)
    labels = list(range(1, n + 1))
    sizes = np.bincount(body.ravel(), minlength=n + 1)[1:].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        coms = np.array(ndimage.center_of_mass(np.ones(body.shape, np.uint8), body, labels))
    r_mm = coms[:, 2] * spacing_mm[2]
    empty = ~np.isfinite(r_mm)
    if empty.all():
        return np.zeros(0, dtype=np.intp)
    bad = empty | (np.abs(np.where(empty, 0.0, r_mm) - np.nanmedian(r_mm)) > OFF_MIDLINE_MM)
    for i in range(1, n - 1):  # the top and bottom bodies may be cut by the field of view
        neighbours = [sizes[j] for j in range(max(0, i - 3), min(n, i + 4)) if j != i and not bad[j]]
        if neighbours and sizes[i] < FRAGMENT_RATIO * float(np.median(neighbours)):
            bad[i] = True
    return np.nonzero(bad)[0] + 1


def geodesic_assign(
    mask: npt.NDArray[np.bool_],
    seeds: npt.NDArray[np.integer],
    spacing_mm: tuple[float, float, float],
    max_jump_mm: float = POSTERIOR_JUMP_MM,
) -> npt.NDArray[np.int32]:
    """Label every voxel of ``mask`` with the seed label reached by the shortest path inside ``mask``.

    Paths start at seed voxels (``seeds > 0``) touching ``mask``; voxels no path reaches take the label of the
    nearest labelled voxel (seed or reached voxel) in straight line when it is at most ``max_jump_mm`` away, and
    stay 0 otherwise. Multi-source Dijkstra on the 6-neighbour voxel graph.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    out = np.zeros(mask.shape, dtype=np.int32)
    seed_any = seeds > 0
    if not mask.any() or not seed_any.any():
        return out
    touching = seed_any & ndimage.binary_dilation(mask, iterations=1)
    region = mask | touching
    sl = ndimage.find_objects(region.astype(np.uint8))[0]
    reg = region[sl]
    index = np.full(reg.shape, -1, dtype=np.int64)
    nodes = np.nonzero(reg)
    index[nodes] = np.arange(nodes[0].size)
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    weights: list[npt.NDArray[np.float64]] = []
    for axis in range(3):
        a = [slice(None)] * 3
        b = [slice(None)] * 3
        a[axis] = slice(0, -1)
        b[axis] = slice(1, None)
        ia, ib = index[tuple(a)], index[tuple(b)]
        both = (ia >= 0) & (ib >= 0)
        rows.append(ia[both])
        cols.append(ib[both])
        weights.append(np.full(int(both.sum()), spacing_mm[axis]))
    n_nodes = nodes[0].size
    graph = coo_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))), shape=(n_nodes, n_nodes)
    ).tocsr()
    seed_sub = touching[sl]
    seed_nodes = index[seed_sub]
    _, _, sources = dijkstra(graph, directed=False, indices=seed_nodes, min_only=True, return_predecessors=True)
    node_label = np.zeros(n_nodes, dtype=np.int32)
    ok = sources >= 0
    seed_lab_flat = np.zeros(n_nodes, dtype=np.int32)
    seed_lab_flat[seed_nodes] = seeds[sl][seed_sub]
    node_label[ok] = seed_lab_flat[sources[ok]]
    sub = np.zeros(reg.shape, dtype=np.int32)
    sub[nodes] = node_label
    out[sl] = sub
    missing = mask & (out == 0)
    if missing.any():
        # the old rule (every piece to the nearest body seed) when no distance limit is set
        owner = np.where(seed_any, seeds, out if np.isfinite(max_jump_mm) else 0)
        dist, idx = ndimage.distance_transform_edt(owner == 0, sampling=spacing_mm, return_indices=True)
        near = missing & (dist <= max_jump_mm)
        out[near] = owner[tuple(i[near] for i in idx)]
    out[~mask] = 0
    return out


def column_sacrum(
    sacrum: npt.NDArray[np.bool_], body: npt.NDArray[np.int32], n: int, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.bool_]:
    """The sacrum voxels that can be the sacrum: pieces whose centroid lies below the middle of the lowest
    body and within the column's anterior-posterior reach (the sacrum class is learned from synthetic
    data only and fires on pelvic and abdominal tissue of real scans)."""
    if not sacrum.any():
        return sacrum
    if n == 0:
        return sacrum
    pts = np.nonzero(body == n)
    low_row = float(np.mean(pts[1]))
    bpts = np.nonzero(body > 0)
    margin = 20.0 / spacing_mm[0]
    p_lo, p_hi = float(bpts[0].min()) - margin, float(bpts[0].max()) + 2 * margin
    lab, k = cc3d.connected_components(sacrum.astype(np.uint8), connectivity=26, return_N=True)
    if k == 0:
        return sacrum
    coms = ndimage.center_of_mass(np.ones(sacrum.shape, np.uint8), lab, list(range(1, k + 1)))
    keep = np.zeros(k + 1, dtype=bool)
    for i, c in enumerate(coms, start=1):
        keep[i] = c[1] > low_row and p_lo <= c[0] <= p_hi
    return np.asarray(keep[lab], dtype=bool)


def build_instances(
    classes: npt.NDArray[np.integer],
    spacing_mm: tuple[float, float, float],
    *,
    posterior_jump_mm: float = POSTERIOR_JUMP_MM,
    sacral_arch: bool = True,
) -> InstanceResult:
    """Vertebra, disc and endplate instances from a network class map on the model grid.

    Works on the bounding box of the labelled voxels (plus a margin) and pastes the result back.
    ``posterior_jump_mm``: see :func:`geodesic_assign` (``inf``: every posterior piece joins the nearest body).
    ``sacral_arch``: below the lowest body the column's sacrum competes for posterior-element voxels (those it
    takes are ``SACRUM_TMP`` in the instance map and listed in ``arch``; :func:`settle_sacral_arch` relabels
    their class after the naming); off, only the vertebral bodies do.
    """
    cls = np.asarray(classes)
    fg = cls > 0
    if not fg.any():
        z = np.zeros(cls.shape, dtype=np.int16)
        return InstanceResult(z, z.copy())
    box = ndimage.find_objects(fg.astype(np.uint8))[0]
    box = tuple(slice(max(0, b.start - 3), min(dim, b.stop + 3)) for b, dim in zip(box, cls.shape, strict=True))
    sub = _build_instances_crop(np.ascontiguousarray(cls[box]), spacing_mm, posterior_jump_mm, sacral_arch)
    instances = np.zeros(cls.shape, dtype=np.int16)
    body = np.zeros(cls.shape, dtype=np.int16)
    instances[box] = sub.instances
    body[box] = sub.body
    offset = np.array([b.start for b in box], dtype=np.float64)
    for v in sub.vertebrae:
        v.centroid_vox = v.centroid_vox + offset
        v.top_row += offset[1]
        v.bottom_row += offset[1]
    result = InstanceResult(instances, body, sub.vertebrae, sub.sacrum_voxels, sub.split_bodies)
    if sub.arch is not None and sub.arch_owner is not None:
        result.arch = np.zeros(cls.shape, dtype=bool)
        result.arch[box] = sub.arch
        result.arch_owner = np.zeros(cls.shape, dtype=np.int16)
        result.arch_owner[box] = sub.arch_owner
    return result


def _build_instances_crop(
    cls: npt.NDArray[np.integer],
    spacing_mm: tuple[float, float, float],
    posterior_jump_mm: float = POSTERIOR_JUMP_MM,
    sacral_arch: bool = True,
) -> InstanceResult:
    vox_mm3 = float(np.prod(spacing_mm))
    shape = cls.shape
    instances = np.zeros(shape, dtype=np.int16)
    body_map = np.zeros(shape, dtype=np.int16)
    corpus = ndimage.binary_fill_holes(cls == C.CORPUS)
    assert corpus is not None
    bodyish = corpus | (cls == C.ENDPLATE)
    erode = _ball(tuple(max(1, round(1.5 / s)) for s in spacing_mm))  # type: ignore[arg-type]
    seeds_mask = ndimage.binary_erosion(corpus, erode)
    seeds, n = _components(seeds_mask, max(1, int(0.3 * MIN_BODY_MM3 / vox_mm3)))
    splits = 0
    for _ in range(4):  # a long merged run may need several rounds
        seeds, n, new_splits = _split_merged(seeds, n, spacing_mm)
        splits += new_splits
        if not new_splits:
            break
    seeds, n, joins = merge_side_by_side(seeds, n)
    if joins:
        log.info("joined %d body pieces lying side by side", joins)
    seeds, n = _relabel_top_to_bottom(seeds, n)
    if n > MAX_VERTEBRAE:  # never in anatomy; keeps the temporary label ranges disjoint
        seeds[seeds > MAX_VERTEBRAE] = 0
        n = MAX_VERTEBRAE
    result = InstanceResult(instances, body_map, split_bodies=splits)
    sacrum = cls == C.SACRUM
    if n == 0:
        instances[sacrum] = SACRUM_TMP
        result.sacrum_voxels = int(sacrum.sum())
        return result
    # grow seeds over corpus + endplate
    body = grow_labels(seeds, bodyish, spacing_mm)
    body, n, joins = merge_side_by_side(body, n)
    if joins:
        body, n = _relabel_top_to_bottom(body, n)
    body, n, waists = split_at_disc_waist(body, n, cls)
    if waists:
        log.info("cut %d body(ies) at a disc they had grown across", waists)
        body, n = _relabel_top_to_bottom(body, n)
        result.split_bodies += waists
    # drop bodies below the minimum volume (after growth), and fragments off the column
    sizes = np.bincount(body.ravel(), minlength=n + 1)
    small = np.nonzero(sizes[1:] * vox_mm3 < MIN_BODY_MM3)[0] + 1
    small = np.union1d(small, _off_column(body, n, spacing_mm))
    if small.size:
        body[np.isin(body, small)] = 0
        body, n = _relabel_top_to_bottom(body, n)
    if n == 0:
        instances[sacrum] = SACRUM_TMP
        result.sacrum_voxels = int(sacrum.sum())
        return result
    corpus_lab = np.where(corpus, body, 0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a body of endplate voxels only: handled below
        coms = np.array(ndimage.center_of_mass(np.ones(shape, np.uint8), corpus_lab, list(range(1, n + 1))))
    missing = ~np.all(np.isfinite(coms), axis=1)
    if missing.any():  # a body made only of endplate voxels: use the body map
        alt = np.array(ndimage.center_of_mass(np.ones(shape, np.uint8), body, list(range(1, n + 1))))
        coms[missing] = alt[missing]
    instances[corpus_lab > 0] = corpus_lab[corpus_lab > 0]
    sacrum = column_sacrum(sacrum, body, n, spacing_mm)
    # posterior elements: geodesic (shortest path through bone) assignment to the bodies (and the sacrum)
    post = np.isin(cls, C.POSTERIOR_CLASSES)
    if post.any():
        assigned = geodesic_assign(post, corpus_lab, spacing_mm, posterior_jump_mm)
        if sacral_arch and sacrum.any():
            # only voxels a path through bone reaches from the sacrum (no jump: a detached piece is not its arch)
            with_sacrum = geodesic_assign(post, np.where(sacrum, SACRUM_TMP, corpus_lab), spacing_mm, 0.0)
            below_mm = mm_below_lowest_body(body, n, spacing_mm)
            arch = (with_sacrum == SACRUM_TMP) & (below_mm > SACRAL_ARCH_BELOW_MM)
            # deep below L5 without a path too, but only what the bodies could take (not a piece far from any bone)
            arch |= post & (assigned > 0) & (below_mm > SACRAL_ARCH_DEEP_MM)
            if arch.any():
                result.arch = arch
                result.arch_owner = np.where(arch, assigned, 0).astype(np.int16)
                assigned[arch] = SACRUM_TMP
        instances[post] = assigned[post]
    # discs and endplates: tie to the vertebra above
    disc_ep = (cls == C.DISC) | (cls == C.ENDPLATE)
    above = _tie_above(disc_ep, body, coms, spacing_mm)
    for cls_id, offset in ((C.DISC, _DISC), (C.ENDPLATE, _EP)):
        mask = cls == cls_id
        instances[mask] = offset + above[mask]  # offset+0: above the top vertebra
    instances[sacrum] = SACRUM_TMP
    body_map[:] = body
    sp = np.asarray(spacing_mm)
    for k in range(1, n + 1):
        m = body == k
        pts = np.nonzero(m)
        rows = pts[1]
        cols = pts[0]
        height = (float(np.percentile(rows, 98)) - float(np.percentile(rows, 2)) + 1) * sp[1]
        depth = (float(np.percentile(cols, 98)) - float(np.percentile(cols, 2)) + 1) * sp[0]
        result.vertebrae.append(
            Vertebra(k, coms[k - 1], int(m.sum()), height, depth, float(rows.min()), float(rows.max()))
        )
    result.sacrum_voxels = int(sacrum.sum())
    return result


def mm_below_lowest_body(
    body: npt.NDArray[np.integer], n: int, spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """How far (mm) each voxel lies below the inferior surface of the lowest body (``body == n``, bodies ranked
    from the top; negative above it): the plane perpendicular to the column's direction there (from the centroid
    of body ``n - 1`` to that of body ``n``; head to foot when there is one body), at the 98th percentile of the
    lowest body's voxels along that direction."""
    sp = np.asarray(spacing_mm, dtype=np.float64)
    pts = np.argwhere(body == n).astype(np.float64) * sp
    centre = pts.mean(axis=0)
    axis = np.array([0.0, 1.0, 0.0])  # PIR: axis 1 runs head to foot
    if n > 1:
        step = centre - np.argwhere(body == n - 1).astype(np.float64).mean(axis=0) * sp
        if np.linalg.norm(step) > 0 and step[1] > 0:
            axis = step / np.linalg.norm(step)
    bottom = float(np.percentile((pts - centre) @ axis, 98))
    grids = np.ogrid[tuple(slice(0, k) for k in body.shape)]
    along = sum((g * s - c) * a for g, s, c, a in zip(grids, sp, centre, axis, strict=True))
    return np.asarray(along - bottom, dtype=np.float64)


def settle_sacral_arch(cls: npt.NDArray[np.uint8], inst: InstanceResult) -> int:
    """After the naming (which reads the sacrum class without the arch): the arch the sacrum took becomes sacrum
    class (SPINEPS labels the sacral arch as sacrum); if the sacrum was dropped since (``sacrum_voxels`` 0), its
    arch goes back to the vertebra the bodies-only assignment gave it, or is unlabelled. In place; returns the
    voxels given to the sacrum."""
    if inst.arch is None or inst.arch_owner is None:
        return 0
    arch = inst.arch
    if inst.sacrum_voxels:
        cls[arch] = C.SACRUM
        return int(arch.sum())
    inst.instances[arch] = inst.arch_owner[arch]
    cls[arch & (inst.arch_owner == 0)] = C.BG
    return 0
