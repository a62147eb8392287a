"""A sampled synthetic spine: levels, centreline, neural tube and surroundings (no voxels yet)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from neurospine.synth.anatomy import Level, build_levels, level_sequence, stack_levels
from neurospine.synth.spine_shape import Centreline, integrate_frames

#: Gap between the thecal sac and the bone (epidural space), mm: anterior and posterior.
EPIDURAL_ANT_MM = 1.0
EPIDURAL_POST_MM = 2.5
EPIDURAL_LAT_MM = 1.5
ENDPLATE_MM = 1.5


@dataclass
class Blob:
    """An ellipsoid of one tissue in world space (organs, bowel, bladder, lung)."""

    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    tissue: int


@dataclass
class SpineModel:
    levels: list[Level]
    centreline: Centreline
    fm_s: float  # foramen magnum: top of canal and cord
    conus_s: float  # caudal tip of the cord
    canal_end_s: float  # end of the thecal sac in the sacrum
    cord_offset_a: float  # cord centre offset inside the canal (mm, + anterior)
    cord_offset_l: float
    post_soft_mm: float  # muscle + fat behind the spinous tips
    subcut_fat_mm: float
    ant_depth_scale: float
    blobs: list[Blob] = field(default_factory=list)
    roots: list[tuple[float, float]] = field(default_factory=list)  # cauda equina roots (a, l) in canal units
    root_radius_mm: float = 1.0
    angles_deg: dict[str, float] = field(default_factory=dict)

    @property
    def vertebrae(self) -> list[Level]:
        return self.levels[:-1]

    @property
    def sacrum(self) -> Level:
        return self.levels[-1]

    def level_by_id(self, vid: int) -> Level:
        for lev in self.levels:
            if lev.vid == vid:
                return lev
        raise KeyError(vid)

    def tube_radii(self, s: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], ...]:
        """Canal and cord semi-axes ``(canal_ap, canal_lr, cord_ap, cord_lr)`` at ``s`` from a 0.25 mm table."""
        lut = self.__dict__.get("_tube_lut")
        if lut is None:
            grid = np.arange(self.fm_s - 10.0, self.canal_end_s + 10.0, 0.25)
            ra, rl = self.canal_radii(grid)
            ca, cl = self.cord_radii(grid)
            lut = (float(grid[0]), np.stack([ra, rl, ca, cl]).astype(np.float32))
            self.__dict__["_tube_lut"] = lut
        s0, table = lut
        idx = np.clip(
            ((s - np.float32(s0)) * np.float32(4.0) + np.float32(0.5)).astype(np.int32), 0, table.shape[1] - 1
        )
        return tuple(row[idx] for row in table)

    def canal_radii(self, s: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Thecal-sac semi-axes (AP, LR) along the canonical axis."""
        mids = np.array([lev.s_mid for lev in self.levels[:-1]])
        ra = np.interp(s, mids, [0.5 * lev.canal_ap for lev in self.levels[:-1]])
        rl = np.interp(s, mids, [0.5 * lev.canal_lr for lev in self.levels[:-1]])
        # the sac narrows to a point at its caudal end
        taper = np.clip((self.canal_end_s - np.asarray(s, dtype=np.float64)) / 25.0, 0.0, 1.0) ** 0.5
        return ra * np.maximum(taper, 0.35), rl * np.maximum(taper, 0.35)

    def cord_radii(self, s: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        mids = np.array([lev.s_mid for lev in self.levels[:-1]])
        ra = np.interp(s, mids, [0.5 * lev.cord_ap for lev in self.levels[:-1]])
        rl = np.interp(s, mids, [0.5 * lev.cord_lr for lev in self.levels[:-1]])
        taper = np.clip((self.conus_s - np.asarray(s, dtype=np.float64)) / 22.0, 0.0, 1.0) ** 0.6
        return ra * taper, rl * taper


def _sagittal_curvature(
    levels: list[Level], s: npt.NDArray[np.float64], rng: np.random.Generator, deformity: float
) -> tuple[npt.NDArray[np.float64], dict[str, float]]:
    """Curvature profile: cervical lordosis, thoracic kyphosis, lumbar lordosis, sacral kyphosis."""
    by_name = {lev.name: lev for lev in levels}
    thor = [lev for lev in levels if lev.region == "T"]
    lum = [lev for lev in levels if lev.region == "L"]
    sac = levels[-1]
    spread = 1.0 + deformity
    ang = {
        "cervical_lordosis": float(rng.uniform(5, 35) * spread),
        "thoracic_kyphosis": float(rng.uniform(20, 50) * spread),
        "lumbar_lordosis": float(rng.uniform(30, 60) * min(spread, 1.3)),
        "sacral_kyphosis": float(rng.uniform(30, 55)),
    }
    if rng.random() < 0.15 * (1 + deformity):  # flat back or hyperkyphosis
        ang["thoracic_kyphosis"] = float(rng.choice([rng.uniform(0, 15), rng.uniform(55, 75)]))
    segments = [
        (by_name["C2"].s_top, thor[0].s_top, -ang["cervical_lordosis"]),
        (thor[0].s_top, lum[0].s_top, ang["thoracic_kyphosis"]),
        (lum[0].s_top, sac.s_top + 5.0, -ang["lumbar_lordosis"]),
        (sac.s_top + 5.0, sac.s_bot, ang["sacral_kyphosis"]),
    ]
    kappa = np.zeros_like(s)
    for s0, s1, deg in segments:
        inside = (s >= s0) & (s < s1)
        kappa[inside] += math.radians(deg) / max(s1 - s0, 1.0)
    # smooth the transitions (box filter of ~30 mm)
    width = 31
    kernel = np.ones(width) / width
    kappa = np.convolve(np.pad(kappa, width // 2, mode="edge"), kernel, mode="valid")
    return kappa, ang


def _coronal_curvature(
    s: npt.NDArray[np.float64], s_lo: float, s_hi: float, rng: np.random.Generator, p_scoliosis: float, deformity: float
) -> tuple[npt.NDArray[np.float64], float]:
    if rng.random() >= p_scoliosis:
        return np.zeros_like(s), 0.0
    cobb = float(rng.uniform(8, 35) * (1 + deformity))
    period = float(rng.uniform(0.6, 1.2)) * (s_hi - s_lo)
    phase = float(rng.uniform(0, 2 * math.pi))
    k0 = math.radians(cobb) * math.pi / period  # peak curvature for a half-wave Cobb angle
    kappa = k0 * np.sin(2 * math.pi * (s - s_lo) / period + phase)
    kappa[(s < s_lo) | (s > s_hi)] = 0.0
    return kappa, cobb


def build_spine_model(
    rng: np.random.Generator,
    *,
    n_thoracic: int,
    n_lumbar: int,
    deformity: float,
    p_scoliosis: float,
    p_fracture: float,
    p_disc_degen: float,
) -> SpineModel:
    """Sample every geometric parameter of one synthetic spine (no voxels)."""
    seq = level_sequence(n_thoracic, n_lumbar)
    size = float(np.clip(rng.normal(1.0, 0.05), 0.85, 1.15))
    levels = build_levels(seq, rng, size_scale=size)
    verts = levels[:-1]
    for i, lev in enumerate(verts):
        lev.tilt_deg = float(rng.normal(0.0, 2.0))
        if lev.region in ("T", "L") and rng.random() < p_fracture:
            kind = rng.choice(["wedge", "biconcave", "crush"])
            if kind == "wedge":
                lev.height_ant = float(rng.uniform(0.5, 0.85))
            elif kind == "biconcave":
                lev.height_mid = float(rng.uniform(0.55, 0.85))
            else:
                lev.height_ant = lev.height_mid = float(rng.uniform(0.6, 0.85))
        has_disc = i > 0 and lev.disc_h > 2.0
        if has_disc and rng.random() < p_disc_degen * (1.6 if lev.region == "L" else 0.7):
            lev.disc_degen = float(rng.uniform(0.3, 1.0))
            lev.disc_h *= 1.0 - 0.6 * lev.disc_degen
    end = stack_levels(levels, s_start=0.0)
    # framed curve sampled every 1 mm, with straight extensions beyond both ends
    ds = 1.0
    pad = 400.0
    s = np.arange(-pad, end + pad, ds)
    kappa_sag, angles = _sagittal_curvature(levels, s, rng, deformity)
    lum_top = next(lev for lev in levels if lev.region == "L").s_top
    kappa_cor, cobb = _coronal_curvature(s, levels[7].s_top, lum_top + 60.0, rng, p_scoliosis, deformity)
    angles["cobb"] = cobb
    # axial rotation follows the scoliotic curve (about 1/10 of the coronal bend) plus a small random twist
    twist = 0.1 * kappa_cor + math.radians(float(rng.normal(0.0, 3.0))) / max(end, 1.0) * np.ones_like(s)
    twist[(s < 0) | (s > end)] = 0.0
    cl = integrate_frames(kappa_sag, kappa_cor, twist, ds, s0=float(s[0]))
    # conus between mid L1 and mid L2 (about one level of spread)
    l1 = next(lev for lev in levels if lev.name == "L1")
    l2 = next(lev for lev in levels if lev.name == "L2")
    conus = float(rng.uniform(l1.s_top - 10.0, l2.s_mid + 5.0))
    sac = levels[-1]
    canal_end = sac.s_top + float(rng.uniform(0.25, 0.4)) * sac.body_h
    roots = [(float(rng.uniform(-0.6, 0.5)), float(rng.uniform(-0.7, 0.7))) for _ in range(int(rng.integers(4, 9)))]
    model = SpineModel(
        levels=levels,
        centreline=cl,
        fm_s=levels[0].s_top - 4.0,
        conus_s=conus,
        canal_end_s=canal_end,
        cord_offset_a=float(rng.normal(0.0, 0.7)),
        cord_offset_l=float(rng.normal(0.0, 0.4)),
        post_soft_mm=float(rng.uniform(20.0, 50.0)),
        subcut_fat_mm=float(rng.uniform(4.0, 30.0)),
        ant_depth_scale=float(rng.uniform(0.8, 1.3)),
        roots=roots,
        angles_deg=angles,
    )
    return model


def clump_roots(model: SpineModel, rng: np.random.Generator) -> None:
    """Replace the scattered cauda equina roots by a clump of many thin ones lying dorsally in the sac, as
    the roots settle in a supine patient. On an axial slice such a clump looks like a small cord, so a case
    with it teaches a cord model that the cord ends at the conus."""
    centre_a = float(rng.uniform(-0.6, -0.15))  # canal units, negative = posterior
    centre_l = float(rng.uniform(-0.3, 0.3))
    spread = float(rng.uniform(0.08, 0.22))
    n = int(rng.integers(10, 25))
    pts = rng.normal(0.0, spread, size=(n, 2)) + np.array([centre_a, centre_l])
    model.roots = [(float(np.clip(a, -0.8, 0.7)), float(np.clip(lr, -0.8, 0.8))) for a, lr in pts]
    model.root_radius_mm = float(rng.uniform(0.6, 1.1))
