"""``generate_case``: one synthetic spine scan (image, SPINEPS labels, soft cord/canal) from a seed.

Output arrays are axis-aligned with RAS+ world axes: ``data[i, j, k]`` with ``i`` towards the
patient's right, ``j`` anterior, ``k`` superior (nibabel axcodes ``RAS``). A sagittal slice is
``data[i]``; for ``plane="sagittal"`` the thick axis is ``i`` (L-R), for ``"axial"`` it is ``k`` and for
``"coronal"`` ``j``. Use ``neurospine.io.reorient`` to get any other orientation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import Volume
from neurospine.labels import VERTEBRA_NAMES
from neurospine.synth import artifacts
from neurospine.synth.anatomy import TRANSITIONAL_KINDS, make_transitional, transitional_lumbar_count
from neurospine.synth.contrast import CONTRASTS, resolve_contrast, sample_intensity_table
from neurospine.synth.grid import Grid, canonical_fields
from neurospine.synth.model import SpineModel, build_spine_model, clump_roots
from neurospine.synth.rasterize import LabelMaps, paint_spine
from neurospine.synth.spine_shape import rotation_between, small_rotation, transform
from neurospine.synth.surroundings import paint_ribs, paint_surroundings, paint_vessels, sample_blobs
from neurospine.synth.tissues import Tissue

log = logging.getLogger(__name__)

PLANES = ("sagittal", "axial", "coronal", "isotropic", "random")
_THICK_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
#: Thick slices are rendered as an odd number of sub-slices at most this thick (mm), then averaged.
SUBSLICE_MM = 1.4
#: A-P room (mm) around the column's curve when the A-P field of view follows it (vertebral bodies in front, the
#: posterior elements, back muscles and skin behind)
AP_FIT_MARGIN_MM = 140.0
#: ... and left-right room around it (the bodies are about 50 mm wide)
LR_FIT_MARGIN_MM = 60.0
_BONE_SEMANTIC = np.zeros(256, dtype=bool)
_BONE_SEMANTIC[[26, 41, 42, 43, 44, 45, 46, 47, 48, 49, 62]] = True
#: Values ``SynthConfig.contrast`` accepts.
CONTRAST_CHOICES = (*CONTRASTS, "random", "any")
#: styles of the cauda equina below the conus (``SynthConfig.cauda``)
CAUDA_STYLES = ("roots", "clumped")
#: Level names ``SynthConfig.levels`` ranges may use (T13/L6 fall back to L1/L5 on spines without them).
_LEVEL_NAMES = frozenset(
    {*(f"C{i}" for i in range(1, 8)), *(f"T{i}" for i in range(1, 14)), *(f"L{i}" for i in range(1, 7)), "S1"}
)
_NAMED_RANGES = {
    "cervical": ("C1", "C7"),
    "thoracic": ("T1", "L1"),
    "lumbar": ("T12", "S1"),
    "whole": ("C1", "S1"),
    "thoracolumbar": ("T10", "L3"),
    "cervicothoracic": ("C2", "T4"),
}


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. All sizes in mm; probabilities per case (or per level where stated).

    - ``levels``: ``"L1-S1"``, ``"C2-T3"``, ``"whole"``, ``"cervical"``, ``"thoracic"``, ``"lumbar"`` or
      ``"random"`` (a random contiguous run of 3-12 vertebrae). The image covers these levels (plus
      ``margin_mm``) along the spine unless ``fov_mm`` fixes the S-I extent.
    - ``contrast``: ``"t2w"``, ``"t1w"``, ``"stir"``, ``"t2sw"``, ``"ct"`` (HU), ``"random"`` (random
      per-tissue Gaussians) or ``"any"`` (one of those, chosen per case).
    - ``plane`` / ``spacing_mm``: ``"isotropic"`` uses ``spacing_mm`` as (R-L, A-P, S-I) voxel sizes; for
      ``"sagittal"``, ``"axial"``, ``"coronal"`` ``spacing_mm`` is (in-plane, in-plane, slice thickness)
      and the thickness goes on the L-R, S-I or A-P axis; ``"random"`` draws the plane (60 % sagittal,
      25 % axial, 15 % coronal), in-plane 0.5-1.2 mm and thickness 2-5 mm per case. Thick slices
      integrate the signal across the slice (partial volume); labels are taken at the slice centre.
    - ``fov_mm``: (R-L, A-P, S-I) extent; ``None`` entries are chosen from the plane and the levels (a ``None``
      R-L or A-P extent of a sagittal or isotropic image follows the column's curve: at least the plane's
      default, wide enough for the whole span plus ``LR_FIT_MARGIN_MM`` / ``AP_FIT_MARGIN_MM``, centred on it, as
      a whole-spine protocol does). ``shape`` (voxels, R-A-S order) overrides ``fov_mm`` when given.
    """

    levels: str = "random"
    contrast: str = "t2w"
    plane: str = "isotropic"
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    fov_mm: tuple[float | None, float | None, float | None] = (64.0, 160.0, None)
    shape: tuple[int, int, int] | None = None
    margin_mm: float = 15.0
    # anatomical variants
    p_l6: float = 0.05
    p_t13: float = 0.04
    p_t11: float = 0.04
    #: transitional lumbosacral anatomy: ``None`` (none), one of ``anatomy.TRANSITIONAL_KINDS`` or ``"random"``
    #: (one of them per case); replaces the L6/T11/T13 draws for the lumbar count. ``None`` draws nothing extra,
    #: so every other setting reproduces the same cases as before.
    transitional: str | None = None
    # deformity and pathology
    deformity: float = 0.0  # 0 = normal curves; 1 = strongly exaggerated
    p_scoliosis: float = 0.15
    p_fracture: float = 0.04  # per thoracic/lumbar vertebra
    p_disc_degen: float = 0.15  # per disc (higher in the lumbar spine)
    pose_deg: float = 4.0  # random whole-body rotation (sd, degrees)
    # image formation
    noise: tuple[float, float] = (0.005, 0.04)  # MR Rician sigma range (fraction of the brightest tissue)
    ct_noise_hu: tuple[float, float] = (5.0, 30.0)
    bias: float = 0.25  # sd of the log bias field
    blur_vox: tuple[float, float] = (0.0, 0.7)
    p_ghosting: float = 0.1
    p_wrap: float = 0.05
    p_gamma: float = 0.5
    p_coil: float = 0.6  # posterior surface-coil intensity fall-off (MR)
    soft_labels: bool = True
    #: cauda equina below the conus: ``"roots"`` (a few scattered roots) or ``"clumped"`` (many thin roots
    #: lying together dorsally, which on an axial slice resemble a small cord)
    cauda: str = "roots"

    def __post_init__(self) -> None:
        if self.plane not in PLANES:
            raise ValueError(f"plane must be one of {PLANES}, got {self.plane!r}")
        if len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0:
            raise ValueError(f"spacing_mm must be three positive numbers, got {self.spacing_mm!r}")
        if self.contrast not in CONTRAST_CHOICES:
            raise ValueError(f"unknown contrast {self.contrast!r}; use one of {', '.join(CONTRAST_CHOICES)}")
        if len(self.fov_mm) != 3 or any(v is not None and v <= 0 for v in self.fov_mm):
            raise ValueError(f"fov_mm must be three positive numbers or None, got {self.fov_mm!r}")
        parse_levels(self.levels)
        if self.cauda not in CAUDA_STYLES:
            raise ValueError(f"unknown cauda {self.cauda!r}; use one of {', '.join(CAUDA_STYLES)}")
        if self.transitional is not None and self.transitional not in (*TRANSITIONAL_KINDS, "random"):
            raise ValueError(
                f"unknown transitional {self.transitional!r}; use one of {', '.join(TRANSITIONAL_KINDS)}, "
                "'random' or None"
            )


@dataclass
class SynthCase:
    image: Volume
    semantic: Volume
    instance: Volume
    cord_soft: Volume
    canal_soft: Volume
    tissue: Volume
    meta: dict[str, Any] = field(default_factory=dict)


def _acquisition(config: SynthConfig, rng: np.random.Generator) -> tuple[str, tuple[float, float, float]]:
    """Plane and (in-plane, in-plane, thickness) spacing; ``plane="random"`` draws both."""
    if config.plane != "random":
        sp = config.spacing_mm
        return config.plane, (float(sp[0]), float(sp[1]), float(sp[2]))
    plane = str(rng.choice(["sagittal", "axial", "coronal"], p=[0.6, 0.25, 0.15]))
    inplane = float(rng.uniform(0.5, 1.2))
    return plane, (inplane, inplane, float(rng.uniform(2.0, 5.0)))


def _world_spacing(plane: str, spacing_mm: tuple[float, float, float]) -> tuple[float, float, float]:
    sp = tuple(float(v) for v in spacing_mm)
    if plane == "isotropic":
        return sp[0], sp[1], sp[2]
    thick = _THICK_AXIS[plane]
    inplane = [sp[0], sp[1]]
    out = []
    for ax in range(3):
        out.append(sp[2] if ax == thick else inplane.pop(0))
    return out[0], out[1], out[2]


def parse_levels(spec: str) -> tuple[str, str] | None:
    """First and last level name of a ``SynthConfig.levels`` spec (``None`` for ``"random"``).

    Raises ``ValueError`` with the accepted forms when the spec is not understood.
    """
    spec_l = spec.strip().lower()
    if spec_l == "random":
        return None
    if spec_l in _NAMED_RANGES:
        return _NAMED_RANGES[spec_l]
    parts = spec.strip().upper().replace("SACRUM", "S1").split("-")
    if len(parts) != 2 or not all(p.strip() in _LEVEL_NAMES for p in parts):
        raise ValueError(
            f"unknown levels {spec!r}; use a range of C1..C7, T1..T13, L1..L6, S1 such as 'L1-S1' or 'C2-T3', "
            f"or one of {', '.join(['random', *_NAMED_RANGES])}"
        )
    return parts[0].strip(), parts[1].strip()


def _level_range(spec: str, model: SpineModel, rng: np.random.Generator) -> tuple[int, int]:
    """Indices (into ``model.levels``) of the first and last requested level."""
    names = [lev.name for lev in model.levels]
    ends = parse_levels(spec)
    if ends is None:
        n = len(names)
        length = int(rng.integers(3, 13))
        first = int(rng.integers(0, n - length + 1))
        return first, first + length - 1

    def find(name: str) -> int:
        if name in names:
            return names.index(name)
        if name == "T12":  # a spine with 11 thoracic vertebrae
            return names.index("T11")
        return names.index("L5") if name == "L6" else names.index("L1")  # T13 absent

    i0, i1 = find(ends[0]), find(ends[1])
    return min(i0, i1), max(i0, i1)


def _span_end(model: SpineModel, i1: int) -> float:
    """Caudal end of a level span (S1 counts as its first 35 mm, not the whole sacrum)."""
    lev = model.levels[i1]
    return lev.s_top + 35.0 if i1 == len(model.levels) - 1 else lev.s_bot


def _orient(model: SpineModel, i0: int, i1: int, pose_deg: float, rng: np.random.Generator) -> SpineModel:
    """Rotate/shift the centreline so the requested span runs along -z, centred at the origin."""
    cl = model.centreline
    top = cl.point(model.levels[i0].s_top)
    bot = cl.point(_span_end(model, i1))
    rot = rotation_between(np.asarray(bot - top), np.array([0.0, 0.0, -1.0]))
    pose = small_rotation(*(rng.normal(0.0, pose_deg, 3) * np.array([1.0, 0.5, 0.7])))
    r = pose @ rot
    centre = 0.5 * (top + bot)
    model.centreline = transform(cl, r, -(r @ centre))
    return model


def _grids(
    config: SynthConfig,
    plane: str,
    spacing_mm: tuple[float, float, float],
    model: SpineModel,
    i0: int,
    i1: int,
    rng: np.random.Generator,
) -> tuple[Grid, Grid, int, int]:
    """Output grid, render grid (thick axis subdivided), thick axis (-1: none) and subdivision."""
    spacing = _world_spacing(plane, spacing_mm)
    cl = model.centreline
    span_pts = cl.to_world(np.linspace(model.levels[i0].s_top, _span_end(model, i1), 40), 0.0, 0.0)
    z_lo, z_hi = float(span_pts[:, 2].min()), float(span_pts[:, 2].max())
    defaults = {
        "sagittal": (64.0, 160.0),
        "isotropic": (64.0, 160.0),
        "axial": (150.0, 150.0),
        "coronal": (140.0, 110.0),
    }
    fov = list(config.fov_mm)
    fit = plane in ("sagittal", "isotropic") and config.shape is None  # a fixed shape keeps the old centre
    lr_lo, lr_hi = float(span_pts[:, 0].min()), float(span_pts[:, 0].max())
    fit_lr = fov[0] is None and fit
    if fov[0] is None:
        fov[0] = max(defaults[plane][0], (lr_hi - lr_lo) + LR_FIT_MARGIN_MM) if fit_lr else defaults[plane][0]
    ap_lo, ap_hi = float(span_pts[:, 1].min()), float(span_pts[:, 1].max())
    fit_ap = fov[1] is None and fit
    if fov[1] is None:
        fov[1] = max(defaults[plane][1], (ap_hi - ap_lo) + AP_FIT_MARGIN_MM) if fit_ap else defaults[plane][1]
    if fov[2] is None:
        fov[2] = (z_hi - z_lo) + 2 * config.margin_mm
    if config.shape is not None:
        fov = [config.shape[i] * spacing[i] for i in range(3)]
    shape = tuple(max(1, round(float(fov[i]) / spacing[i])) for i in range(3))  # type: ignore[arg-type]
    mid = cl.point(0.5 * (model.levels[i0].s_top + _span_end(model, i1)))
    centre = np.array(
        [
            (0.5 * (lr_lo + lr_hi) if fit_lr else float(mid[0])) + rng.normal(0.0, 2.0),
            (0.5 * (ap_lo + ap_hi) if fit_ap else float(mid[1])) + 8.0 + rng.normal(0.0, 6.0),
            0.5 * (z_lo + z_hi) + rng.normal(0.0, 3.0),
        ]
    )
    origin = centre - 0.5 * (np.array(shape) - 1) * np.array(spacing)
    out = Grid((shape[0], shape[1], shape[2]), spacing, (float(origin[0]), float(origin[1]), float(origin[2])))
    thick = -1
    n_sub = 1
    if plane in _THICK_AXIS:
        ax = _THICK_AXIS[plane]
        inplane = min(sp for i, sp in enumerate(spacing) if i != ax)
        n_sub = math.ceil(spacing[ax] / max(inplane, SUBSLICE_MM))
        n_sub += 1 - n_sub % 2  # odd: the middle sub-slice is the slice centre
        if n_sub > 1:
            thick = ax
    if thick < 0:
        return out, out, -1, 1
    r_shape = list(shape)
    r_shape[thick] *= n_sub
    r_sp = list(spacing)
    r_sp[thick] = spacing[thick] / n_sub
    r_origin = list(out.origin)
    r_origin[thick] = out.origin[thick] - 0.5 * spacing[thick] + 0.5 * r_sp[thick]
    render = Grid(
        (r_shape[0], r_shape[1], r_shape[2]), (r_sp[0], r_sp[1], r_sp[2]), (r_origin[0], r_origin[1], r_origin[2])
    )
    return out, render, thick, n_sub


def _reduce(arr: npt.NDArray[Any], axis: int, n_sub: int, how: str) -> npt.NDArray[Any]:
    if axis < 0 or n_sub == 1:
        return arr
    shp = list(arr.shape)
    shp[axis] //= n_sub
    shp.insert(axis + 1, n_sub)
    r = arr.reshape(shp)
    if how == "mean":
        return r.mean(axis=axis + 1, dtype=np.float32)
    return np.take(r, n_sub // 2, axis=axis + 1)


def _cortex(maps: LabelMaps) -> None:
    """A one-voxel cortical shell on every bone (marrow inside)."""
    bone = _BONE_SEMANTIC[maps.semantic]
    if not bone.any():
        return
    idx = [np.flatnonzero(bone.any(axis=tuple(j for j in range(3) if j != ax))) for ax in range(3)]
    blk = tuple(slice(max(int(i[0]) - 1, 0), int(i[-1]) + 2) for i in idx)
    b = bone[blk]
    inner = ndimage.binary_erosion(b, border_value=1)
    shell = b & ~inner
    tis = maps.tissue[blk]
    tis[shell & ((tis == Tissue.MARROW) | (tis == Tissue.MARROW_POST))] = Tissue.CORTICAL


def _synthesize(
    maps_tissue: npt.NDArray[np.uint8],
    contrast: str,
    config: SynthConfig,
    render: Grid,
    thick: int,
    n_sub: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float32]:
    means, stds = sample_intensity_table(contrast, rng)
    img = means[maps_tissue]
    tex = artifacts.texture(render.shape, rng)
    tex *= stds[maps_tissue]
    img += tex
    # point spread: a little in-plane blur (partial volume inside the slice)
    lo, hi = config.blur_vox
    sig = float(rng.uniform(lo, hi))
    sigmas = tuple(0.0 if ax == thick else sig * (1.0 if render.spacing[ax] <= 1.2 else 0.6) for ax in range(3))
    img = artifacts.blur(img, (sigmas[0], sigmas[1], sigmas[2]))
    img = _reduce(img, thick, n_sub, "mean")
    if contrast == "ct":
        nz = float(rng.uniform(*config.ct_noise_hu))
        img = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(nz)
        return np.clip(img, -1024.0, 3071.0).astype(np.float32)
    out_sp = tuple(render.spacing[i] * (n_sub if i == thick else 1) for i in range(3))
    img = np.clip(img, 0.0, None)
    img *= artifacts.bias_field(
        img.shape, (out_sp[0], out_sp[1], out_sp[2]), config.bias * float(rng.uniform(0.3, 1.0)), rng
    )
    if rng.random() < config.p_coil:
        img *= artifacts.coil_profile(img.shape, out_sp[1], rng)
    phase_axes = [ax for ax in range(3) if ax != thick] or [1]
    if rng.random() < config.p_ghosting:
        img = artifacts.ghosting(img, int(rng.choice(phase_axes)), rng)
    if rng.random() < config.p_wrap:
        img = artifacts.wrap_around(img, int(rng.choice(phase_axes)), rng)
    sigma_noise = float(rng.uniform(*config.noise)) * max(float(np.percentile(means, 95)), 0.05)
    img = artifacts.rician(img, sigma_noise, rng)
    if rng.random() < config.p_gamma:
        img = artifacts.gamma(img, rng)
    hi_v = float(np.percentile(img[::3, ::3, ::3], 99.5)) if img.size else 1.0
    if hi_v > 0:
        img /= np.float32(hi_v)
    return img.astype(np.float32, copy=False)


def generate_case(seed: int, config: SynthConfig | None = None) -> SynthCase:
    """One synthetic case, fully determined by ``seed`` and ``config`` (no disk access)."""
    cfg = config or SynthConfig()
    rng = np.random.default_rng(seed)
    model, i0, i1 = _oriented_model(cfg, rng)
    plane, acq_spacing = _acquisition(cfg, rng)
    out_grid, render, thick, n_sub = _grids(cfg, plane, acq_spacing, model, i0, i1, rng)
    contrast = resolve_contrast(cfg.contrast, rng)
    maps = _paint(model, render, cfg.soft_labels, rng)
    image = _synthesize(maps.tissue, contrast, cfg, render, thick, n_sub, rng)
    semantic = _reduce(maps.semantic, thick, n_sub, "centre")
    instance = _reduce(maps.instance, thick, n_sub, "centre")
    tissue = _reduce(maps.tissue, thick, n_sub, "centre")
    if maps.cord_soft is not None and maps.canal_soft is not None:
        cord_soft = _reduce(maps.cord_soft, thick, n_sub, "mean")
        canal_soft = _reduce(maps.canal_soft, thick, n_sub, "mean")
    else:
        cord_soft = (semantic == 60).astype(np.float32)
        canal_soft = np.isin(semantic, (60, 61)).astype(np.float32)
    meta = {
        "seed": int(seed),
        "contrast": contrast,
        "modality": "ct" if contrast == "ct" else "mr",
        "plane": plane,
        "spacing_mm": list(out_grid.spacing),
        "orientation": "RAS",
        "shape": list(out_grid.shape),
        "levels_requested": cfg.levels,
        "slice_subsamples": n_sub,
        **_anatomy_meta(model, semantic, instance),
    }
    aff = out_grid.affine
    src = f"synth-{seed}"
    return SynthCase(
        image=Volume(image, aff, src),
        semantic=Volume(semantic, aff, src),
        instance=Volume(instance, aff, src),
        cord_soft=Volume(cord_soft.astype(np.float32), aff, src),
        canal_soft=Volume(canal_soft.astype(np.float32), aff, src),
        tissue=Volume(tissue, aff, src),
        meta=meta,
    )


def _oriented_model(cfg: SynthConfig, rng: np.random.Generator) -> tuple[SpineModel, int, int]:
    """The spine geometry of a case (first random draws of ``generate_case``) and its level range."""
    model = _sample_spine(cfg, rng)
    i0, i1 = _level_range(cfg.levels, model, rng)
    return _orient(model, i0, i1, cfg.pose_deg, rng), i0, i1


def spine_model(seed: int, config: SynthConfig | None = None) -> SpineModel:
    """The exact spine geometry behind ``generate_case(seed, config)`` (same random draws), for ground truth
    that the label maps do not carry, such as vertebral levels along the cord."""
    return _oriented_model(config or SynthConfig(), np.random.default_rng(seed))[0]


def vertebral_level_at(model: SpineModel, s_mm: float) -> str:
    """Vertebral level at craniocaudal position ``s_mm`` by the SCT convention: a level runs from the middle of
    the disc above its body to the middle of the disc below ("" outside the spine)."""
    disc_above = 0.0
    for lev in model.levels:
        if lev.s_top - disc_above / 2 <= s_mm < lev.s_bot + lev.disc_h / 2:
            return str(lev.name)
        disc_above = lev.disc_h
    return ""


def _sample_spine(cfg: SynthConfig, rng: np.random.Generator) -> SpineModel:
    """Draw the anatomical variant (T11/T13, L6) and every geometric parameter of the spine."""
    n_thor = 12
    u = rng.random()
    if u < cfg.p_t13:
        n_thor = 13
    elif u < cfg.p_t13 + cfg.p_t11:
        n_thor = 11
    n_lum = 6 if rng.random() < cfg.p_l6 else 5
    kind = cfg.transitional
    if kind == "random":
        kind = str(rng.choice(TRANSITIONAL_KINDS))
    if kind is not None:
        n_lum = transitional_lumbar_count(kind)
    model = build_spine_model(
        rng,
        n_thoracic=n_thor,
        n_lumbar=n_lum,
        deformity=cfg.deformity,
        p_scoliosis=cfg.p_scoliosis,
        p_fracture=cfg.p_fracture,
        p_disc_degen=cfg.p_disc_degen,
    )
    if kind is not None:
        shift = make_transitional(model.levels, kind, rng)
        model.canal_end_s -= shift  # the thecal sac ends at the same place in the (moved) sacrum
        model.sacrum.extra["transitional"] = float(TRANSITIONAL_KINDS.index(kind))
    if cfg.cauda == "clumped":  # drawn last, so the default style keeps every other draw of a seed
        clump_roots(model, rng)
    return model


def _paint(model: SpineModel, render: Grid, soft_labels: bool, rng: np.random.Generator) -> LabelMaps:
    """Labels and tissue classes of the whole scene on the render grid."""
    s, a, l = canonical_fields(render, model.centreline)  # noqa: E741
    maps = LabelMaps(
        semantic=np.zeros(render.shape, dtype=np.uint8),
        instance=np.zeros(render.shape, dtype=np.int16),
        tissue=np.zeros(render.shape, dtype=np.uint8),
        s=s,
        a=a,
        l=l,
        cord_soft=np.zeros(render.shape, dtype=np.float32) if soft_labels else None,
        canal_soft=np.zeros(render.shape, dtype=np.float32) if soft_labels else None,
    )
    blobs = sample_blobs(model, render, rng)
    paint_surroundings(model, render, maps, blobs, rng)
    paint_spine(model, render, maps)
    paint_vessels(model, render, maps)
    paint_ribs(model, render, maps)
    _cortex(maps)
    return maps


def _anatomy_meta(
    model: SpineModel, semantic: npt.NDArray[np.uint8], instance: npt.NDArray[np.int16]
) -> dict[str, Any]:
    """What the case shows: levels present (cranio-caudal), variants, pathology, curvature, cord CSA."""
    ids = [int(v) for v in np.unique(instance) if 0 < v < 100]
    order = [lev.vid for lev in model.levels]
    ids.sort(key=order.index)
    with_corpus = [v for v in ids if v == 26 or bool(np.any((instance == v) & (semantic == 49)))]
    return {
        "levels_present": [VERTEBRA_NAMES[v] for v in ids],
        "vertebra_ids_present": ids,
        "spine_levels": [lev.name for lev in model.levels],
        "n_thoracic": sum(lev.region == "T" for lev in model.levels),
        "n_lumbar": sum(lev.region == "L" for lev in model.levels),
        "transitional": _transitional_kind(model),
        "fractures": {
            lev.name: {"anterior": lev.height_ant, "middle": lev.height_mid}
            for lev in model.levels
            if lev.height_ant < 1 or lev.height_mid < 1
        },
        "degenerated_discs": {lev.name: lev.disc_degen for lev in model.levels if lev.disc_degen > 0},
        "curvature_deg": dict(model.angles_deg),
        "conus_level": _level_at(model, model.conus_s),
        "levels_with_corpus": [VERTEBRA_NAMES[v] for v in with_corpus],
        "cord_csa_mm2": _cord_csa(model, ids),
    }


def _transitional_kind(model: SpineModel) -> str | None:
    code = model.sacrum.extra.get("transitional")
    return None if code is None else TRANSITIONAL_KINDS[int(code)]


def _cord_csa(model: SpineModel, ids: list[int]) -> dict[str, float]:
    """True cord cross-section (mm2, perpendicular to the cord) at the mid-body of each level present."""
    out: dict[str, float] = {}
    for lev in model.vertebrae:
        if lev.vid not in ids or not (model.fm_s + 2.0 < lev.s_mid < model.conus_s):
            continue
        ra, rl = model.cord_radii(np.array([lev.s_mid]))
        out[lev.name] = round(math.pi * float(ra[0]) * float(rl[0]), 2)
    return out


def _level_at(model: SpineModel, s: float) -> str:
    for lev in model.levels:
        if lev.s_top <= s < lev.s_bot:
            return lev.name
        if lev.s_bot <= s < lev.s_bot + lev.disc_h:
            return f"{lev.name}-disc"
    return "?"
