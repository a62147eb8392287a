"""SPINEPS sub-regions derived geometrically from whole-vertebra instance label maps (VerSe-style CT labels).

``derive_subregions(vert)`` turns a map of whole-vertebra ids (1-7 C1-C7, 8-19 T1-T12, 20-25 L1-L6, 26 sacrum,
28 T13; ids >= 100 are ignored) into a SPINEPS semantic map on the same grid, so CT label maps can feed the
SynthSeg-style training generator. Method and measured agreement: ``docs/decisions/subregions-from-vertebrae.md``.

Every vertebra gets its own frame in world (RAS) millimetres:

- ``w`` (superior): the tangent of the line through the vertebrae's centroids (towards the lower ids), then
  tilted (up to 15 degrees sagittal, 10 coronal) to the direction along which the vertebra's projection shows
  the largest enclosed hole: looking straight down the canal shows all of the foramen.
- the canal: the vertebra's voxels projected along ``w`` onto a 1 mm raster; the largest enclosed hole is the
  vertebral foramen, its centroid the frame origin in the axial plane. A vertebra without an enclosed hole
  (cut by the image border, open arch) borrows the nearest vertebra's canal shape and offset.
- ``v`` (anterior): from the canal centre towards the centroid of the bone in front of it (the body), kept
  within 60 degrees of the world's anterior axis; ``u = v x w`` points to the patient's right, so the
  left/right split follows the affine (43/45/47 left, 44/46/48 right, as ``spine.semantic`` writes them).

The bone rules are in :func:`_classify`; they use only the canal outline (anterior and posterior wall, half
width) and the pedicle height, so they scale with the vertebra. Canal and cord: :func:`_paint_canal`;
discs: :func:`_paint_discs`. Everything runs on the vertebrae's own voxels and on the background voxels near
the canal and the discs, never on whole-volume resampling (verse004, 161 x 338 x 61: about 0.4 s of CPU).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.errors import InputError
from neurospine.io import Volume

log = logging.getLogger(__name__)

SACRUM_ID = 26
#: vertebra ids from cranial to caudal (T13 = 28 sits between T12 and L1)
ANATOMICAL_ORDER: tuple[int, ...] = (*range(1, 20), 28, *range(20, 27))
#: raster step of the axial projections (mm)
RASTER_MM = 1.0
#: largest body-to-body gap still labelled as a disc (mm)
MAX_DISC_GAP_MM = 15.0
#: cord half axes as shares of the canal's half width / half depth, capped (mm)
CORD_WIDTH_OF_CANAL = 0.5
CORD_DEPTH_OF_CANAL = 0.5
CORD_MAX_HALF_WIDTH_MM = 6.5
CORD_MAX_HALF_DEPTH_MM = 4.0
#: the body reaches this far behind the canal's anterior wall at the midline (concave posterior wall, mm)
BODY_BEHIND_WALL_MM = 1.5

# SPINEPS output values
ARCUS, SPINOUS, COSTAL_L, SUP_ART_L, INF_ART_L, CORPUS, CORD, CANAL, DISC = 41, 42, 43, 45, 47, 49, 60, 61, 100

F64 = npt.NDArray[np.float64]


@dataclass
class _Frame:
    """One vertebra's frame: origin (canal centre, world mm) and unit axes u (right), v (anterior), w (up)."""

    vid: int
    origin: F64
    u: F64
    v: F64
    w: F64
    foramen: npt.NDArray[np.bool_] | None  # 2D raster over (u, v), or None when no enclosed hole was found
    raster_lo: F64  # (u, v) of raster cell (0, 0)
    ant_wall_mm: float = 8.0  # canal anterior wall (v), posterior wall (v) and half width (|u|)
    post_wall_mm: float = -8.0
    half_width_mm: float = 10.0

    def local(self, xyz: F64) -> F64:
        return np.asarray((xyz - self.origin) @ np.stack([self.u, self.v, self.w], axis=1))


def _unit(x: F64) -> F64:
    return np.asarray(x / max(float(np.linalg.norm(x)), 1e-9), dtype=np.float64)


def _world(affine: F64, ijk: npt.NDArray[np.integer] | F64) -> F64:
    return np.asarray(ijk, dtype=np.float64) @ affine[:3, :3].T + affine[:3, 3]


def _raster(uv: F64, lo: F64, shape: tuple[int, int]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    idx = np.floor((uv - lo) / RASTER_MM).astype(np.intp)
    iu = np.clip(idx[:, 0], 0, shape[0] - 1)
    iv = np.clip(idx[:, 1], 0, shape[1] - 1)
    return iu, iv


def _footprint(uv: F64, lo: F64, shape: tuple[int, int], close: int) -> npt.NDArray[np.bool_]:
    img = np.zeros(shape, dtype=bool)
    iu, iv = _raster(uv, lo, shape)
    img[iu, iv] = True
    if close > 0:
        img = np.asarray(ndimage.binary_closing(img, iterations=close, border_value=0), dtype=bool)
    return img


def _largest_hole(img: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_] | None:
    holes = np.asarray(ndimage.binary_fill_holes(img), dtype=bool) & ~img
    lab, n = ndimage.label(holes)
    if n == 0:
        return None
    sizes = np.bincount(lab.ravel())[1:]
    best = int(np.argmax(sizes)) + 1
    if sizes[best - 1] * RASTER_MM**2 < 20.0:  # smaller than ~5 mm across: not a canal
        return None
    return np.asarray(lab == best, dtype=bool)


def _cranial_axes(centroids: dict[int, F64], world_up: F64) -> dict[int, F64]:
    """Superior unit axis per vertebra from the centroid sequence (sacrum excluded when others exist)."""
    mobile = [i for i in ANATOMICAL_ORDER if i in centroids and i != SACRUM_ID]
    if len(mobile) < 2:
        mobile = [i for i in ANATOMICAL_ORDER if i in centroids]
    axes: dict[int, F64] = {}
    for vid in centroids:
        if len(mobile) < 2:
            axes[vid] = world_up
            continue
        k = mobile.index(vid) if vid in mobile else len(mobile) - 1
        above = centroids[mobile[max(k - 1, 0)]]
        below = centroids[mobile[min(k + 1, len(mobile) - 1)]]
        if k == 0:
            above = centroids[mobile[0]]
        if k >= len(mobile) - 1:
            below = centroids[mobile[-1]]
        w = _unit(above - below)
        if float(w @ world_up) < 0.5:  # more than 60 degrees off the image's superior axis: distrust it
            w = world_up
        axes[vid] = w
    return axes


def _project(xyz: F64, centroid: F64, w: F64, a0: F64) -> tuple[F64, F64, F64, tuple[int, int]]:
    """(u, v) of the points in the plane normal to ``w`` (axes ``w x a0``-right and ``a0``) and a raster for them."""
    u0 = np.cross(a0, w)
    d = xyz - centroid
    uv = np.stack([d @ u0, d @ a0], axis=1)
    lo = uv.min(axis=0) - 4.0
    shape = (
        int(np.ceil((uv[:, 0].max() - lo[0]) / RASTER_MM)) + 5,
        int(np.ceil((uv[:, 1].max() - lo[1]) / RASTER_MM)) + 5,
    )
    return u0, uv, lo, shape


def _rotate(x: F64, axis: F64, deg: float) -> F64:
    """Rodrigues rotation of ``x`` about the unit ``axis``."""
    t = np.deg2rad(deg)
    return np.asarray(x * np.cos(t) + np.cross(axis, x) * np.sin(t) + axis * float(axis @ x) * (1 - np.cos(t)))


def _best_axis(xyz: F64, centroid: F64, w: F64, a0: F64) -> F64:
    """Tilt of ``w`` (up to 15 degrees sagittal, 10 coronal) whose projection shows the largest foramen.

    Looking down the canal's own axis shows the whole hole; a tilted view hides part of it behind the arch.
    """
    u0 = np.cross(a0, w)
    pts = xyz[:: max(1, len(xyz) // 6000)]

    def area(cand: F64) -> int:
        ca = _unit(a0 - cand * float(a0 @ cand))
        _, uv, lo, shape = _project(pts, centroid, cand, ca)
        hole = _largest_hole(_footprint(uv, lo, shape, 1))
        return -1 if hole is None else int(hole.sum())

    best, best_area = w, area(w)
    for axis, angles in ((u0, (-15.0, -10.0, -5.0, 5.0, 10.0, 15.0)), (a0, (-10.0, -5.0, 5.0, 10.0))):
        base = best
        for deg in angles:
            cand = _unit(_rotate(base, axis, deg))
            got = area(cand)
            if got > best_area + 1:
                best, best_area = cand, got
    return best


def _make_frame(vid: int, xyz: F64, w_centroids: F64, world_ant: F64) -> _Frame:
    """Canal (largest hole of the projection along ``w``) and the anterior axis of one vertebra."""
    centroid = xyz.mean(axis=0)
    a_ref = _unit(world_ant - w_centroids * float(world_ant @ w_centroids))
    w = _best_axis(xyz, centroid, w_centroids, a_ref)
    a0 = _unit(world_ant - w * float(world_ant @ w))
    u0, uv, lo, shape = _project(xyz, centroid, w, a0)
    hole = None
    for close in (1, 2, 3, 5):
        hole = _largest_hole(_footprint(uv, lo, shape, close))
        if hole is not None:
            break
    if hole is None:
        return _Frame(vid, centroid, u0, a0, w, None, lo)
    cells = np.argwhere(hole).astype(np.float64) * RASTER_MM + lo + RASTER_MM / 2
    c_uv = cells.mean(axis=0)
    # anterior axis: canal centre -> centroid of the bone in front of the canal (the body), near the world's anterior
    front = uv[:, 1] > cells[:, 1].max()
    to_body = (uv[front].mean(axis=0) if front.sum() > 20 else uv.mean(axis=0)) - c_uv
    ant = a0
    if float(np.linalg.norm(to_body)) > 2.0:
        cand = _unit(to_body[0] * u0 + to_body[1] * a0)
        if float(cand @ a0) > 0.5:
            ant = cand
    u = np.cross(ant, w)
    origin = centroid + c_uv[0] * u0 + c_uv[1] * a0
    # re-express the foramen raster in the final (u, v) axes around the new origin
    cell_world = centroid + np.outer(cells[:, 0], u0) + np.outer(cells[:, 1], a0)
    rel = cell_world - origin
    cuv = np.stack([rel @ u, rel @ ant], axis=1)
    flo = cuv.min(axis=0) - 3.0
    fshape = (
        int(np.ceil((cuv[:, 0].max() - flo[0]) / RASTER_MM)) + 4,
        int(np.ceil((cuv[:, 1].max() - flo[1]) / RASTER_MM)) + 4,
    )
    foramen = _footprint(cuv, flo, fshape, 1)
    foramen = np.asarray(ndimage.binary_fill_holes(foramen), dtype=bool)
    mid = np.abs(cuv[:, 0]) < 3.0
    ant_wall = float(cuv[mid, 1].max()) + RASTER_MM / 2 if mid.any() else float(cuv[:, 1].max())
    post_wall = float(cuv[mid, 1].min()) - RASTER_MM / 2 if mid.any() else float(cuv[:, 1].min())
    half_width = float(np.abs(cuv[:, 0]).max()) + RASTER_MM / 2
    return _Frame(vid, origin, u, ant, w, foramen, flo, ant_wall, post_wall, half_width)


def _classify(loc: F64, fr: _Frame) -> npt.NDArray[np.uint8]:
    """Sub-region value per vertebra voxel (local u, v, w in mm), left values for paired structures.

    y_a / y_p: the canal's anterior / posterior wall at the midline, d = y_a - y_p its depth, a its half width.
    Pedicles: bone beside the canal (0.7 a < |u| < 1.45 a) in the front half of its depth; their heights give
    the pedicle floor p_lo (5th percentile) and middle p_mid (median). Then, later rules winning:

    - costal/transverse: |u| > 1.65 a (lateral of the pedicles);
    - superior articular: w > p_mid - 1 mm, 0.75 a < |u| <= 1.65 a, behind the canal's mid-depth;
    - inferior articular: w < p_lo - 3 mm, |u| > 0.25 a, behind y_p + 3 mm;
    - spinous: v < y_p - 0.45 d and |u| < 0.75 a (behind the laminae's midline junction);
    - body: v > y_a - 1.5 mm, inside the body's own outline (:func:`_body_mask`);
    - arcus: the rest (pedicles and laminae).
    """
    u, v, w = loc[:, 0], loc[:, 1], loc[:, 2]
    ya, yp, a = fr.ant_wall_mm, fr.post_wall_mm, fr.half_width_mm
    depth = max(ya - yp, 4.0)
    out = np.full(len(loc), ARCUS, dtype=np.uint8)
    body = _body_mask(loc, v > ya - BODY_BEHIND_WALL_MM)
    post = ~body
    au = np.abs(u)
    mid_v = 0.5 * (ya + yp)
    # pedicles: lateral walls of the canal, anterior half of its depth
    ped = post & (au > 0.7 * a) & (au < 1.45 * a) & (v > mid_v)
    if ped.sum() > 10:
        p_lo, p_mid = (float(x) for x in np.percentile(w[ped], [5, 50]))
    else:
        p_lo, p_mid = float(np.percentile(w, 30)), float(np.percentile(w, 60))
    costal = post & (au > 1.65 * a)
    sup = post & (w > p_mid - 1.0) & (au > 0.75 * a) & (au <= 1.65 * a) & (v < mid_v)
    inf = post & (w < p_lo - 3.0) & (v < yp + 3.0) & (au > 0.25 * a)
    spin = post & (v < yp - 0.45 * depth) & (au < 0.75 * a)
    out[costal] = COSTAL_L
    out[sup] = SUP_ART_L
    out[inf] = INF_ART_L
    out[spin] = SPINOUS
    out[body] = CORPUS
    return out


def _disk(radius_cells: int) -> npt.NDArray[np.bool_]:
    r = np.arange(-radius_cells, radius_cells + 1)
    return np.asarray(np.hypot(r[:, None], r[None, :]) <= radius_cells + 0.01, dtype=bool)


def _body_mask(loc: F64, front: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Bone in front of the canal, minus what sticks out sideways from the body's own outline.

    The outline is the axial footprint of that bone opened with a disk of 0.3 x its front-to-back depth
    (3-10 mm), grown by 1.5 mm: the round body survives, thinner lateral wings (L5 transverse processes,
    cervical transverse processes) fall outside and go to the posterior-element rules. When that would remove
    more than 15 % of the bone in front of the canal (a vertebra cut by the image border), nothing is removed.
    """
    if front.sum() < 50:
        return front
    uv = loc[front, :2]
    depth = float(np.percentile(uv[:, 1], 98) - np.percentile(uv[:, 1], 2))
    radius = round(float(np.clip(0.3 * depth, 3.0, 10.0)) / RASTER_MM)
    lo = uv.min(axis=0) - radius - 3.0
    shape = (
        int(np.ceil((uv[:, 0].max() - lo[0]) / RASTER_MM)) + 2 * radius + 6,
        int(np.ceil((uv[:, 1].max() - lo[1]) / RASTER_MM)) + 2 * radius + 6,
    )
    outline = np.asarray(ndimage.binary_fill_holes(_footprint(uv, lo, shape, 1)), dtype=bool)
    outline = np.asarray(ndimage.binary_opening(outline, structure=_disk(radius)), dtype=bool)
    outline = np.asarray(ndimage.binary_dilation(outline, structure=_disk(round(1.5 / RASTER_MM))), dtype=bool)
    idx = np.floor((loc[:, :2] - lo) / RASTER_MM).astype(np.intp)
    inside = (idx[:, 0] >= 0) & (idx[:, 1] >= 0) & (idx[:, 0] < shape[0]) & (idx[:, 1] < shape[1])
    keep = np.zeros(len(loc), dtype=bool)
    keep[inside] = outline[idx[inside, 0], idx[inside, 1]]
    body = front & keep
    if body.sum() < 0.85 * front.sum():  # a wing is small; a large cut means a cropped or odd body: keep it all
        return front
    return body


def derive_subregions(vert: Volume) -> Volume:
    """SPINEPS semantic map (uint8, same grid) derived from a whole-vertebra instance map.

    Output values: 49 corpus, 41 arcus, 42 spinous, 43/44 costal L/R, 45/46 superior articular L/R,
    47/48 inferior articular L/R, 26 sacrum, 60 cord, 61 canal, 100 disc. Ids >= 100 in the input (discs,
    endplates) are ignored. A map in which no vertebra encloses a canal (bodies only) comes back as body.
    Raises :class:`InputError` for a map that is not made of integer ids.
    """
    data = np.asarray(vert.data)
    if not np.issubdtype(data.dtype, np.integer):
        if not np.issubdtype(data.dtype, np.floating) or not np.array_equal(data, np.round(data)):
            raise InputError(
                vert.source,
                f"expected a vertebra label map of integer ids, got {data.dtype} values that are not whole numbers",
                "pass the whole-vertebra instance mask (VerSe ids 1-28), not an image or a probability map",
            )
    lab = np.where((data > 0) & (data < 100), data, 0).astype(np.int32)
    out = np.zeros(lab.shape, dtype=np.uint8)
    slices = ndimage.find_objects(lab)
    boxes = {i + 1: sl for i, sl in enumerate(slices) if sl is not None}
    ids = [i for i in ANATOMICAL_ORDER if i in boxes]
    unknown = sorted(set(boxes) - set(ids))
    if unknown:
        log.warning("%s: ids %s are not VerSe vertebra ids (1-26, 28); left unlabelled", vert.name, unknown)
    if not ids:
        return vert.with_data(out)
    aff = vert.affine
    points: dict[int, npt.NDArray[np.intp]] = {}
    xyz: dict[int, F64] = {}
    for vid in ids:
        sl = boxes[vid]
        sub = np.argwhere(lab[sl] == vid) + np.array([s.start for s in sl])
        points[vid] = sub
        xyz[vid] = _world(aff, sub)
    centroids = {vid: xyz[vid].mean(axis=0) for vid in ids}
    world_up, world_ant = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    axes = _cranial_axes(centroids, world_up)

    frames: dict[int, _Frame] = {}
    for vid in ids:
        if vid == SACRUM_ID:
            continue
        frames[vid] = _make_frame(vid, xyz[vid], axes[vid], world_ant)
    _borrow_missing_canals(frames, centroids, xyz)
    _replace_small_canals(frames)
    if frames and all(f.foramen is None for f in frames.values()):
        log.warning("%s: no vertebra encloses a canal (bodies only?); every vertebra labelled as body", vert.name)
        for vid in ids:
            p = points[vid]
            out[p[:, 0], p[:, 1], p[:, 2]] = SACRUM_ID if vid == SACRUM_ID else CORPUS
        _paint_discs(out, np.where(out > 0, lab, 0), aff, ids, frames, {vid: xyz[vid] for vid in ids})
        return vert.with_data(out)

    body_xyz: dict[int, F64] = {}
    for vid in ids:
        p = points[vid]
        if vid == SACRUM_ID:
            out[p[:, 0], p[:, 1], p[:, 2]] = SACRUM_ID
            body_xyz[vid] = xyz[vid]
            continue
        fr = frames[vid]
        loc = fr.local(xyz[vid])
        vals = _classify(loc, fr)
        paired = np.isin(vals, (COSTAL_L, SUP_ART_L, INF_ART_L)) & (loc[:, 0] > 0)
        vals[paired] += 1
        out[p[:, 0], p[:, 1], p[:, 2]] = vals
        body_xyz[vid] = xyz[vid][vals == CORPUS]

    _paint_canal(out, aff, frames, centroids, xyz)
    body_lab = np.where((out == CORPUS) | (out == SACRUM_ID), lab, 0)
    _paint_discs(out, body_lab, aff, ids, frames, body_xyz)
    return vert.with_data(out)


def _borrow_missing_canals(frames: dict[int, _Frame], centroids: dict[int, F64], xyz: dict[int, F64]) -> None:
    """A vertebra without an enclosed foramen (cropped, open arch) takes the nearest neighbour's canal."""
    good = [vid for vid, f in frames.items() if f.foramen is not None]
    if not good:
        return
    order = list(ANATOMICAL_ORDER)
    for vid, fr in frames.items():
        if fr.foramen is not None:
            continue
        src = frames[min(good, key=lambda g: abs(order.index(g) - order.index(vid)))]
        offset = src.origin - centroids[src.vid]
        # canal offset from the centroid in the source frame, re-expressed in this vertebra's axes
        off_local = np.array([offset @ src.u, offset @ src.v, 0.0])
        u = np.cross(src.v - fr.w * float(src.v @ fr.w), fr.w)
        v = _unit(np.cross(fr.w, u))
        u = _unit(u)
        origin = centroids[vid] + off_local[0] * u + off_local[1] * v
        frames[vid] = _Frame(
            vid, origin, u, v, fr.w, src.foramen, src.raster_lo, src.ant_wall_mm, src.post_wall_mm, src.half_width_mm
        )
        log.debug("vertebra %d: no enclosed canal, borrowed the frame shape of %d", vid, src.vid)


def _replace_small_canals(frames: dict[int, _Frame]) -> None:
    """A foramen under half the median area, or under 0.7 of the median width, of the others was mostly hidden
    in the projection (a canal curved by strong lordosis at L5, a crooked arch): the vertebra keeps its own
    frame but takes the outline and the wall positions of the nearest vertebra with a normal one."""
    sizes = {vid: (int(f.foramen.sum()), f.half_width_mm) for vid, f in frames.items() if f.foramen is not None}
    if len(sizes) < 3:
        return
    med_area = float(np.median([a for a, _ in sizes.values()]))
    med_width = float(np.median([w for _, w in sizes.values()]))

    def small(vid: int) -> bool:
        return sizes[vid][0] < 0.5 * med_area or sizes[vid][1] < 0.7 * med_width

    normal = [vid for vid in sizes if not small(vid)]
    order = list(ANATOMICAL_ORDER)
    for vid in sizes:
        if not small(vid) or not normal:
            continue
        src = frames[min(normal, key=lambda g: abs(order.index(g) - order.index(vid)))]
        fr = frames[vid]
        frames[vid] = _Frame(
            vid,
            fr.origin,
            fr.u,
            fr.v,
            fr.w,
            src.foramen,
            src.raster_lo,
            src.ant_wall_mm,
            src.post_wall_mm,
            src.half_width_mm,
        )
        log.debug(
            "vertebra %d: foramen %s against medians %.0f / %.1f mm; outline of %d",
            vid,
            sizes[vid],
            med_area,
            med_width,
            src.vid,
        )


def _signed_distance(cells: npt.NDArray[np.bool_]) -> F64:
    """Signed distance (mm) to the raster outline: negative inside, positive outside."""
    padded = np.pad(cells, 1)
    inside = np.asarray(ndimage.distance_transform_edt(padded), dtype=np.float64)
    outside = np.asarray(ndimage.distance_transform_edt(~padded), dtype=np.float64)
    return ((outside - inside) * RASTER_MM)[1:-1, 1:-1] + np.where(cells, 0.5, -0.5) * RASTER_MM


@dataclass
class _CanalLevel:
    """One vertebra's canal: frame, signed distance of its foramen, cord half axes (0 = no cord), centre height."""

    fr: _Frame
    sd: F64
    cord_u_mm: float
    cord_v_mm: float
    centre_w: float

    def lookup(self, loc: F64) -> F64:
        """Signed distance to the foramen outline at each point (mm; outside the raster: far outside)."""
        iu = np.floor((loc[:, 0] - self.fr.raster_lo[0]) / RASTER_MM).astype(np.intp)
        iv = np.floor((loc[:, 1] - self.fr.raster_lo[1]) / RASTER_MM).astype(np.intp)
        ok = (iu >= 0) & (iv >= 0) & (iu < self.sd.shape[0]) & (iv < self.sd.shape[1])
        d = np.full(len(loc), 1e3)
        d[ok] = self.sd[iu[ok], iv[ok]]
        return d


def _cord_fraction(vid: int) -> float:
    """Cord size at a vertebra relative to the canal: whole cord down to T12/T13, the conus at L1, none below."""
    if vid == 20:
        return 0.6
    return 1.0 if vid < 20 or vid == 28 else 0.0


def _canal_levels(frames: dict[int, _Frame], centroids: dict[int, F64]) -> list[_CanalLevel]:
    levels = []
    for vid in ANATOMICAL_ORDER:
        fr = frames.get(vid)
        if fr is None or fr.foramen is None:
            continue
        depth = fr.ant_wall_mm - fr.post_wall_mm
        f = _cord_fraction(vid)
        levels.append(
            _CanalLevel(
                fr,
                _signed_distance(fr.foramen),
                f * min(CORD_WIDTH_OF_CANAL * fr.half_width_mm, CORD_MAX_HALF_WIDTH_MM),
                f * min(CORD_DEPTH_OF_CANAL * depth / 2, CORD_MAX_HALF_DEPTH_MM),
                float((centroids[vid] - fr.origin) @ fr.w),
            )
        )
    return levels


def _paint_canal(
    out: npt.NDArray[np.uint8],
    aff: F64,
    frames: dict[int, _Frame],
    centroids: dict[int, F64],
    xyz: dict[int, F64],
) -> None:
    """Canal (61) and cord (60) in the background voxels of the spinal canal.

    At each vertebra's centre the canal is its foramen; between the centres of two neighbours the outline is
    blended linearly (signed distances of both outlines, weighted by the height between the centres), so the
    tube is continuous through the discs. Above the first and below the last vertebra it ends with the bone.
    The cord is an ellipse around the canal centre (a share of the canal's width and depth), tapering to the
    conus at L1 and absent below.
    """
    levels = _canal_levels(frames, centroids)
    for k, lev in enumerate(levels):
        own = lev.fr.local(xyz[lev.fr.vid])[:, 2]
        first = k == 0 or not _adjacent(levels[k - 1].fr.vid, lev.fr.vid)
        last = k == len(levels) - 1 or not _adjacent(lev.fr.vid, levels[k + 1].fr.vid)
        ends = []
        if first:
            ends.append((lev.centre_w, float(own.max())))
        if last:
            ends.append((float(own.min()), lev.centre_w))
        for w_lo, w_hi in ends:  # the vertebra's own outline beyond its centre, at an end of the column
            idx, loc = _candidates(out, aff, [lev], [(w_lo, w_hi)])
            keep = (loc[0][:, 2] >= w_lo) & (loc[0][:, 2] <= w_hi)
            _write_canal(out, idx[keep], lev.lookup(loc[0][keep]), loc[0][keep], lev.cord_u_mm, lev.cord_v_mm)
        if last:
            continue
        low = levels[k + 1]
        b_in_a = float((centroids[low.fr.vid] - lev.fr.origin) @ lev.fr.w)
        a_in_b = float((centroids[lev.fr.vid] - low.fr.origin) @ low.fr.w)
        idx, (la, lb) = _candidates(out, aff, [lev, low], [(b_in_a, lev.centre_w), (low.centre_w, a_in_b)])
        below_a = lev.centre_w - la[:, 2]
        above_b = lb[:, 2] - low.centre_w
        zone = (below_a >= 0) & (above_b >= 0)
        idx, la, lb, below_a, above_b = idx[zone], la[zone], lb[zone], below_a[zone], above_b[zone]
        t = (below_a / np.maximum(below_a + above_b, 1e-6))[:, None]
        sd = (1 - t[:, 0]) * lev.lookup(la) + t[:, 0] * low.lookup(lb)
        blend = (1 - t) * la + t * lb
        cu = (1 - t[:, 0]) * lev.cord_u_mm + t[:, 0] * low.cord_u_mm
        cv = (1 - t[:, 0]) * lev.cord_v_mm + t[:, 0] * low.cord_v_mm
        _write_canal(out, idx, sd, blend, cu, cv)


def _candidates(
    out: npt.NDArray[np.uint8], aff: F64, levels: list[_CanalLevel], w_ranges: list[tuple[float, float]]
) -> tuple[npt.NDArray[np.intp], list[F64]]:
    """Background voxels in the box around the levels' foramen prisms (w ranges in each level's frame) and
    their coordinates in every level's frame."""
    corners = []
    for lev, (w_lo, w_hi) in zip(levels, w_ranges, strict=True):
        n_u, n_v = lev.sd.shape
        for cu in (0.0, n_u * RASTER_MM):
            for cv in (0.0, n_v * RASTER_MM):
                for cw in (w_lo, w_hi):
                    fr = lev.fr
                    corners.append(
                        fr.origin + (fr.raster_lo[0] + cu) * fr.u + (fr.raster_lo[1] + cv) * fr.v + cw * fr.w
                    )
    ijk = (np.array(corners) - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T
    lo_i = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - 1, 0)
    hi_i = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 2, np.array(out.shape))
    if np.any(hi_i <= lo_i):
        return np.zeros((0, 3), dtype=np.intp), [np.zeros((0, 3)) for _ in levels]
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo_i, hi_i, strict=True))
    idx = np.argwhere(out[sl] == 0) + lo_i
    world = _world(aff, idx)
    return idx, [lev.fr.local(world) for lev in levels]


def _write_canal(
    out: npt.NDArray[np.uint8],
    idx: npt.NDArray[np.intp],
    sd: F64,
    loc: F64,
    cord_u: F64 | float,
    cord_v: F64 | float,
) -> None:
    inside = sd <= 0
    cu = np.broadcast_to(np.asarray(cord_u, dtype=np.float64), sd.shape)
    cv = np.broadcast_to(np.asarray(cord_v, dtype=np.float64), sd.shape)
    has_cord = (cu > 0.5) & (cv > 0.5)
    rho = np.full(len(sd), np.inf)
    rho[has_cord] = np.hypot(loc[has_cord, 0] / cu[has_cord], loc[has_cord, 1] / cv[has_cord])
    p = idx[inside]
    out[p[:, 0], p[:, 1], p[:, 2]] = np.where(rho[inside] <= 1.0, CORD, CANAL).astype(np.uint8)


def _paint_prism(
    out: npt.NDArray[np.uint8],
    aff: F64,
    frame: tuple[F64, F64, F64, F64],
    lo_uv: F64,
    cells: npt.NDArray[np.bool_],
    w_lo: F64,
    w_hi: F64,
    value: int,
) -> None:
    """Write ``value`` into background voxels whose (u, v) falls in a true raster cell and w in [w_lo, w_hi] there."""
    if not cells.any():
        return
    origin, u, v, w = frame
    basis = np.stack([u, v, w], axis=1)  # world offset -> (u, v, w)
    iu, iv = np.nonzero(cells)
    corners = []
    for du in (0.0, 1.0):
        for dv in (0.0, 1.0):
            for wm in (w_lo[iu, iv], w_hi[iu, iv]):
                loc = np.stack([lo_uv[0] + (iu + du) * RASTER_MM, lo_uv[1] + (iv + dv) * RASTER_MM, wm], axis=1)
                corners.append(origin + loc @ basis.T)
    pts = np.concatenate(corners)
    ijk = (pts - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T
    lo_i = np.maximum(np.floor(ijk.min(axis=0)).astype(int) - 1, 0)
    hi_i = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 2, np.array(out.shape))
    if np.any(hi_i <= lo_i):
        return
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo_i, hi_i, strict=True))
    bg = np.argwhere(out[sl] == 0) + lo_i
    if len(bg) == 0:
        return
    loc = (_world(aff, bg) - origin) @ basis
    ju = np.floor((loc[:, 0] - lo_uv[0]) / RASTER_MM).astype(np.intp)
    jv = np.floor((loc[:, 1] - lo_uv[1]) / RASTER_MM).astype(np.intp)
    inside = (ju >= 0) & (jv >= 0) & (ju < cells.shape[0]) & (jv < cells.shape[1])
    ju, jv = ju[inside], jv[inside]
    hit = np.zeros(len(bg), dtype=bool)
    lw = loc[inside, 2]
    hit[inside] = cells[ju, jv] & (lw >= w_lo[ju, jv]) & (lw <= w_hi[ju, jv])
    p = bg[hit]
    out[p[:, 0], p[:, 1], p[:, 2]] = value


def _paint_discs(
    out: npt.NDArray[np.uint8],
    body_lab: npt.NDArray[np.int32],
    aff: F64,
    ids: list[int],
    frames: dict[int, _Frame],
    body_xyz: dict[int, F64],
) -> None:
    """Disc = background between consecutive bodies: under the upper body's lower surface, over the lower body's top."""
    for up, low in itertools.pairwise(ids):
        if not _adjacent(up, low) or up not in frames or len(body_xyz[up]) < 20 or len(body_xyz[low]) < 20:
            continue
        fr = frames[up]
        w = fr.w if low not in frames else _unit(fr.w + frames[low].w)
        u = _unit(fr.u - w * float(fr.u @ w))
        v = np.cross(w, u)
        origin = fr.origin
        bu, bl = body_xyz[up] - origin, body_xyz[low] - origin
        lo = np.minimum(_uv(bu, u, v).min(axis=0), _uv(bl, u, v).min(axis=0)) - 3.0
        hi = np.maximum(_uv(bu, u, v).max(axis=0), _uv(bl, u, v).max(axis=0)) + 3.0
        # the facing surfaces lie between the two body centres
        w_lo, w_hi = float((bl @ w).mean()), float((bu @ w).mean())
        shape = (int(np.ceil((hi[0] - lo[0]) / RASTER_MM)) + 1, int(np.ceil((hi[1] - lo[1]) / RASTER_MM)) + 1)
        gw = np.arange(w_lo, w_hi + RASTER_MM, RASTER_MM)
        # both bodies sampled on a grid of the disc frame: columns along w give each body's facing surface
        gu = lo[0] + RASTER_MM * (np.arange(shape[0]) + 0.5)
        gv = lo[1] + RASTER_MM * (np.arange(shape[1]) + 0.5)
        pts = (
            origin + gu[:, None, None, None] * u + gv[None, :, None, None] * v + gw[None, None, :, None] * w
        ).reshape(-1, 3)
        ijk = (pts - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T
        s_body = ndimage.map_coordinates(body_lab, ijk.T, order=0, mode="constant", cval=0).reshape(*shape, len(gw))
        m_up, m_low = s_body == up, s_body == low
        has_up, has_low = m_up.any(axis=2), m_low.any(axis=2)
        bottom = np.where(has_up, gw[np.argmax(m_up, axis=2)], np.inf)
        top = np.where(has_low, gw[len(gw) - 1 - np.argmax(m_low[:, :, ::-1], axis=2)], -np.inf)
        fp_up = _solid(has_up)
        fp_low = _solid(has_low)
        # cells measured in both bodies (a hole inside the footprint is filled again below)
        fp = np.asarray(ndimage.binary_erosion(fp_up & fp_low, iterations=1), dtype=bool) & has_up & has_low
        if fp.sum() < 20:
            continue
        bottom = _fill_nearest(bottom)
        top = _fill_nearest(top)
        gap = np.asarray(ndimage.median_filter(bottom - top, size=3), dtype=np.float64)
        median_gap = float(np.median(gap[fp]))
        if median_gap > MAX_DISC_GAP_MM:
            log.debug("no disc between %d and %d: gap %.1f mm", up, low, median_gap)
            continue
        # rim cells gape wider than the median (rounded endplate edges); a cell far beyond it is where one
        # "body" is really a pedicle base or the other body is missing
        fp &= (gap > 0) & (gap < median_gap + max(5.0, 0.5 * median_gap))
        fp = np.asarray(ndimage.binary_fill_holes(fp), dtype=bool)
        _paint_prism(out, aff, (origin, u, v, w), lo, fp, top - 0.5, bottom + 0.5, DISC)


def _uv(rel: F64, u: F64, v: F64) -> F64:
    return np.stack([rel @ u, rel @ v], axis=1)


def _adjacent(up: int, low: int) -> bool:
    """True when no vertebra can sit between ``up`` and ``low`` (T13 and L6 are optional)."""
    i, j = ANATOMICAL_ORDER.index(up), ANATOMICAL_ORDER.index(low)
    return j > i and all(x in (28, 25) for x in ANATOMICAL_ORDER[i + 1 : j])


def _fill_nearest(h: F64) -> F64:
    """Cells without a value take the nearest cell's value."""
    missing = ~np.isfinite(h)
    if not missing.any() or missing.all():
        return h
    _, (iu, iv) = ndimage.distance_transform_edt(missing, return_indices=True)
    return np.asarray(h[iu, iv], dtype=np.float64)


def _solid(cells: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Closed and hole-filled footprint of a raster (bodies can be hollow rings in label maps)."""
    closed = ndimage.binary_closing(cells, iterations=2, border_value=0)
    return np.asarray(ndimage.binary_fill_holes(closed), dtype=bool)
