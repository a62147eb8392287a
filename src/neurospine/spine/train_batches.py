"""Training batches of the spine network: sampling 2.5D patches, the synthetic pool, the sample mix, the
partial-label loss and the training budget. Shared by the in-process loop (``spine.training``) and the
worker/device loop (``spine.train_loop``). Training only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.spine import classes as C
from neurospine.spine import data as D

log = logging.getLogger(__name__)


@dataclass
class Sample:
    image: npt.NDArray[np.float32]  # (3, P, P)
    target: npt.NDArray[np.uint8]  # (P, P) group index or IGNORE
    kind: str


# ---- sampling -------------------------------------------------------------------------------------


def _slab(vol: npt.NDArray[np.generic], r: int, thick: int) -> npt.NDArray[np.float32]:
    """Mean of ``thick`` slices around r of a slice-major (R, P, I) volume (simulates thick slices)."""
    n = vol.shape[0]
    lo, hi = max(0, r - thick // 2), min(n, r - thick // 2 + thick)
    lo = min(lo, n - 1)
    hi = max(hi, lo + 1)
    if hi - lo == 1:
        return np.asarray(vol[lo], dtype=np.float32)
    return np.asarray(vol[lo:hi], dtype=np.float32).mean(axis=0)


_FG_CACHE: dict[tuple[str, tuple[int, ...]], npt.NDArray[np.intp]] = {}


def _fg_slices(case: D.TrainCase) -> npt.NDArray[np.intp]:
    key = (case.name, case.target.shape)  # names are unique (synthetic: by seed); ids of freed arrays are reused
    if key not in _FG_CACHE:
        t = case.target
        fg = (t == 0) if case.kind != "full" else ((t > 0) & (t != D.IGNORE))
        _FG_CACHE[key] = np.nonzero(fg.any(axis=(1, 2)))[0]
    return _FG_CACHE[key]


def sample_patch(case: D.TrainCase, rng: np.random.Generator, patch: int) -> Sample:
    """A random 2.5D training patch with geometric jitter (rotation, scale) from one case."""
    img = case.image
    tgt = case.target
    n_r = img.shape[0]
    sp_r = case.spacing_mm[2]
    fg_r = _fg_slices(case)
    if fg_r.size and rng.random() < 0.9:
        r = int(np.clip(rng.integers(fg_r.min() - 3, fg_r.max() + 4), 0, n_r - 1))
    else:
        r = int(rng.integers(0, n_r))
    neighbour_mm = rng.uniform(1.0, 5.0)
    off = max(1, round(neighbour_mm / sp_r))
    thick = int(rng.integers(1, max(2, round(4.0 / sp_r)) + 1))
    chans = [_slab(img, min(max(rr, 0), n_r - 1), thick) for rr in (r - off, r, r + off)]
    if rng.random() < 0.5:
        chans = chans[::-1]
    t2d = tgt[r]
    fg = np.argwhere(t2d == 0) if case.kind != "full" else np.argwhere((t2d > 0) & (t2d != D.IGNORE))
    if fg.size and rng.random() < 0.8:
        centre = fg[rng.integers(len(fg))].astype(np.float64) + rng.normal(0, 15, 2)
    else:
        centre = np.array([rng.uniform(0, t2d.shape[0]), rng.uniform(0, t2d.shape[1])])
    angle = math.radians(rng.uniform(-15, 15))
    scale = float(np.exp(rng.uniform(-0.2, 0.2)))  # output voxel = scale source voxels
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) * scale
    offset = centre - rot @ np.array([patch / 2.0, patch / 2.0])
    out_img = np.stack(
        [
            ndimage.affine_transform(
                ch, rot, offset=offset, output_shape=(patch, patch), order=1, mode="constant", cval=0.0
            )
            for ch in chans
        ]
    ).astype(np.float32)
    out_tgt = ndimage.affine_transform(
        t2d, rot, offset=offset, output_shape=(patch, patch), order=0, mode="constant", cval=D.IGNORE
    )
    if case.image.dtype == np.uint8:
        out_img /= 255.0
    return Sample(out_img, out_tgt.astype(np.uint8), case.kind)


def augment_intensity(
    x: npt.NDArray[np.float32], rng: np.random.Generator, kind: str, p_keep: float | None = None
) -> npt.NDArray[np.float32]:
    """Random contrast, blur. ``p_keep``: chance of keeping the image's own contrast (default: 0.5 for "full"
    cases, whose synthetic images already have random contrast, 0.25 for real partial-label cases)."""
    from neurospine.nn import augment as A

    if p_keep is None:
        p_keep = 0.5 if kind == "full" else 0.25
    out = A.contrast_randomize(x, rng, p_keep=p_keep, p_invert=0.25)
    if rng.random() < 0.3:
        out = A.blur(out, rng, 1.0)
    return out.astype(np.float32)


# ---- synthetic data -------------------------------------------------------------------------------


def synth_available() -> bool:
    try:
        import neurospine.synth as S

        return hasattr(S, "generate_case")
    except ImportError:
        return False


SYNTH_LEVELS = ("whole", "C2-T6", "T3-L2", "T8-S1", "L1-S1", "T11-S1", "C3-T4", "random", "lumbar", "cervical")


def boundary_band(target: npt.NDArray[np.uint8], classes: Sequence[int], width: int) -> npt.NDArray[np.bool_]:
    """In-slice band of ``width`` voxels either side of the outline of ``classes`` (slice-major target).

    Synthetic outlines follow the engine's drawing convention (a cortical shell inside the label, discs at
    published heights), which differs from the manual outlines of the real sets by about a voxel. The
    band is ignored in synthetic targets so the boundary position is learned from real labels only.
    """
    mask = np.isin(target, classes)
    if width <= 0 or not mask.any():
        return np.zeros(target.shape, dtype=bool)
    st = np.zeros((1, 3, 3), dtype=bool)
    st[0] = ndimage.generate_binary_structure(2, 1)
    outer = ndimage.binary_dilation(mask, st, iterations=width)
    inner = ndimage.binary_erosion(mask, st, iterations=width)
    return np.asarray(outer & ~inner, dtype=bool)


def synth_case(
    seed: int, rng: np.random.Generator, boundary_ignore: int = 0, regions: Sequence[str] = SYNTH_LEVELS
) -> D.TrainCase:
    """One synthetic whole- or part-spine volume on the model grid with full labels.

    ``boundary_ignore`` > 0 marks a band that wide around vertebral bodies and discs as unknown; the
    field of view is drawn uniformly from ``regions`` (names understood by ``SynthConfig.levels``)."""
    from neurospine.io import Volume, reorient
    from neurospine.io.resample import grid_for_spacing, resample_to_grid
    from neurospine.spine.preprocess import CANONICAL, normalise_intensity
    from neurospine.synth import SynthConfig, generate_case

    levels = regions[int(rng.integers(len(regions)))]
    lr_mm = float(rng.choice([1.0, 2.0, 3.0, 4.0]))
    contrast = "random" if rng.random() < 0.6 else "any"
    cfg = SynthConfig(
        levels=levels, contrast=contrast, spacing_mm=(1.0, 1.0, lr_mm), plane="sagittal", soft_labels=False
    )
    case = generate_case(seed, cfg)
    img_pir, _ = reorient(case.image, CANONICAL)
    sem_pir, _ = reorient(case.semantic, CANONICAL)
    sp = img_pir.spacing_mm
    target_sp = (1.0, 1.0, float(np.clip(sp[2], 1.0, 6.0)))
    if not np.allclose(sp, target_sp, atol=1e-3):
        shape, aff = grid_for_spacing(img_pir, target_sp)
        img = resample_to_grid(img_pir.data, img_pir.affine, shape, aff, order=1)
        sem = resample_to_grid(sem_pir.data, sem_pir.affine, shape, aff, order=0)
        img_pir, sem_pir = Volume(img, aff), Volume(sem, aff)
    image = normalise_intensity(img_pir.data)
    target = D.slice_major(C.spineps_to_net(np.asarray(sem_pir.data)))
    if boundary_ignore > 0:
        band = boundary_band(target, (C.CORPUS, C.ENDPLATE), boundary_ignore)
        band |= boundary_band(target, (C.DISC,), boundary_ignore)
        target = np.where(band, np.uint8(D.IGNORE), target).astype(np.uint8)
    return D.TrainCase(
        f"synth-{seed}",
        "full",
        D.slice_major((image * 255).astype(np.uint8)),
        target,
        img_pir.spacing_mm,
    )


def _try_synth(
    seed: int, rng: np.random.Generator, boundary_ignore: int = 0, regions: Sequence[str] = SYNTH_LEVELS
) -> D.TrainCase | None:
    try:
        return synth_case(seed, rng, boundary_ignore, regions)
    except Exception as e:  # the engine is young: skip a failing seed, keep training
        log.warning("synthetic case %d failed (%s); skipped", seed, e)
        return None


@dataclass
class SynthPool:
    """Synthetic training volumes kept in memory; seeds are consumed in order, one volume replaced at a time."""

    next_seed: int
    boundary_ignore: int = 0
    regions: tuple[str, ...] = SYNTH_LEVELS
    cases: list[D.TrainCase] = field(default_factory=list)

    def _draw(self, rng: np.random.Generator) -> D.TrainCase | None:
        case = _try_synth(self.next_seed, rng, self.boundary_ignore, self.regions)
        self.next_seed += 1
        return case

    def fill(self, size: int, rng: np.random.Generator) -> None:
        while len(self.cases) < size:
            case = self._draw(rng)
            if case is not None:
                self.cases.append(case)

    def refresh(self, rng: np.random.Generator) -> None:
        """Replace one random volume by a fresh one (no change when the engine fails on that seed)."""
        fresh = self._draw(rng)
        if fresh is not None:
            self.cases[int(rng.integers(len(self.cases)))] = fresh

    def pick(self, rng: np.random.Generator) -> D.TrainCase:
        return self.cases[int(rng.integers(len(self.cases)))]


# ---- batches --------------------------------------------------------------------------------------

REAL_WEIGHTS: dict[str, float] = {"vb3": 0.4, "vb2": 0.4, "ivd": 0.2}


#: default chance that a teacher image (real MR, :mod:`neurospine.spine.pseudo`) keeps its own contrast
TEACHER_KEEP_CONTRAST = 0.5


@dataclass
class SampleMix:
    """Where each training sample comes from: painted real label maps, real MR with teacher targets, the synthetic
    pool, or real cases (in that order of drawing, each at its share of what is left)."""

    real: list[D.TrainCase]
    by_kind: dict[str, list[D.TrainCase]]
    pool: SynthPool
    synth_fraction: float
    paint: Any = None  # train_sources.PaintPool when real label maps are painted
    paint_fraction: float = 0.0
    teacher: list[D.TrainCase] = field(default_factory=list)  # real MR with teacher targets (spine.pseudo)
    teacher_fraction: float = 0.0
    teacher_keep_contrast: float = TEACHER_KEEP_CONTRAST

    def pick(self, rng: np.random.Generator) -> D.TrainCase:
        if self.paint is not None and self.paint.cases and rng.random() < self.paint_fraction:
            return self.paint.pick(rng)
        if self.teacher and rng.random() < self.teacher_fraction:
            return _by_set(self.teacher, rng)
        if self.pool.cases and rng.random() < self.synth_fraction:
            return self.pool.pick(rng)
        kinds = list(REAL_WEIGHTS)
        kind = kinds[int(rng.choice(len(kinds), p=np.array(list(REAL_WEIGHTS.values())) / sum(REAL_WEIGHTS.values())))]
        group = self.by_kind[kind] or self.real
        return group[int(rng.integers(len(group)))]

    def after_step(self, step: int, rng: np.random.Generator, refresh_every: int) -> None:
        """Replace one synthetic (and one painted) volume every ``refresh_every`` steps."""
        if self.pool.cases and step % refresh_every == 0:
            self.pool.refresh(rng)
        if self.paint is not None and self.paint.cases and step % (refresh_every * 2) == 0:
            self.paint.refresh(rng)


#: how teacher images are drawn: by set, so that one protocol (VB3 has 20 of the 28 images) does not dominate
TEACHER_WEIGHTS: dict[str, float] = {"vb3": 0.35, "vb2": 0.35, "ivd": 0.15, "other": 0.15}


def _by_set(cases: list[D.TrainCase], rng: np.random.Generator) -> D.TrainCase:
    """One case, its set drawn by :data:`TEACHER_WEIGHTS` among the sets present (name prefix; "other" for the
    rest), then uniformly within the set."""
    groups: dict[str, list[D.TrainCase]] = {}
    for c in cases:
        key = c.name.split("-")[0]
        groups.setdefault(key if key in TEACHER_WEIGHTS else "other", []).append(c)
    keys = sorted(groups)
    w = np.array([TEACHER_WEIGHTS[k] for k in keys])
    group = groups[keys[int(rng.choice(len(keys), p=w / w.sum()))]]
    return group[int(rng.integers(len(group)))]


def draw_batch(
    rng: np.random.Generator, mix: SampleMix, batch: int, patch: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Images (B, 3, P, P), targets (B, P, P), group membership (B, G, C) and Dice masks (B, G) of one batch."""
    samples = []
    for _ in range(batch):
        case = mix.pick(rng)
        s = sample_patch(case, rng, patch)
        p_keep = mix.teacher_keep_contrast if case.name.endswith(D.TEACHER_SUFFIX) else None
        s.image = augment_intensity(s.image, rng, s.kind, p_keep)
        samples.append(s)
    return (
        np.stack([s.image for s in samples]),
        np.stack([s.target for s in samples]).astype(np.int64),
        np.stack([membership(s.kind) for s in samples]),
        np.stack([dice_mask(s.kind) for s in samples]),
    )


# ---- loss -----------------------------------------------------------------------------------------


def membership(kind: str) -> npt.NDArray[np.float32]:
    m = np.zeros((C.N_CLASSES, C.N_CLASSES), dtype=np.float32)
    for g, members in enumerate(D.GROUPS[kind]):
        m[g, list(members)] = 1.0
    return m


def dice_mask(kind: str) -> npt.NDArray[np.float32]:
    d = np.zeros(C.N_CLASSES, dtype=np.float32)
    d[list(D.DICE_GROUPS[kind])] = 1.0
    return d


def group_loss(logits: Any, target: Any, member: Any, dmask: Any) -> Any:
    """Marginal cross-entropy + soft Dice over class groups.

    logits (B, C, H, W); target (B, H, W) long with 255 = ignore; member (B, G, C); dmask (B, G).
    """
    import torch

    prob = torch.softmax(logits, dim=1)
    q = torch.einsum("bchw,bgc->bghw", prob, member).clamp_min(1e-6)
    valid = target != D.IGNORE
    t = torch.where(valid, target, torch.zeros_like(target))
    picked = torch.gather(q, 1, t.unsqueeze(1)).squeeze(1)
    ce = -(torch.log(picked) * valid).sum() / valid.sum().clamp_min(1)
    onehot = torch.nn.functional.one_hot(t, q.shape[1]).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    qv = q * valid.unsqueeze(1)
    inter = (qv * onehot).sum(dim=(2, 3))
    denom = qv.sum(dim=(2, 3)) + onehot.sum(dim=(2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    dice_loss = ((1 - dice) * dmask).sum() / dmask.sum().clamp_min(1)
    return ce + dice_loss
