"""``neurospine train spine``: train the phase-1 semantic model (2.5D sagittal U-Net) and export ONNX.

Data: the synthetic engine (all 14 structures, random contrast) plus real partial-label cases
(``spine.data``: VB3/VB2 bodies, IVD discs; held-out cases excluded; VB1 never used). The loss is a
marginal (partial-label) cross-entropy + Dice over *groups* of classes: a real case only says "body"
versus "anything else" (or "disc" versus "anything else"), so unlabelled structures are never taught as
background. Training is budgeted in time (``--minutes``) or in steps (``--steps``), checkpointed every few
minutes and resumable. Runs with 1 thread by default (shared machine). Imports torch; runtime code never
imports this module.

The shipped model (0.3.0) is two stages: stage 1 from scratch with the defaults (the former 0.2.0, 85
minutes at 2 threads), then stage 2 warm-started from it (``--init``) with ``--lr 0.001 --synth-fraction 0.35
--synth-boundary-ignore 1 --no-body-below-l5`` for 60 minutes at 1 thread; the exact command is in the model
card (``train_command``). After every export the outline calibration (:mod:`neurospine.spine.calibration`)
fits the body/disc logit offsets on the real training cases and writes them into the card
(``--no-calibrate`` skips it, ``--calibrate-only`` redoes it for a run folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.spine import classes as C
from neurospine.spine import data as D

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("runs") / "spine"
MODEL_NAME = "spine_semantic"
MODEL_VERSION = "0.4.0"
UNET_KW: dict[str, Any] = {"base": 16, "depth": 5, "dims": 2}


TRAINING_DATA: list[dict[str, str]] = [
    {
        "name": "neurospine.synth (synthetic engine, this repository)",
        "licence": "Apache-2.0 (project code)",
        "use": "all 14 structures, random per-tissue contrast; about half of the samples",
    },
    {
        "name": "fcs_vb3_myosegmentum_lumbar (MyoSegmenTUM spine, Burian et al. 2019, via fastcleverseg)",
        "licence": "data: open access, licence not verified; repo GPL-3.0",
        "use": "vertebral bodies L1-L5 (partial labels); held out: " + ", ".join(D.VB3_TEST),
    },
    {
        "name": "fcs_vb2_chu_lumbar_t2 (Chu et al. 2015, via fastcleverseg)",
        "licence": "data: Zenodo 22304, licence not verified; repo GPL-3.0",
        "use": "vertebral bodies T11-L5 (partial labels); held out: " + ", ".join(D.VB2_TEST),
    },
    {
        "name": "fcs_ivd_fmrp_lumbar_t2 (Menezes-Reis et al. 2016, via fastcleverseg)",
        "licence": "data: no licence stated, citation requested; repo GPL-3.0",
        "use": "lumbar discs (partial labels); held out: " + ", ".join(D.IVD_TEST),
    },
    {
        "name": "fcs_vb1_zukic_lumbar_mri (Zukic et al. 2014)",
        "licence": "unclear",
        "use": "NOT used for training: evaluation only (other sites, contrasts, pathology)",
    },
]


#: how both spine networks read their input (recorded in their model cards)
MODEL_INPUTS: dict[str, Any] = {
    "orientation": "PIR",
    "inplane_mm": 1.0,
    "channels": "slices r-d, r, r+d (d ~ 3 mm)",
    "intensity": "percentile 0.5-99.5 -> [0, 1]",
    "pad_multiple": 16,
}


def cosine_lr(base: float, elapsed: float, budget: float) -> float:
    """Cosine decay over the budget (seconds or steps, the same unit for both), down to 2 % of ``base``."""
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget))))


def budget_used(step: int, elapsed_s: float, args: argparse.Namespace) -> float:
    """Share of the training budget used: steps of ``--steps`` when given, else seconds of ``--minutes``."""
    if args.steps is not None:
        return step / args.steps
    return elapsed_s / (args.minutes * 60.0)


def budget_spent(step: int, elapsed_s: float, args: argparse.Namespace) -> bool:
    """Whether training should stop (the budget is used up)."""
    return budget_used(step, elapsed_s, args) >= 1.0


def optimiser_step(model: Any, opt: Any, loss: Any) -> float:
    """Backward pass, gradient clipping at norm 5, one optimiser step; returns the loss value."""
    import torch

    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return float(loss.item())


def log_progress(
    step: int, losses: Sequence[float], lr: float, elapsed_s: float, minutes: float, steps: int | None = None
) -> None:
    """Every 50 steps: mean loss of the last 50, learning rate, budget used (steps, or minutes)."""
    if step % 50 == 0:
        mean_loss = float(np.mean(losses[-50:]))
        if steps is not None:
            log.info("step %d/%d  loss %.4f  lr %.2e  %.1f min", step, steps, mean_loss, lr, elapsed_s / 60)
        else:
            log.info("step %d  loss %.4f  lr %.2e  %.1f/%.0f min", step, mean_loss, lr, elapsed_s / 60, minutes)


def recipe_flags(args: argparse.Namespace, defaults: argparse.Namespace, flags: Sequence[tuple[str, str]]) -> list[str]:
    """``--flag value`` for every recipe option that differs from its default."""

    def text(value: Any) -> str:
        return f"{value:g}" if isinstance(value, int | float) else str(value)

    return [f"{flag} {text(getattr(args, a))}" for flag, a in flags if getattr(args, a) != getattr(defaults, a)]


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


def augment_intensity(x: npt.NDArray[np.float32], rng: np.random.Generator, kind: str) -> npt.NDArray[np.float32]:
    from neurospine.nn import augment as A

    # synthetic images already have random contrast; real ones get the full randomisation
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


@dataclass
class SampleMix:
    """Where each training sample comes from: painted real label maps, the synthetic pool, or real cases."""

    real: list[D.TrainCase]
    by_kind: dict[str, list[D.TrainCase]]
    pool: SynthPool
    synth_fraction: float
    paint: Any = None  # train_sources.PaintPool when real label maps are painted
    paint_fraction: float = 0.0

    def pick(self, rng: np.random.Generator) -> D.TrainCase:
        if self.paint is not None and self.paint.cases and rng.random() < self.paint_fraction:
            return self.paint.pick(rng)
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


def draw_batch(
    rng: np.random.Generator, mix: SampleMix, batch: int, patch: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Images (B, 3, P, P), targets (B, P, P), group membership (B, G, C) and Dice masks (B, G) of one batch."""
    samples = []
    for _ in range(batch):
        s = sample_patch(mix.pick(rng), rng, patch)
        s.image = augment_intensity(s.image, rng, s.kind)
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


# ---- validation -----------------------------------------------------------------------------------


def _torch_predict(
    model: Any, image: npt.NDArray[np.float32], lr_spacing: float, r_range: tuple[int, int]
) -> npt.NDArray[np.uint8]:
    import torch

    from neurospine.spine.semantic import PAD_MULTIPLE, _pad, neighbour_offset, stack_slices

    off = neighbour_offset(lr_spacing)
    out = np.zeros(image.shape, dtype=np.uint8)
    with torch.no_grad():
        for r in range(*r_range):
            x, (h, w) = _pad(stack_slices(image, r, off)[None], PAD_MULTIPLE)
            logits = model(torch.from_numpy(x)).numpy()
            out[:, :, r] = np.argmax(logits[0, :, :h, :w], axis=0)
    return out


def validate(model: Any, cases: list[D.EvalCase]) -> dict[str, float]:
    """Binary body (corpus+endplate) or disc Dice per monitoring case (model grid = PIR 1 mm)."""
    from neurospine.io import reorient
    from neurospine.spine.preprocess import to_model_grid

    model.eval()
    res: dict[str, float] = {}
    for case in cases:
        grid = to_model_grid(case.image, inplane_mm=1.0)
        lab, _ = reorient(case.labels, "PIR")
        ref = np.asarray(lab.data) > 0
        rs = np.nonzero(ref.any(axis=(0, 1)))[0]
        r_range = (max(0, int(rs.min()) - 2), min(ref.shape[2], int(rs.max()) + 3))
        pred = _torch_predict(model, grid.image, grid.spacing_mm[2], r_range)
        if case.dataset == D.IVD_DIR:
            p = pred == C.DISC
        else:
            p = np.isin(pred, (C.CORPUS, C.ENDPLATE))
        sl = (slice(None), slice(None), slice(*r_range))
        inter = float((p[sl] & ref[sl]).sum())
        res[case.name] = round(2 * inter / max(1.0, float(p[sl].sum() + ref[sl].sum())), 4)
    model.train()
    return res


# ---- main loop ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="neurospine train spine", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folder (checkpoint, log, exported model)")
    p.add_argument("--data", type=Path, default=D.shared_root(), help="shared data folder (fcs_* sets)")
    p.add_argument("--minutes", type=float, default=50.0, help="training wall-time budget (resumed runs continue)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="training budget in optimiser steps instead of --minutes (the learning-rate schedule follows the step "
        "count, so the same command trains the same amount on an idle or a loaded machine)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    p.add_argument("--batch", type=int, default=6, help="patches per optimiser step")
    p.add_argument("--patch", type=int, default=128, help="patch side in voxels (1 mm in-plane)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the cosine schedule (AdamW)")
    p.add_argument("--synth-fraction", type=float, default=0.5, help="share of samples from the synthetic engine")
    p.add_argument(
        "--synth-boundary-ignore",
        type=int,
        default=0,
        help="voxels either side of synthetic body/disc outlines left unlabelled (outline convention from real data)",
    )
    p.add_argument(
        "--synth-regions",
        default=",".join(SYNTH_LEVELS),
        help="comma-separated fields of view the synthetic volumes are drawn from (uniformly; repeat to weight)",
    )
    p.add_argument(
        "--no-body-below-l5",
        action="store_true",
        help="teach 'no vertebral body' below the lowest labelled body (L5) of the real body sets (S1 is sacrum)",
    )
    p.add_argument("--init", type=Path, default=None, help="warm start from this ONNX model (same architecture)")
    p.add_argument(
        "--version",
        default=MODEL_VERSION,
        help="version written into the exported card (name a candidate run so it cannot be mistaken for a shipped "
        "model; the default is the version the documented commands reproduce)",
    )
    p.add_argument(
        "--labelmap-fraction",
        type=float,
        default=0.0,
        help="share of samples painted SynthSeg-style on real label maps (spine.train_sources; 0 = off, as 0.3.0)",
    )
    p.add_argument("--labelmap-pool", type=int, default=6, help="painted label-map volumes kept in memory")
    p.add_argument("--unet-base", type=int, default=UNET_KW["base"], help="channels of the first U-Net level")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (a GPU only makes training faster)")
    p.add_argument(
        "--workers", type=int, default=0, help="data-loading processes (0 = draw batches in the training process)"
    )
    p.add_argument(
        "--pack", type=Path, default=None, help="read training arrays from this pack (--write-pack) instead of --data"
    )
    p.add_argument("--write-pack", type=Path, default=None, help="write the training arrays to this .npz and stop")
    p.add_argument("--synth-pool", type=int, default=16, help="synthetic volumes kept in memory")
    p.add_argument("--synth-refresh", type=int, default=30, help="replace one synthetic volume every N steps")
    p.add_argument("--validate-every", type=float, default=15.0, help="minutes between monitoring validations")
    p.add_argument("--seed", type=int, default=0, help="random seed of sampling and synthetic volumes")
    p.add_argument("--export-only", action="store_true", help="export the checkpoint to ONNX and stop")
    p.add_argument(
        "--calibrate-only",
        action="store_true",
        help="fit the outline logit offsets of the run's exported model on the real training cases and stop",
    )
    p.add_argument("--no-calibrate", action="store_true", help="skip the outline calibration after export")
    p.add_argument(
        "--body-refiner",
        default=None,
        metavar="MODEL",
        help="with --calibrate-only: fuse this body-refiner model (e.g. spine_body, from `neurospine train "
        "spine-body`; found like any model, NEUROSPINE_MODELS_DIR adds a folder) into the run's model, recording "
        "it in the card (inputs.body_refiner, version --version) before the calibration",
    )
    return p


def unet_kw(args: argparse.Namespace) -> dict[str, Any]:
    """Network shape: the shipped 0.3.0 shape unless ``--unet-base`` widens it."""
    return {**UNET_KW, "base": int(getattr(args, "unet_base", UNET_KW["base"]))}


def write_pack_only(args: argparse.Namespace) -> int:
    """``--write-pack``: save the real training cases and label-map sources for a machine without shared data."""
    from neurospine.spine.train_sources import load_labelmap_sources, write_pack

    real = D.train_cases(args.data, nothing_below_l5=args.no_body_below_l5)
    sources = load_labelmap_sources(args.data)
    path = write_pack(args.write_pack, real, sources)
    log.info(
        "packed %d real cases and %d label maps into %s (%.1f MB)",
        len(real),
        len(sources),
        path,
        path.stat().st_size / 1e6,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    from neurospine.models.registry import sha256_of
    from neurospine.nn.checkpoint import load_checkpoint, load_weights_from_onnx, save_checkpoint
    from neurospine.nn.unet import UNet, count_parameters

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be a positive number of optimiser steps")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.calibrate_only:
        _calibrate(args)
        return 0
    if args.write_pack is not None:
        return write_pack_only(args)
    torch.set_num_threads(max(1, args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "checkpoint.pt"
    model = UNet(3, C.N_CLASSES, **unet_kw(args))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, extra = load_checkpoint(ckpt, model, opt)
    if step == 0 and args.init is not None:
        n = load_weights_from_onnx(args.init, model)
        log.info("warm start: %d tensors from %s", n, args.init)
        extra["init"] = f"{args.init.name} (sha256 {sha256_of(args.init)[:12]})"
    elapsed = float(extra.get("elapsed_s", 0.0))
    cpu_s = float(extra.get("cpu_s", 0.0))
    cpu_mark = time.process_time()
    history: list[dict[str, Any]] = list(extra.get("history", []))
    init_note = extra.get("init")
    log.info("model %d parameters; resume at step %d (%.1f min done)", count_parameters(model), step, elapsed / 60)
    if args.export_only:
        export(model, args.out, step, elapsed, history, args, cpu_s, init_note)
        if not args.no_calibrate:
            _calibrate(args)
        return 0

    rng = np.random.default_rng(args.seed + step)
    paint_sources = None
    if args.pack is not None:
        from neurospine.spine.train_sources import read_pack

        real, paint_sources = read_pack(args.pack)
    else:
        real = D.train_cases(args.data, nothing_below_l5=args.no_body_below_l5)
    by_kind = {
        "vb3": [c for c in real if c.name.startswith("vb3")],
        "vb2": [c for c in real if c.name.startswith("vb2")],
        "ivd": [c for c in real if c.name.startswith("ivd")],
    }
    monitor: list[D.EvalCase] = []
    if args.pack is None:
        monitor = [c for c in D.eval_cases(args.data, "vb2")[:1]]
        monitor += [c for c in D.eval_cases(args.data, "vb1") if c.name == "vb1-06"]
    use_synth = synth_available() and args.synth_fraction > 0
    regions = tuple(r.strip() for r in str(args.synth_regions).split(",") if r.strip())
    pool = SynthPool(100_000 + step * 7 + args.seed, args.synth_boundary_ignore, regions)
    fast = args.device != "cpu" or args.workers > 0  # workers fill their own pools
    if use_synth and not fast:
        t0 = time.time()
        pool.fill(args.synth_pool, rng)
        log.info("synthetic pool of %d volumes in %.1f s", len(pool.cases), time.time() - t0)
    elif args.synth_fraction <= 0:
        log.info(
            "synthetic samples off (--synth-fraction %g): training on real partial labels only", args.synth_fraction
        )
    elif not use_synth:
        log.warning("synthetic engine not available: training on real partial labels only")

    mix = SampleMix(real, by_kind, pool, args.synth_fraction)
    if args.labelmap_fraction > 0:
        from neurospine.spine.train_sources import PaintPool, load_labelmap_sources

        sources = paint_sources if paint_sources is not None else load_labelmap_sources(args.data)
        log.info("painting real label maps: %s", ", ".join(src.name for src in sources))
        mix.paint = PaintPool(sources, 500_000 + step * 7 + args.seed, [])
        if not fast:
            mix.paint.fill(args.labelmap_pool, rng)
        mix.paint_fraction = args.labelmap_fraction
    if fast:
        from neurospine.spine.train_loop import run_fast

        step, elapsed, cpu_s = run_fast(model, opt, mix, args, step, elapsed, history, init_note, ckpt, cpu_s)
        export(model, args.out, step, elapsed, history, args, cpu_s, init_note)
        if not args.no_calibrate:
            _calibrate(args)
        return 0
    last_ckpt = time.time()
    last_val = time.time()
    losses: list[float] = []
    model.train()
    while not budget_spent(step, elapsed, args):
        t_step = time.time()
        lr = cosine_lr(args.lr, budget_used(step, elapsed, args), 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        arrays = draw_batch(rng, mix, args.batch, args.patch)
        x, t, member, dmask = (torch.from_numpy(a) for a in arrays)
        losses.append(optimiser_step(model, opt, group_loss(model(x), t, member, dmask)))
        step += 1
        mix.after_step(step, rng, args.synth_refresh)
        elapsed += time.time() - t_step
        log_progress(step, losses, lr, elapsed, args.minutes, args.steps)
        if time.time() - last_val > args.validate_every * 60:
            scores = validate(model, monitor)
            history.append(
                {"step": step, "minutes": round(elapsed / 60, 1), "loss": float(np.mean(losses[-100:])), **scores}
            )
            log.info("validation (monitoring only, not used for selection): %s", scores)
            last_val = time.time()
        if time.time() - last_ckpt > 180:
            cpu_s, cpu_mark = cpu_s + time.process_time() - cpu_mark, time.process_time()
            save_checkpoint(
                ckpt, model, opt, step, {"elapsed_s": elapsed, "cpu_s": cpu_s, "history": history, "init": init_note}
            )
            last_ckpt = time.time()
    cpu_s += time.process_time() - cpu_mark
    save_checkpoint(
        ckpt, model, opt, step, {"elapsed_s": elapsed, "cpu_s": cpu_s, "history": history, "init": init_note}
    )
    export(model, args.out, step, elapsed, history, args, cpu_s, init_note)
    if not args.no_calibrate:
        _calibrate(args)
    return 0


def _calibrate(args: argparse.Namespace) -> None:
    from neurospine.spine.calibration import calibrate_run

    onnx_path, card_path = args.out / f"{MODEL_NAME}.onnx", args.out / f"{MODEL_NAME}.json"
    if not onnx_path.is_file() or not card_path.is_file():
        raise SystemExit(f"{args.out}: no exported {MODEL_NAME}.onnx/.json to calibrate; train or --export-only first")
    if args.body_refiner:
        attach_refiner(card_path, args)
    t = time.perf_counter()
    res = calibrate_run(onnx_path, card_path, args.data, threads=args.threads)
    log.info("outline calibration %s written into %s (%.0f s)", res["logit_bias"], card_path, time.perf_counter() - t)


def attach_refiner(card_path: Path, args: argparse.Namespace) -> None:
    """Record ``args.body_refiner`` in the run's card: inputs, version, description and training command."""
    from neurospine.io import write_text_atomic
    from neurospine.models import load_card

    refiner = load_card(args.body_refiner)  # fails clearly when the refiner cannot be found
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("inputs", {})["body_refiner"] = {
        "model": refiner.name,
        "version": refiner.version,
        "sha256": refiner.sha256,
        "weight": 1.0,
    }
    card["version"] = args.version
    note = f" Body refiner {refiner.name} {refiner.version} (sha256 {refiner.sha256[:12]}) fused into the body logits."
    if note.strip() not in card.get("description", ""):
        card["description"] = str(card.get("description", "")) + note
    step = f"neurospine train spine --out {args.out} --calibrate-only --body-refiner {args.body_refiner}"
    command = str(card.get("train_command", ""))
    if step not in command:
        card["train_command"] = f"{command} && {refiner.train_command} && {step}" if command else step
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")


def train_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (every recipe flag that differs from the default)."""
    defaults = build_parser().parse_args([])
    budget = f"--steps {args.steps}" if args.steps is not None else f"--minutes {args.minutes:g}"
    parts = ["neurospine train spine", budget, f"--threads {args.threads}"]
    parts += recipe_flags(
        args,
        defaults,
        (
            ("--lr", "lr"),
            ("--batch", "batch"),
            ("--patch", "patch"),
            ("--synth-fraction", "synth_fraction"),
            ("--synth-boundary-ignore", "synth_boundary_ignore"),
            ("--synth-regions", "synth_regions"),
            ("--synth-pool", "synth_pool"),
            ("--synth-refresh", "synth_refresh"),
            ("--seed", "seed"),
            ("--labelmap-fraction", "labelmap_fraction"),
            ("--labelmap-pool", "labelmap_pool"),
            ("--unet-base", "unet_base"),
            ("--workers", "workers"),
        ),
    )
    if args.no_body_below_l5:
        parts.append("--no-body-below-l5")
    if args.init is not None:
        parts.append(f"--init {args.init}")
    return " ".join(parts)


def export(
    model: Any,
    out: Path,
    step: int,
    elapsed: float,
    history: list[dict[str, Any]],
    args: argparse.Namespace,
    cpu_s: float | None = None,
    init_note: str | None = None,
) -> Path:
    """Write ``<out>/spine_semantic.onnx`` + a draft card (metrics are filled by benchmarks/spine.py)."""
    import torch

    from neurospine.nn.export import export_onnx

    model.eval()
    example = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    onnx_path = out / f"{MODEL_NAME}.onnx"
    card_path = out / f"{MODEL_NAME}.json"
    command = train_command(args)
    if args.export_only and card_path.is_file():  # re-export: the training command of the run stays
        command = str(json.loads(card_path.read_text(encoding="utf-8")).get("train_command", command))
    sha = export_onnx(model, example, onnx_path)
    card = {
        "name": MODEL_NAME,
        "version": args.version,
        "task": "spine",
        "file": onnx_path.name,
        "sha256": sha,
        "framework": "onnx",
        "description": "Phase-1 semantic spine model: 2.5D U-Net on sagittal slices (3 slices as channels), "
        f"{C.N_CLASSES} classes (left/right merged, split at the midline afterwards).",
        "inputs": dict(MODEL_INPUTS),
        "labels": {str(i): {"name": n, "spineps_value": v} for i, (n, v) in enumerate(C.NET_CLASSES)},
        "training_data": TRAINING_DATA,
        "metrics": {},
        "train_command": command,
        # process CPU time (all threads) when recorded; else the wall time of the training steps
        "train_cpu_minutes": round((cpu_s if cpu_s else elapsed) / 60, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notes": json.dumps(
            {
                "steps": step,
                "threads": args.threads,
                "batch": args.batch,
                "patch": args.patch,
                "unet": unet_kw(args),
                "device": args.device,
                "workers": args.workers,
                "labelmap_fraction": args.labelmap_fraction,
                "warm_start": init_note,
                "synth_fraction": args.synth_fraction,
                "synth_boundary_ignore": args.synth_boundary_ignore,
                "no_body_below_l5": args.no_body_below_l5,
                "monitoring_history": history[-6:],
            }
        ),
    }
    from neurospine.io import write_text_atomic

    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    log.info("exported %s (sha256 %s)", onnx_path, sha[:12])
    return onnx_path


if __name__ == "__main__":
    raise SystemExit(main())
