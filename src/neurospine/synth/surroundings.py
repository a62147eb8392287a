"""Tissues around the spine: body outline, subcutaneous fat, muscles, viscera, vessels, head.

Painted before the spine (the spine overwrites them). Far-field shapes use world coordinates per
axial row so that strong curvature never folds them; near-spine compartments use canonical ``a, l``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from neurospine.synth.artifacts import smooth_field
from neurospine.synth.grid import Grid
from neurospine.synth.model import EPIDURAL_POST_MM, Blob, SpineModel
from neurospine.synth.rasterize import LabelMaps
from neurospine.synth.tissues import Tissue

F64 = npt.NDArray[np.float64]

# per region: anterior extent (mm from the canal axis), half width, default visceral tissue
_REGION_BODY = {
    "H": (95.0, 75.0, Tissue.BRAIN),
    "C": (62.0, 60.0, Tissue.SOFT),
    "T": (165.0, 150.0, Tissue.ORGAN),
    "L": (175.0, 150.0, Tissue.BOWEL),
    "S": (165.0, 170.0, Tissue.BOWEL),
}


def _row_params(model: SpineModel, grid: Grid) -> dict[str, F64]:
    """Per axial row (world z): centreline x/y, posterior/anterior extents, half width, region code."""
    cl = model.centreline
    z = grid.axis_coords(2)
    cz = cl.c[:, 2]
    # the axis runs caudally: -cz increases along s (enforce monotonic for interpolation)
    key = np.maximum.accumulate(-cz)
    s_at = np.interp(-z, key, cl.s)
    cx = np.interp(s_at, cl.s, cl.c[:, 0])
    cy = np.interp(s_at, cl.s, cl.c[:, 1])
    verts = model.vertebrae
    mids = np.array([lev.s_mid for lev in verts])
    post = np.array(
        [
            0.5 * lev.canal_ap + EPIDURAL_POST_MM + lev.arch_t + lev.spin_len * math.cos(math.radians(lev.spin_ang_deg))
            for lev in verts
        ]
    )
    post_at = (
        np.interp(s_at, mids, post)
        + model.post_soft_mm * np.interp(s_at, mids, [0.5 if lev.region == "C" else 1.0 for lev in verts])
        + model.subcut_fat_mm
    )
    regions = np.array([lev.region for lev in model.levels])
    bounds = np.array([lev.s_top for lev in model.levels])
    idx = np.clip(np.searchsorted(bounds, s_at, side="right") - 1, 0, len(regions) - 1)
    reg = regions[idx].astype("<U1")
    reg[s_at < model.fm_s - 10.0] = "H"
    ant = np.array([_REGION_BODY[r][0] for r in reg]) * model.ant_depth_scale
    half_w = np.array([_REGION_BODY[r][1] for r in reg])
    # smooth the steps between regions (neck -> chest is not a cliff)
    k = max(1, round(25.0 / grid.spacing[2]))
    kern = np.ones(k) / k
    ant = np.convolve(np.pad(ant, k, mode="edge"), kern, mode="same")[k:-k]
    half_w = np.convolve(np.pad(half_w, k, mode="edge"), kern, mode="same")[k:-k]
    vis = np.array([int(_REGION_BODY[r][2]) for r in reg])
    post = np.convolve(np.pad(post_at, k, mode="edge"), kern, mode="same")[k:-k]
    body_w = np.interp(s_at, mids, [lev.body_w for lev in verts])
    body_d = np.interp(s_at, mids, [lev.body_d for lev in verts])
    canal_ra = np.interp(s_at, mids, [0.5 * lev.canal_ap for lev in verts])
    # erector spinae: lateral offset and half width grow from the neck to the lumbar spine
    muscle_l = np.interp(s_at, mids, [{"C": 12.0, "T": 18.0}.get(lev.region, 22.0) for lev in verts])
    lumbar = np.interp(s_at, mids, [1.0 if lev.region == "L" else 0.0 for lev in verts])
    return {
        "body_w": body_w,
        "body_d": body_d,
        "canal_ra": canal_ra,
        "muscle_l": muscle_l,
        "lumbar": lumbar,
        "neck": (reg == "C").astype(np.float64),
        "thorax": (reg == "T").astype(np.float64),
        "s": s_at,
        "cx": cx,
        "cy": cy,
        "post": post,
        "ant": ant,
        "half_w": half_w,
        "vis": vis,
        "head": (reg == "H").astype(np.float64),
    }


def _streak_step(grid: Grid) -> tuple[int, int, int]:
    return (
        max(1, round(3.0 / grid.spacing[0])),
        max(1, round(3.0 / grid.spacing[1])),
        max(1, round(12.0 / grid.spacing[2])),
    )


def paint_surroundings(
    model: SpineModel, grid: Grid, maps: LabelMaps, blobs: list[Blob], rng: np.random.Generator
) -> None:
    """Fill ``maps.tissue`` with the body, fat, muscles and viscera (labels stay 0)."""
    rp = {k: (v if k == "vis" else v.astype(np.float32)) for k, v in _row_params(model, grid).items()}
    x = grid.axis_coords(0).astype(np.float32)[:, None, None] - rp["cx"][None, None, :]
    y = grid.axis_coords(1).astype(np.float32)[None, :, None] - rp["cy"][None, None, :]
    post = rp["post"][None, None, :]
    ant = rp["ant"][None, None, :]
    half_w = rp["half_w"][None, None, :]
    yc = 0.5 * (ant - post)
    ry = 0.5 * (ant + post)
    rn = np.abs(x / half_w) ** np.float32(2.2) + np.abs((y - yc) / ry) ** np.float32(2.2)
    body = rn < 1.0
    fat_edge = (1.0 - np.float32(model.subcut_fat_mm) / ry) ** np.float32(2.2)
    tis = maps.tissue
    tis[...] = Tissue.AIR
    # viscera: the row's default tissue, with wavy region borders and a random organ/bowel/fat partition
    row_vis = rp["vis"].astype(np.uint8)
    k = max(1, round(18.0 / grid.spacing[2]))
    up = np.concatenate([row_vis[k:], np.repeat(row_vis[-1:], k)])
    down = np.concatenate([np.repeat(row_vis[:1], k), row_vis[:-k]])
    step = tuple(max(2, round(14.0 / sp)) for sp in grid.spacing)
    field = smooth_field(tis.shape, (step[0], step[1], step[2]), rng)
    vis = np.where(field > 0.5, up[None, None, :], np.where(field < -0.5, down[None, None, :], row_vis[None, None, :]))
    belly = vis == Tissue.BOWEL
    vis[belly & (field > 1.1)] = Tissue.ORGAN
    vis[belly & (np.abs(field + 0.1) < 0.08)] = Tissue.FAT
    tis[body] = vis[body]
    a = maps.a
    l = maps.l  # noqa: E741
    sub = np.float32(model.subcut_fat_mm)
    ra = rp["canal_ra"][None, None, :].astype(np.float32)
    # behind the spine: fat by default, then paired erector muscles from the laminae to the subcutis
    a_in = ra + np.float32(3.0)
    a_out = np.maximum(post.astype(np.float32) - sub, a_in + 10.0)
    a_mid = -0.5 * (a_in + a_out)
    a_half = 0.5 * (a_out - a_in) + 2.0
    l_m = rp["muscle_l"][None, None, :].astype(np.float32)
    back = body & (((a - a_mid) / (a_half + 8.0)) ** 2 + (l / (2.2 * l_m + 12.0)) ** 2 < 1.0)
    tis[back] = Tissue.FAT
    erector = body & (((a - a_mid) / a_half) ** 2 + ((np.abs(l) - l_m) / (0.9 * l_m + 9.0)) ** 2 < 1.0)
    # deep muscles beside the bodies: psoas (lumbar) and longus/scalenes (neck), and paravertebral in the thorax
    bw = rp["body_w"][None, None, :].astype(np.float32)
    bd = rp["body_d"][None, None, :].astype(np.float32)
    grow = np.float32(6.0) + np.float32(10.0) * rp["lumbar"][None, None, :].astype(np.float32)
    side = body & ((((a - ra - 0.5 * bd) / (0.45 * bd + 4.0)) ** 2 + ((np.abs(l) - 0.5 * bw - grow) / grow) ** 2) < 1.0)
    tis[erector | side] = Tissue.MUSCLE
    # intermuscular fat: thin streaks elongated along the body axis
    streaks = smooth_field(tis.shape, _streak_step(grid), rng) > np.float32(rng.uniform(1.3, 2.2))
    tis[erector & streaks] = Tissue.FAT
    # prevertebral soft tissue in front of the bodies
    band = body & (a >= 4.0) & (a < ra + bd + 8.0) & (np.abs(l) < 0.5 * bw + 4.0) & ~side
    tis[band & (rp["head"][None, None, :] < 0.5)] = Tissue.SOFT
    for blob in blobs:
        c = np.asarray(blob.centre)
        r = np.asarray(blob.radii)
        lo, hi = c - r, c + r
        blk = grid.block(lo, hi)
        if blk is None:
            continue
        xs = (grid.axis_coords(0)[blk[0]] - c[0]) / r[0]
        ys = (grid.axis_coords(1)[blk[1]] - c[1]) / r[1]
        zs = (grid.axis_coords(2)[blk[2]] - c[2]) / r[2]
        inside = (xs[:, None, None] ** 2 + ys[None, :, None] ** 2 + zs[None, None, :] ** 2) < 1.0
        inside &= body[blk] & (a[blk] > 45.0)
        tis[blk][inside] = blob.tissue
    fat = body & (rn > fat_edge)
    tis[fat] = Tissue.FAT
    # skull around the head region
    head = rp["head"][None, None, :] > 0.5
    if head.any():
        skull = body & head & (rn > 0.72) & (rn < 0.85)
        tis[skull] = Tissue.CORTICAL


def sample_blobs(model: SpineModel, grid: Grid, rng: np.random.Generator) -> list[Blob]:
    """Random visceral ellipsoids in front of the spine (organs, bowel loops, gas, bladder, lung)."""
    rp = _row_params(model, grid)
    blobs: list[Blob] = []
    n_rows = grid.shape[2]
    for _ in range(int(rng.integers(4, 12))):
        k = int(rng.integers(0, n_rows))
        region = int(rp["vis"][k])
        if region in (int(Tissue.BRAIN), int(Tissue.SOFT)):
            choices = [Tissue.AIR, Tissue.FAT, Tissue.VESSEL]
        elif region == int(Tissue.ORGAN):
            choices = [Tissue.LUNG, Tissue.LUNG, Tissue.ORGAN, Tissue.VESSEL, Tissue.FAT]
        else:
            choices = [Tissue.ORGAN, Tissue.BOWEL, Tissue.FAT, Tissue.FLUID, Tissue.AIR, Tissue.VESSEL]
        tissue = choices[int(rng.integers(0, len(choices)))]
        big = tissue in (Tissue.ORGAN, Tissue.LUNG)
        radii = rng.uniform(25, 70, 3) if big else rng.uniform(6, 30, 3)
        if tissue == Tissue.AIR:
            radii = np.minimum(radii, 14.0)
        if region == int(Tissue.SOFT):
            radii = rng.uniform(4, 12, 3)
        cx = float(rp["cx"][k] + rng.normal(0, 25))
        cy = float(rp["cy"][k] + rng.uniform(50.0, max(0.9 * rp["ant"][k], 51.0)))
        cz = float(grid.axis_coords(2)[k])
        blobs.append(Blob((cx, cy, cz), (float(radii[0]), float(radii[1]), float(radii[2])), int(tissue)))
    return blobs


def paint_vessels(model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Aorta (left) and vena cava (right) in front of the thoracolumbar bodies (canonical coordinates)."""
    from neurospine.synth.rasterize import _block_for

    thor = [lev for lev in model.levels if lev.region in ("T", "L")]
    if len(thor) < 3:
        return
    s0 = thor[min(3, len(thor) - 1)].s_top
    s1 = thor[-2].s_bot
    lum_top = next((lev.s_top for lev in thor if lev.region == "L"), s1)
    mids = [lev.s_mid for lev in thor]
    fronts = [0.5 * lev.canal_ap + lev.body_d + 1.0 for lev in thor]
    blk = _block_for(model, grid, s0, s1, 10.0, max(fronts) + 26.0, 34.0, l_lo=-28.0)
    if blk is None:
        return
    s = maps.s[blk]
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    front = np.interp(s, mids, fronts).astype(np.float32)
    zone = (s > s0) & (s < s1)
    vessel = zone & ((a - front - 13.0) ** 2 + (l + 14.0) ** 2 < 11.0**2)
    vessel |= zone & (s > lum_top) & ((a - front - 12.0) ** 2 + (l - 22.0) ** 2 < 10.0**2)
    tis = maps.tissue[blk]
    tis[vessel & (maps.semantic[blk] == 0)] = Tissue.VESSEL


def paint_ribs(model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Ribs (tissue only, SPINEPS does not label them): elliptic arcs from each thoracic transverse process.

    Rib ``k`` follows an ellipse around the chest in the axial plane, starting at the tip of the costal
    process and dropping caudally as it runs anteriorly; it stops where the costal cartilage begins.
    """
    from neurospine.synth.rasterize import _block_for

    thor = [lev for lev in model.levels if lev.region == "T"]
    if not thor:
        return
    n = len(thor)
    frac = np.linspace(0.0, 1.0, n)
    half_l = np.interp(frac, [0.0, 0.3, 0.7, 1.0], [45.0, 115.0, 135.0, 120.0])  # chest half width (mm)
    half_a = np.interp(frac, [0.0, 0.3, 0.7, 1.0], [40.0, 85.0, 105.0, 100.0])  # chest half depth
    tips = np.array([max(lev.tp_len, 20.0) for lev in thor])
    a_tip = np.array([-0.35 * 0.5 * lev.canal_ap - 14.0 for lev in thor])
    centre = a_tip + half_a * np.sqrt(np.clip(1.0 - (tips / half_l) ** 2, 0.05, 1.0))
    mids = np.array([lev.s_mid - 0.1 * lev.body_h for lev in thor])
    drop = 35.0
    blk = _block_for(
        model,
        grid,
        mids[0] - 15.0,
        mids[-1] + drop + 15.0,
        -45.0,
        float(centre.max() + half_a.max()),
        float(half_l.max()) + 8.0,
    )
    if blk is None:
        return
    s = maps.s[blk]
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    # per-voxel chest ellipse from the rib levels (by s), via 0.5 mm look-up tables (no per-voxel interp)
    s_lo = float(mids[0] - 60.0)
    grid_s = np.arange(s_lo, float(mids[-1]) + drop + 60.0, 0.5)

    idx_s = np.clip(((s - np.float32(s_lo)) * np.float32(2.0)).astype(np.int32), 0, len(grid_s) - 1)

    def lut(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        return np.interp(grid_s, mids, values).astype(np.float32)[idx_s]

    rl = lut(half_l)
    ra = lut(half_a)
    ac = lut(centre)
    u = np.abs(l) / rl
    v = (a - ac) / ra
    rho = np.sqrt(u * u + v * v)
    # position along the arc: 0 at the back (posterior pole), 1 at the front; (1 - cos(angle)) / 2
    along = np.float32(0.5) + np.float32(0.5) * v / np.maximum(rho, np.float32(1e-3))
    s_back = s - np.float32(drop) * along  # where the rib through this voxel started (posteriorly)
    nearest = np.abs(grid_s[:, None] - mids[None, :]).argmin(axis=1).astype(np.int16)
    idx_b = np.clip(((s_back - np.float32(s_lo)) * np.float32(2.0)).astype(np.int32), 0, len(grid_s) - 1)
    near = nearest[idx_b]
    ds = np.abs(s_back - mids.astype(np.float32)[near])
    cos0 = np.sqrt(np.clip(1.0 - (tips / half_l) ** 2, 0.05, 1.0))  # cos of the angle at the process tip
    start_k = (0.5 - 0.5 * cos0).astype(np.float32)
    start = start_k[near]
    end = np.float32(0.5 - 0.5 * np.cos(0.78 * np.pi))
    rib = (ds < 4.5) & (np.abs(rho - 1.0) * ra < 3.0) & (along > start - 0.01) & (along < end)
    rib &= maps.semantic[blk] == 0
    tis = maps.tissue[blk]
    # lungs fill the chest inside the ribs, lateral to the mediastinum and in front of the back muscles
    # diaphragm: a dome, highest in the middle of the chest, lowest at the ribs
    chest_rows = (s > mids[0] - 20.0) & (
        s < np.float32(mids[-1] + 15.0) - np.float32(45.0) * np.clip(1.0 - rho, 0.0, 1.0)
    )
    soft_like = (tis == Tissue.ORGAN) | (tis == Tissue.SOFT) | (tis == Tissue.FAT) | (tis == Tissue.BOWEL)
    medi = np.abs(l) < 22.0 + 0.25 * np.clip(a, 0.0, None)
    lung = chest_rows & (rho < 0.92) & ~medi & soft_like & (a > -25.0) & (maps.semantic[blk] == 0)
    tis[lung] = Tissue.LUNG
    cortex = rib & ((ds > 3.3) | (np.abs(rho - 1.0) * ra > 1.9))
    tis[rib] = Tissue.MARROW_POST
    tis[cortex] = Tissue.CORTICAL
