"""Voxelise a :class:`SpineModel` on a grid: SPINEPS semantic + instance labels and tissue classes.

Every structure is an implicit shape in canonical ``(s, a, l)`` coordinates (see ``spine_shape``),
evaluated only inside a world bounding block around it, so the cost scales with the spine, not the grid.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neurospine.labels import DISC_OFFSET, ENDPLATE_OFFSET, Structure
from neurospine.synth.anatomy import Level
from neurospine.synth.grid import Grid
from neurospine.synth.model import ENDPLATE_MM, EPIDURAL_ANT_MM, EPIDURAL_LAT_MM, EPIDURAL_POST_MM, SpineModel
from neurospine.synth.tissues import Tissue

F32 = npt.NDArray[np.float32]
Bool = npt.NDArray[np.bool_]
Block = tuple[slice, slice, slice]
FloatVec = npt.NDArray[np.float64] | tuple[float, float, float]

SEM_CORPUS = 49  # SPINEPS output value for the corpus (49 border + 50 inside are merged)
SEM_ENDPLATE = int(Structure.ENDPLATE)
SEM_DISC = int(Structure.DISC)
SEM_CANAL = int(Structure.CANAL)
SEM_CORD = int(Structure.CORD)
SEM_SACRUM = int(Structure.SACRUM)
#: The cord label starts this far below the top of the canal (the brainstem above is not labelled).
CORD_CAP_MM = 2.0
#: Length of the (unlabelled) medulla and cisterna drawn above the foramen magnum.
BRAINSTEM_MM = 30.0


@dataclass
class LabelMaps:
    semantic: npt.NDArray[np.uint8]
    instance: npt.NDArray[np.int16]
    tissue: npt.NDArray[np.uint8]
    s: F32
    a: F32
    l: F32  # noqa: E741
    cord_soft: F32 | None = None
    canal_soft: F32 | None = None


def _body_centre_a(lev: Level, first: bool) -> float:
    """Canonical ``a`` of the body centre: in front of the thecal sac (C1: in front of the dens)."""
    base = 0.5 * lev.canal_ap + EPIDURAL_ANT_MM + 0.5 * lev.body_d
    return base + (11.0 if first else 0.0)


def _block_for(
    model: SpineModel, grid: Grid, s0: float, s1: float, a0: float, a1: float, half_l: float, l_lo: float | None = None
) -> Block | None:
    """World-aligned index block around the canonical box [s0,s1] x [a0,a1] x [l_lo or -half_l, half_l]."""
    ss = np.linspace(s0, s1, max(3, int((s1 - s0) / 8.0) + 2))
    l0 = -half_l if l_lo is None else l_lo
    corners = np.array([(s, a, l) for s in ss for a in (a0, a1) for l in (l0, half_l)])  # noqa: E741
    pts = model.centreline.to_world(corners[:, 0], corners[:, 1], corners[:, 2])
    return grid.block(pts.min(axis=0) - 2.0, pts.max(axis=0) + 2.0)


def _surfaces(lev: Level, first: bool, s_loc: F32, a: F32, l: F32) -> tuple[F32, F32, F32, F32]:  # noqa: E741
    """Body cross-section radius^2, superior / inferior surface (local s) and tilted local s."""
    a_c = _body_centre_a(lev, first)
    da = (a - a_c) / (0.5 * lev.body_d)
    dl = l / (0.5 * lev.body_w)
    # posterior wall flatter than the anterior one
    rho2 = np.where(da < 0, np.abs(da) ** 3, da * da) + dl * dl
    tilt = math.tan(math.radians(lev.tilt_deg))
    s_t = s_loc - np.float32(tilt) * (a - a_c)
    h = lev.body_h
    frac_ant = np.clip(0.5 * (da + 1.0), 0.0, 1.0)
    inner = np.clip(1.0 - rho2, 0.0, 1.0)
    loss = (1.0 - lev.height_ant) * frac_ant + (1.0 - lev.height_mid) * inner
    conc = np.float32(0.8) * inner
    # rounded rims: the body height drops by up to 1.5 mm over the outer part of the cross-section
    rim = np.clip((rho2 - 0.7) * np.float32(1 / 0.3), 0.0, 1.0) ** 2 * np.float32(1.5)
    top = -0.5 * h + h * loss + conc + rim
    bot = 0.5 * h - conc - rim
    return rho2, top.astype(np.float32), bot.astype(np.float32), s_t.astype(np.float32)


def _ellipse_seg(u: F32, v: F32, ru: float, rv: float) -> Bool:
    return (u / ru) ** 2 + (v / rv) ** 2 < 1.0


class _Views:
    """Semantic, instance and tissue views of the maps on one block, written together by :meth:`put`."""

    def __init__(self, maps: LabelMaps, blk: Block) -> None:
        self.sem = maps.semantic[blk]
        self.ins = maps.instance[blk]
        self.tis = maps.tissue[blk]

    def put(self, mask: Bool, value: int, vid: int, tissue: int) -> None:
        self.sem[mask] = value
        self.ins[mask] = vid
        self.tis[mask] = tissue


class _Local(_Views):
    """Map views on a block plus the vertebra's canonical ``a``, ``l`` and tilted local axial ``st``."""

    def __init__(self, maps: LabelMaps, blk: Block, lev: Level) -> None:
        super().__init__(maps, blk)
        self.a = maps.a[blk]
        self.l = maps.l[blk]
        tilt = np.float32(math.tan(math.radians(lev.tilt_deg)))
        self.st = maps.s[blk] - np.float32(lev.s_mid) - tilt * self.a


def _local_block(
    model: SpineModel,
    grid: Grid,
    lev: Level,
    maps: LabelMaps,
    u0: float,
    u1: float,
    a0: float,
    a1: float,
    l0: float,
    l1: float,
) -> _Local | None:
    """A :class:`_Local` for the vertebra-local box ``st in [u0,u1], a in [a0,a1], l in [l0,l1]``."""
    margin = abs(math.tan(math.radians(lev.tilt_deg))) * max(abs(a0), abs(a1)) + 1.0
    blk = _block_for(model, grid, lev.s_mid + u0 - margin, lev.s_mid + u1 + margin, a0, a1, l1, l_lo=l0)
    return None if blk is None else _Local(maps, blk, lev)


_POST = int(Tissue.MARROW_POST)


def _inner_radii(lev: Level) -> tuple[float, float]:
    """Inner semi-axes (posterior a, lateral l) of the bony ring: thecal sac plus epidural space."""
    return 0.5 * lev.canal_ap + EPIDURAL_POST_MM, 0.5 * lev.canal_lr + EPIDURAL_LAT_MM


def _paint_posterior(lev: Level, first: bool, model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Arch, articular pillars, transverse/costal processes and spinous process of one vertebra."""
    _paint_arch(lev, first, model, grid, maps)
    _paint_facets(lev, model, grid, maps)
    _paint_costal(lev, model, grid, maps)
    _paint_spinous(lev, model, grid, maps)


def _paint_arch(lev: Level, first: bool, model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Elliptic annulus around the bony canal: pedicles forward to the body, laminae lower behind."""
    h = lev.body_h
    ra = 0.5 * lev.canal_ap
    in_a, in_l = _inner_radii(lev)
    t = lev.arch_t
    a_front = _body_centre_a(lev, first) - 0.5 * lev.body_d + 3.0
    loc = _local_block(
        model, grid, lev, maps, -0.45 * h, 0.55 * h, -(in_a + t + 1), a_front + 1, -(in_l + t + 1), in_l + t + 1
    )
    if loc is not None:
        a, l = loc.a, loc.l  # noqa: E741
        lam = np.clip(a * np.float32(-1.0 / (in_a + t)), 0.0, 1.0)
        st = loc.st - np.float32(0.12 * h) * lam
        an = a < 0
        l2i = (l * np.float32(1 / in_l)) ** 2
        l2o = (l * np.float32(1 / (in_l + t))) ** 2
        r_in = np.where(an, (a * np.float32(1 / in_a)) ** 2, (a * np.float32(1 / (ra + EPIDURAL_ANT_MM))) ** 2) + l2i
        r_out = np.where(an, (a * np.float32(1 / (in_a + t))) ** 2, (a * np.float32(1 / (ra + t))) ** 2) + l2o
        arch = (r_in >= 1.0) & (r_out < 1.0) & (a < a_front) & (st > -0.42 * h) & (st < 0.40 * h)
        if lev.region == "C":  # cervical pedicles are short in s
            arch &= an | (np.abs(st) < 0.3 * h)
        loc.put(arch, int(Structure.ARCUS), lev.vid, _POST)


def _paint_facets(lev: Level, model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Superior / inferior articular processes (facet pillars) at the arch's posterolateral corners."""
    h = lev.body_h
    ra = 0.5 * lev.canal_ap
    _, in_l = _inner_radii(lev)
    t = lev.arch_t
    for side, sup_v, inf_v in (
        (-1, Structure.SUP_ARTICULAR_L, Structure.INF_ARTICULAR_L),
        (1, Structure.SUP_ARTICULAR_R, Structure.INF_ARTICULAR_R),
    ):
        l_c = side * (in_l + 0.55 * t)
        rs_l, rs_a, rs_s = 0.45 * t + 2.5, 5.5, 0.32 * h + 2.5
        c_s = -0.5 * h - 1.0
        loc = _local_block(
            model, grid, lev, maps, c_s - rs_s, c_s + rs_s, -0.55 * ra - rs_a, -0.55 * ra + rs_a, l_c - rs_l, l_c + rs_l
        )
        if loc is not None:
            sup = (((loc.l - l_c) / rs_l) ** 2 + ((loc.a + 0.55 * ra) / rs_a) ** 2 + ((loc.st - c_s) / rs_s) ** 2) < 1.0
            loc.put(sup, int(sup_v), lev.vid, _POST)
        l_c2 = side * (in_l + 0.45 * t - 1.0)
        ri_l, ri_a, ri_s = 0.45 * t + 2.0, 5.0, 0.32 * h + 2.5
        c_s2 = 0.5 * h + 0.3 * lev.disc_h
        c_a2 = -(ra + 2.5)
        loc = _local_block(
            model, grid, lev, maps, c_s2 - ri_s, c_s2 + ri_s, c_a2 - ri_a, c_a2 + ri_a, l_c2 - ri_l, l_c2 + ri_l
        )
        if loc is not None:
            inf = (((loc.l - l_c2) / ri_l) ** 2 + ((loc.a - c_a2) / ri_a) ** 2 + ((loc.st - c_s2) / ri_s) ** 2) < 1.0
            loc.put(inf, int(inf_v), lev.vid, _POST)


def _paint_costal(lev: Level, model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Transverse / costal processes, left and right."""
    h = lev.body_h
    ra = 0.5 * lev.canal_ap
    _, in_l = _inner_radii(lev)
    t = lev.arch_t
    root_l = in_l + 0.5 * t
    tip_l = max(lev.tp_len, root_l + 4.0)
    a_root = -0.35 * ra
    a_tip = a_root + {"C": 6.0, "T": -14.0, "L": -2.0}.get(lev.region, 0.0)
    thick = 8.0 if lev.region != "L" else 9.0
    for side, value in ((-1, int(Structure.COSTAL_L)), (1, int(Structure.COSTAL_R))):
        l_lo, l_hi = sorted((side * root_l, side * tip_l))
        loc = _local_block(
            model,
            grid,
            lev,
            maps,
            -0.05 * h - 0.5 * lev.tp_h,
            -0.05 * h + 0.5 * lev.tp_h,
            min(a_root, a_tip) - thick,
            max(a_root, a_tip) + thick,
            l_lo,
            l_hi,
        )
        if loc is None:
            continue
        u = (side * loc.l - root_l) / (tip_l - root_l)
        a_mid = a_root + np.clip(u, 0, 1) * (a_tip - a_root)
        tp = (u >= 0) & (u <= 1) & (np.abs(loc.a - a_mid) < 0.5 * thick)
        tp &= np.abs(loc.st + 0.05 * h) < 0.5 * lev.tp_h * (1 - 0.3 * u)
        loc.put(tp, value, lev.vid, _POST)


def _paint_spinous(lev: Level, model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    """Spinous process: a tapered bar pointing posterior-inferior."""
    h = lev.body_h
    in_a, _ = _inner_radii(lev)
    t = lev.arch_t
    ang = math.radians(lev.spin_ang_deg)
    p_s, p_a = 0.05 * h, -(in_a + 0.6 * t)
    ds_, da_ = math.sin(ang), -math.cos(ang)
    e_s, e_a = p_s + lev.spin_len * ds_, p_a + lev.spin_len * da_
    pad = 0.5 * lev.spin_h + 1.0
    width = 6.0 if lev.region != "L" else 8.0
    loc = _local_block(
        model,
        grid,
        lev,
        maps,
        min(p_s, e_s) - pad,
        max(p_s, e_s) + pad,
        min(p_a, e_a) - pad,
        max(p_a, e_a) + pad,
        -0.7 * width - 1,
        0.7 * width + 1,
    )
    if loc is not None:
        rel_s = loc.st - np.float32(p_s)
        rel_a = loc.a - np.float32(p_a)
        along = rel_s * np.float32(ds_) + rel_a * np.float32(da_)
        perp = rel_s * np.float32(da_) - rel_a * np.float32(ds_)
        u = along * np.float32(1.0 / lev.spin_len)
        sp = (u >= 0) & (u <= 1) & (np.abs(perp) < 0.5 * lev.spin_h * (1 - 0.25 * u))
        sp &= np.abs(loc.l) < 0.5 * width * (1 + 0.3 * u)
        loc.put(sp, int(Structure.SPINOUS), lev.vid, _POST)


def _paint_body(lev: Level, first: bool, above: Level | None, model: SpineModel, grid: Grid, maps: LabelMaps) -> None:
    a_c = _body_centre_a(lev, first)
    extra = 17.0 if lev.name == "C2" else 0.0
    a_lo = a_c - 0.5 * lev.body_d - 1.0 - (12.0 if lev.name == "C2" else 0.0)
    blk = _block_for(
        model,
        grid,
        lev.s_top - 3.0 - extra,
        lev.s_bot + 3.0,
        a_lo,
        a_c + 0.5 * lev.body_d + 1.0,
        0.5 * lev.body_w + 1.0,
    )
    if blk is None:
        return
    s_loc = maps.s[blk] - np.float32(lev.s_mid)
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    rho2, top, bot, s_t = _surfaces(lev, first, s_loc, a, l)
    # concave waist: the body is a little narrower at mid-height than at its endplates
    waist = 1.0 + np.float32(0.05) * np.clip(1.0 - (s_t * np.float32(2.0 / lev.body_h)) ** 2, 0.0, 1.0)
    corpus = (rho2 * waist < 1.0) & (s_t > top) & (s_t < bot)
    out = _Views(maps, blk)
    out.put(corpus, SEM_CORPUS, lev.vid, Tissue.MARROW)
    ep = np.float32(ENDPLATE_MM)
    if above is not None and above.disc_h > 2.0:
        sup = corpus & (s_t < top + ep)
        out.put(sup, SEM_ENDPLATE, ENDPLATE_OFFSET + above.vid, Tissue.ENDPLATE)
    if lev.disc_h > 2.0:
        inf = corpus & (s_t > bot - ep)
        out.put(inf, SEM_ENDPLATE, ENDPLATE_OFFSET + lev.vid, Tissue.ENDPLATE)
    if lev.name == "C2":  # dens: a peg of the C2 body rising into the atlas ring
        ra = 0.5 * lev.canal_ap
        a_d = ra + EPIDURAL_ANT_MM + 5.5
        dens = _ellipse_seg(a - a_d, l, 5.0, 5.5) & (s_t < top + 2.0) & (s_t > top - 17.0)
        dens &= out.sem == 0
        out.put(dens, SEM_CORPUS, lev.vid, Tissue.MARROW)


def _paint_disc(up: Level, lo: Level, maps: LabelMaps, blk: Block) -> None:
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    _, _, bot_u, st_u = _surfaces(up, False, maps.s[blk] - np.float32(up.s_mid), a, l)
    _, top_l, _, st_l = _surfaces(lo, False, maps.s[blk] - np.float32(lo.s_mid), a, l)
    a_c = 0.5 * (_body_centre_a(up, False) + _body_centre_a(lo, False))
    rd = 0.5 * (up.body_d + lo.body_d) * 0.5 * 1.02
    rw = 0.5 * (up.body_w + lo.body_w) * 0.5 * 1.03
    da = (a - a_c) / rd
    rho2 = np.where(da < 0, np.abs(da) ** 3, da * da) + (l / rw) ** 2
    disc = (rho2 < 1.0) & (st_u >= bot_u) & (st_l <= top_l)
    out = _Views(maps, blk)
    out.put(disc, SEM_DISC, DISC_OFFSET + up.vid, Tissue.ANNULUS)
    # nucleus: inner part, mid height
    height = np.maximum(top_l - st_l + st_u - bot_u, 1e-3)
    rel = np.abs(st_u - bot_u - 0.5 * height) / (0.5 * height)
    # nucleus: an ellipsoid in the middle of the disc, flatter when degenerated
    nuc_h = 0.75 * (1.0 - 0.4 * up.disc_degen)
    nuc = disc & (rho2 * np.float32(1 / 0.5) + (rel * np.float32(1 / nuc_h)) ** 2 < 1.0)
    out.tis[nuc] = Tissue.NUCLEUS_DEGEN if up.disc_degen > 0.5 else Tissue.NUCLEUS


def _paint_sacrum(sac: Level, above: Level, model: SpineModel, maps: LabelMaps, blk: Block) -> None:
    s_loc = maps.s[blk] - np.float32(sac.s_top)
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    t = np.clip(s_loc / sac.body_h, 0.0, 1.0)
    inside_s = (s_loc >= 0) & (s_loc <= sac.body_h)
    ra = 0.5 * above.canal_ap
    rl = 0.5 * above.canal_lr
    a_c = ra + EPIDURAL_ANT_MM + 0.5 * sac.body_d
    half_d = 0.5 * sac.body_d * (1 - 0.55 * t)
    half_w = 0.5 * sac.body_w * (1 - 0.6 * t)
    a_cc = a_c - 0.5 * sac.body_d * 0.55 * t  # the front recedes as the body thins
    body = _ellipse_seg(a - a_cc, l, half_d, half_w)
    ala_w = (0.5 * sac.body_w + 28.0) * np.clip(1 - t * 1.6, 0, 1) ** 0.7
    alae = (np.abs(l) < ala_w) & (a < a_cc + 0.3 * half_d) & (a > -ra - 4.0) & (t < 0.62)
    dorsal = _ellipse_seg(a + 0.3 * ra, l, ra + 8.0 - 4 * t, rl + 10.0 - 6 * t) & (a < 0.5 * ra)
    crest = (np.abs(l) < 4.0) & (a < -ra) & (a > -ra - 14.0 * (1 - t)) & (t < 0.8)
    bone = inside_s & (body | alae | dorsal | crest)
    canal_bony = _ellipse_seg(a, l, (ra + 1.5) * (1 - 0.5 * t), (rl + 1.5) * (1 - 0.5 * t))
    bone &= ~canal_bony
    out = _Views(maps, blk)
    out.put(bone, SEM_SACRUM, sac.vid, Tissue.MARROW)
    out.tis[inside_s & canal_bony] = Tissue.EPIDURAL_FAT
    # fused segments: thin remnant discs across the sacral body every ~22 mm
    seg = np.float32(0.23 * sac.body_h)
    phase = np.mod(s_loc, seg)
    remnant = bone & body & (s_loc > 0.5 * seg) & (phase < 1.6) & (t < 0.85)
    out.tis[remnant] = Tissue.ANNULUS
    # superior endplate of S1 (facing the last lumbar disc)
    sup = bone & body & (s_loc < ENDPLATE_MM) & (above.disc_h > 2.0)
    out.put(sup, SEM_ENDPLATE, ENDPLATE_OFFSET + above.vid, Tissue.ENDPLATE)


def _fraction(u: F32, v: F32, ru: F32, rv: F32, nu: FloatVec, nv: FloatVec, spacing: FloatVec) -> F32:
    """Partial-volume fraction of an ellipse ``(u/ru)^2 + (v/rv)^2 < 1`` in each voxel.

    The boundary is treated as locally planar: signed distance ``d`` from the implicit function and
    its gradient, voxel width ``w`` along the boundary normal, fraction ``clip(0.5 - d / w, 0, 1)``.
    ``nu``, ``nv`` are the world directions of ``u`` and ``v`` (the centreline frame at the block).
    """
    gu = u / (ru * ru)
    gv = v / (rv * rv)
    rho = np.sqrt((u / ru) ** 2 + (v / rv) ** 2)
    gnorm = np.sqrt(gu * gu + gv * gv) + np.float32(1e-6)
    dist = (rho - 1.0) * rho / gnorm
    width = np.zeros_like(u)
    for i in range(3):
        width += np.abs(gu * np.float32(nu[i]) + gv * np.float32(nv[i])) * np.float32(spacing[i])
    width /= gnorm
    return np.clip(0.5 - dist / np.maximum(width, np.float32(1e-3)), 0.0, 1.0).astype(np.float32)


def _paint_brainstem(model: SpineModel, maps: LabelMaps, blk: Block) -> None:
    """Tissue only: the medulla and cisterna continue above the foramen magnum (no labels there)."""
    s = maps.s[blk]
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    zone = (s <= model.fm_s) & (s > model.fm_s - BRAINSTEM_MM) & (maps.semantic[blk] == 0)
    grow = np.float32(1.0) + np.clip((np.float32(model.fm_s) - s) / np.float32(BRAINSTEM_MM), 0.0, 1.0)
    top = np.full_like(s, np.float32(model.fm_s + 1.0))
    ra, rl, ca, cl = model.tube_radii(top)
    csf = zone & ((a / (ra * grow)) ** 2 + (l / (rl * grow)) ** 2 < 1.0)
    stem = csf & (((a - np.float32(model.cord_offset_a)) / (ca * grow)) ** 2 + (l / (cl * grow)) ** 2 < 1.0)
    tis = maps.tissue[blk]
    tis[csf] = Tissue.CSF
    tis[stem] = Tissue.CORD


def _paint_canal(model: SpineModel, grid: Grid, maps: LabelMaps, blk: Block, s_mid: float) -> None:
    s = maps.s[blk]
    a = maps.a[blk]
    l = maps.l[blk]  # noqa: E741
    ra, rl, ca, cl = model.tube_radii(s)
    inside_s = (s > model.fm_s) & (s < model.canal_end_s)
    # SPINEPS "spinal canal" = the bony canal's content: thecal sac plus the epidural space around it
    ra_b = np.where(a < 0, ra + np.float32(EPIDURAL_POST_MM), ra + np.float32(EPIDURAL_ANT_MM))
    rl_b = rl + np.float32(EPIDURAL_LAT_MM)
    canal = ((a / ra_b) ** 2 + (l / rl_b) ** 2 < 1.0) & inside_s
    sac = ((a / ra) ** 2 + (l / rl) ** 2 < 1.0) & inside_s
    ca = np.maximum(ca, np.float32(1e-3))
    cl = np.maximum(cl, np.float32(1e-3))
    ua = a - np.float32(model.cord_offset_a)
    ul = l - np.float32(model.cord_offset_l)
    cord = sac & ((ua / ca) ** 2 + (ul / cl) ** 2 < 1.0) & (s < model.conus_s) & (s > model.fm_s + CORD_CAP_MM)
    sem = maps.semantic[blk]
    ins = maps.instance[blk]
    tis = maps.tissue[blk]
    # ligamenta flava: between the laminae, just behind the canal (tissue only)
    flava = (a < 0) & ((a / (ra_b + np.float32(7.0))) ** 2 + (l / rl_b) ** 2 < 1.0) & ~canal & (sem == 0) & inside_s
    tis[flava] = Tissue.LIGAMENT
    # epidural space: canal label, fat tissue; bone or disc that reaches into it keeps its label
    epi = canal & ~sac & (sem == 0)
    sem[epi] = SEM_CANAL
    tis[epi] = Tissue.EPIDURAL_FAT
    sem[sac] = SEM_CANAL
    ins[sac] = 0
    tis[sac] = Tissue.CSF
    sem[cord] = SEM_CORD
    tis[cord] = Tissue.CORD
    # cauda equina: thin roots below the conus (tissue only; they stay canal in the labels)
    below = sac & (s > model.conus_s - 5.0)
    if below.any():
        roots = np.zeros_like(below)
        r2 = np.float32(model.root_radius_mm**2)
        for ua_r, ul_r in model.roots:
            roots |= ((a - ua_r * ra) ** 2 + (l - ul_r * rl) ** 2) < r2
        tis[below & roots] = Tissue.NERVE
    if maps.cord_soft is None or maps.canal_soft is None:
        return
    cl_ = model.centreline
    nvec = cl_._interp(cl_.n, np.array(s_mid))
    bvec = cl_._interp(cl_.b, np.array(s_mid))
    tvec = cl_._interp(cl_.t, np.array(s_mid))
    sp = grid.spacing
    t_width = np.float32(sum(abs(float(tvec[i])) * sp[i] for i in range(3)))
    ends = np.clip(0.5 + (s - np.float32(model.fm_s)) / t_width, 0.0, 1.0)
    k_frac = _fraction(a, l, ra_b, rl_b, nvec, bvec, sp) * ends
    c_frac = _fraction(ua, ul, ca, cl, nvec, bvec, sp) * ends
    c_frac *= np.clip(0.5 + (np.float32(model.conus_s) - s) / t_width, 0.0, 1.0)
    c_frac *= np.clip(0.5 + (s - np.float32(model.fm_s + CORD_CAP_MM)) / t_width, 0.0, 1.0)
    np.minimum(c_frac, k_frac, out=c_frac)
    np.maximum(maps.canal_soft[blk], k_frac, out=maps.canal_soft[blk])
    np.maximum(maps.cord_soft[blk], c_frac, out=maps.cord_soft[blk])


def paint_spine(model: SpineModel, grid: Grid, maps: LabelMaps) -> list[int]:
    """Paint all spinal structures into ``maps`` (in place); returns the vertebra ids painted."""
    verts = model.vertebrae
    sac = model.sacrum
    blocks: list[Block | None] = []
    for i, lev in enumerate(verts):
        reach = lev.spin_len * math.sin(math.radians(max(lev.spin_ang_deg, 0))) + lev.spin_h
        a_back = -(0.5 * lev.canal_ap + EPIDURAL_POST_MM + lev.arch_t + lev.spin_len + 6.0)
        a_front = _body_centre_a(lev, i == 0) + 0.5 * lev.body_d + 3.0
        half_l = max(lev.tp_len + 4.0, 0.5 * lev.body_w + 4.0)
        blk = _block_for(
            model,
            grid,
            lev.s_top - 12.0 - (17.0 if lev.name == "C2" else 0.0),
            lev.s_bot + lev.disc_h + reach + 4.0,
            a_back,
            a_front,
            half_l,
        )
        blocks.append(blk)
    for i, lev in enumerate(verts):
        if blocks[i] is not None:
            _paint_posterior(lev, i == 0, model, grid, maps)
    for i in range(1, len(verts) - 1):
        up, lo = verts[i], verts[i + 1]
        if up.disc_h <= 2.0:
            continue
        a0 = min(_body_centre_a(up, False) - 0.6 * up.body_d, _body_centre_a(lo, False) - 0.6 * lo.body_d)
        a1 = max(_body_centre_a(up, False) + 0.6 * up.body_d, _body_centre_a(lo, False) + 0.6 * lo.body_d)
        blk = _block_for(model, grid, up.s_mid, lo.s_mid, a0, a1, 0.6 * max(up.body_w, lo.body_w))
        if blk is not None:
            _paint_disc(up, lo, maps, blk)
    last = verts[-1]
    if last.disc_h > 2.0:
        a1 = _body_centre_a(last, False) + 0.6 * max(last.body_d, sac.body_d)
        blk = _block_for(model, grid, last.s_mid, sac.s_top + 8.0, 0.0, a1, 0.6 * max(last.body_w, sac.body_w))
        if blk is not None:
            # S1's top treated as a flat vertebral surface of the sacral body's size
            sac_as_body = Level(**{**sac.__dict__, "extra": {}})
            sac_as_body.body_h = 40.0  # s_mid = s_top + 20 -> superior surface at s_top
            sac_as_body.tilt_deg = 0.0
            sac_as_body.height_ant = sac_as_body.height_mid = 1.0
            _paint_disc(last, sac_as_body, maps, blk)
    for i, lev in enumerate(verts):
        if blocks[i] is not None:
            _paint_body(lev, i == 0, verts[i - 1] if i > 0 else None, model, grid, maps)
    ra_l = 0.5 * last.canal_ap
    blk = _block_for(
        model, grid, sac.s_top - 2.0, sac.s_bot + 2.0, -(ra_l + 25.0), ra_l + sac.body_d + 6.0, 0.5 * sac.body_w + 32.0
    )
    if blk is not None:
        _paint_sacrum(sac, last, model, maps, blk)
    # canal and cord, segment by segment along the axis
    s_marks = [model.fm_s] + [lev.s_bot + lev.disc_h for lev in verts] + [model.canal_end_s]
    for s0, s1 in itertools.pairwise(s_marks):
        if s1 <= s0:
            continue
        blk = _block_for(model, grid, s0, s1, -14.0, 14.0, 16.0)
        if blk is not None:
            _paint_canal(model, grid, maps, blk, 0.5 * (s0 + s1))
    blk = _block_for(model, grid, model.fm_s - BRAINSTEM_MM, model.fm_s + 1.0, -16.0, 16.0, 18.0)
    if blk is not None:
        _paint_brainstem(model, maps, blk)
    counts = np.bincount(maps.instance.ravel().astype(np.intp, copy=False))
    return [lev.vid for lev in [*verts, sac] if lev.vid < counts.size and counts[lev.vid] > 0]
