"""Tissues around the spine: body outline, subcutaneous fat, muscles, viscera, vessels, head.

Painted before the spine (the spine overwrites them). Far-field shapes use world coordinates per
axial row so that strong curvature never folds them; near-spine compartments use canonical ``a, l``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

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
    return {
        "s": s_at,
        "cx": cx,
        "cy": cy,
        "post": post_at,
        "ant": ant,
        "half_w": half_w,
        "vis": vis,
        "head": (reg == "H").astype(np.float64),
    }


def paint_surroundings(model: SpineModel, grid: Grid, maps: LabelMaps, blobs: list[Blob]) -> None:
    """Fill ``maps.tissue`` with the body, fat, muscles and viscera (labels stay 0)."""
    rp = _row_params(model, grid)
    x = grid.axis_coords(0)[:, None, None] - rp["cx"][None, None, :]
    y = grid.axis_coords(1)[None, :, None] - rp["cy"][None, None, :]
    post = rp["post"][None, None, :]
    ant = rp["ant"][None, None, :]
    half_w = rp["half_w"][None, None, :]
    yc = 0.5 * (ant - post)
    ry = 0.5 * (ant + post)
    rn = (np.abs(x / half_w) ** 2.2 + np.abs((y - yc) / ry) ** 2.2).astype(np.float32)
    body = rn < 1.0
    fat_edge = (1.0 - model.subcut_fat_mm / ry) ** 2.2
    tis = maps.tissue
    tis[...] = Tissue.AIR
    vis = np.broadcast_to(rp["vis"][None, None, :].astype(np.uint8), tis.shape)
    tis[body] = vis[body]
    a = maps.a
    l = maps.l  # noqa: E741
    # neck/back muscles behind the canal, psoas beside the lumbar bodies
    muscle = body & (a < 4.0) & (np.abs(l) < 95.0)
    tis[muscle] = Tissue.MUSCLE
    # prevertebral soft tissue band
    band = body & (a >= 4.0) & (a < 48.0) & (np.abs(l) < 30.0)
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
