"""``neurospine train spine``: train the phase-1 semantic model (2.5D sagittal U-Net) and export ONNX.

Data: the synthetic engine (all 14 structures, random contrast) plus real partial-label cases
(``spine.data``: VB3/VB2 bodies, IVD discs; held-out cases excluded; VB1 never used). The loss is a
marginal (partial-label) cross-entropy + Dice over *groups* of classes: a real case only says "body"
versus "anything else" (or "disc" versus "anything else"), so unlabelled structures are never taught as
background. Training is budgeted in time (``--minutes``) or in steps (``--steps``), checkpointed every few
minutes and resumable. Runs with 1 thread by default (shared machine). Imports torch; runtime code never
imports this module.

The shipped model (0.11.0) is three stages: stage 1 from scratch with the defaults (the former 0.2.0, 85
minutes at 2 threads), stage 2 warm-started from it (``--init``) with ``--lr 0.001 --synth-fraction 0.35
--synth-boundary-ignore 1 --no-body-below-l5`` for 60 minutes at 1 thread (the former 0.3.0), then stage 3
warm-started from that with the real label maps and CT images added (``--labelmap-fraction 0.25``, synth
fraction 0.3) for 60 minutes at 2 threads; the exact command is in the model card (``train_command``).
After every export the outline calibration (:mod:`neurospine.spine.calibration`) fits the body/disc logit
offsets on the real training cases and writes them into the card (``--no-calibrate`` skips it,
``--calibrate-only`` redoes it for a run folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.spine import classes as C
from neurospine.spine import data as D
from neurospine.spine.train_batches import (
    SYNTH_LEVELS,
    TEACHER_KEEP_CONTRAST,
    SampleMix,
    SynthPool,
    synth_available,
)

# re-exported: older callers import the sampling pieces from here
from neurospine.spine.train_batches import augment_intensity as augment_intensity
from neurospine.spine.train_batches import boundary_band as boundary_band
from neurospine.spine.train_batches import dice_mask as dice_mask
from neurospine.spine.train_batches import draw_batch as draw_batch
from neurospine.spine.train_batches import group_loss as group_loss
from neurospine.spine.train_batches import membership as membership
from neurospine.spine.train_batches import sample_patch as sample_patch
from neurospine.spine.train_batches import synth_case as synth_case

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

#: the real label maps and CT images of ``train_sources`` (used when ``--labelmap-fraction`` > 0)
LABELMAP_TRAINING_DATA: list[dict[str, str]] = [
    {
        "name": "label_only_refs: panoptica spine example semantic reference (BrainLesion/panoptica)",
        "licence": "Apache-2.0 (repo)",
        "use": "painted label map (all 14 structures, sagittal MRI grid): deformed and re-contrasted",
    },
    {
        "name": "label_only_refs: VerSe sub-verse004 vertebra mask (anjany/verse)",
        "licence": "VerSe data CC BY-SA 4.0",
        "use": "painted label map; sub-regions derived geometrically (docs/decisions/subregions-from-vertebrae.md)",
    },
    {
        "name": "tptbox_samples: TPTBox sample CT (Hendrik-code/TPTBox tests)",
        "licence": "Apache-2.0 (repo); the CT is probably VerSe, CC BY-SA 4.0",
        "use": "CT image re-contrasted MR-like and its sub-region map painted; the sample MRI is never trained on "
        "(it is the 14-structure evaluation case)",
    },
    {
        "name": "verse014_ct: VerSe sub-verse014 CT and vertebra mask (via juniorkowal/spine-segmentation)",
        "licence": "VerSe data CC BY-SA 4.0",
        "use": "CT image re-contrasted MR-like and its label map painted; sub-regions derived geometrically",
    },
]


def teacher_training_data(posterior: bool) -> dict[str, str]:
    """The card entry of the real MR trained on with teacher targets (``--teacher-fraction`` > 0)."""
    taught = "bodies, discs, canal, cord, sacrum" + (", posterior elements" if posterior else "")
    return {
        "name": "the VB3/VB2/IVD training images above, and sct_tutorial_unlabeled t2_lumbar (spinalcordtoolbox/"
        "sct_tutorial_data)",
        "licence": "as above; sct_tutorial_data MIT",
        "use": f"teacher targets: the installed spine model's own {taught} and background in front of the canal on "
        "these real MR images, manual labels winning; the rest behind the canal front and every class boundary left "
        "unknown (neurospine.spine.pseudo)",
    }


def training_data(
    labelmap_fraction: float, teacher_fraction: float = 0.0, teacher_posterior: bool = False
) -> list[dict[str, str]]:
    """The card's ``training_data``: the real label-map sources and the teacher-target images are listed when the
    run drew on them."""
    return (
        TRAINING_DATA
        + (LABELMAP_TRAINING_DATA if labelmap_fraction > 0 else [])
        + ([teacher_training_data(teacher_posterior)] if teacher_fraction > 0 else [])
    )


#: how both spine networks read their input (recorded in their model cards)
MODEL_INPUTS: dict[str, Any] = {
    "orientation": "PIR",
    "inplane_mm": 1.0,
    "channels": "slices r-d, r, r+d (d ~ 3 mm)",
    "intensity": "percentile 0.5-99.5 -> [0, 1]",
    "pad_multiple": 16,
}


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
        "--average-with",
        type=Path,
        default=None,
        metavar="ONNX",
        help="with --init and --export-only: export the weight-space average of --init and this model (same "
        "architecture, e.g. a fine-tuned version of --init)",
    )
    p.add_argument("--average-weight", type=float, default=0.5, help="share of --average-with in the average (0..1)")
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
    p.add_argument(
        "--dark-ligaments",
        type=float,
        default=0.0,
        help="chance that a re-contrasted CT case has the soft tissue between consecutive posterior elements "
        "(ligaments) painted dark, as on T1w/T2w MR (spine.train_sources.ligament_mask; 0 = off, as 0.16.0)",
    )
    p.add_argument(
        "--teacher-fraction",
        type=float,
        default=0.0,
        help="share of the samples (after the painted ones) drawn from real MR images with the installed spine "
        "model's own targets (neurospine.spine.pseudo; built once into <out>/teacher.npz)",
    )
    p.add_argument(
        "--teacher-posterior",
        action="store_true",
        help="keep the teacher's posterior elements as targets (otherwise everything behind the canal front but "
        "the canal and cord is unknown)",
    )
    p.add_argument(
        "--teacher-keep-contrast",
        type=float,
        default=TEACHER_KEEP_CONTRAST,
        help="chance that a teacher image keeps its own contrast (the rest are inverted or re-mapped at random)",
    )
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


def _teacher_record(out: Path) -> dict[str, Any] | None:
    """The small fields of ``<out>/teacher.npz`` ("teacher", "keep_posterior" where stored; None: no such file)."""
    path = out / "teacher.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {k: z[k].item() for k in ("teacher", "keep_posterior") if k in z.files}


#: the value options of a run's recipe, as the reproducing command lists them (flag, attribute)
VALUE_FLAGS: tuple[tuple[str, str], ...] = (
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
    ("--dark-ligaments", "dark_ligaments"),
    ("--teacher-fraction", "teacher_fraction"),
    ("--teacher-keep-contrast", "teacher_keep_contrast"),
    ("--unet-base", "unet_base"),
    ("--workers", "workers"),
)
#: settings that shape what a run learns, which a resumed run must share with its checkpoint: every value option
#: but the number of loader workers (a machine choice), and the two switches
RECIPE_FLAGS: tuple[tuple[str, str], ...] = (
    *(f for f in VALUE_FLAGS if f[1] != "workers"),
    ("--teacher-posterior", "teacher_posterior"),
    ("--no-body-below-l5", "no_body_below_l5"),
)


def training_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The run's :data:`RECIPE_FLAGS` settings (stored in the checkpoint, compared on resume)."""
    return {attr: getattr(args, attr, None) for _, attr in RECIPE_FLAGS}


def recipe_mismatch(recorded: dict[str, Any] | None, args: argparse.Namespace) -> str:
    """What differs between a checkpoint's recipe and this call's (empty: the same, or an older checkpoint without
    one), as "--flag: was A, now B" parts. A setting added after the checkpoint was written counts as its default
    there (the run could not have used anything else)."""
    if not recorded:
        return ""
    now = training_recipe(args)
    defaults = training_recipe(build_parser().parse_args([]))
    parts = []
    for flag, attr in RECIPE_FLAGS:
        was = recorded.get(attr, defaults[attr])
        if was != now[attr]:
            parts.append(f"{flag}: was {was}, now {now[attr]}")
    return "; ".join(parts)


def recorded_teacher_posterior(out: Path) -> bool | None:
    """Whether ``<out>/teacher.npz`` was built with the teacher's posterior elements (None: no such file)."""
    record = _teacher_record(out)
    return None if record is None else bool(record.get("keep_posterior", False))


def teacher_pack(args: argparse.Namespace) -> list[D.TrainCase]:
    """The teacher-target cases of :mod:`neurospine.spine.pseudo`, built once and kept in ``<out>/teacher.npz`` (a
    resumed run reads them back, so the teacher is the model installed when the run started)."""
    from neurospine.spine.train_sources import cases_from_arrays, cases_to_arrays

    path = args.out / "teacher.npz"
    if path.is_file():  # built with the same --teacher-posterior (checked with the arguments)
        with np.load(path) as z:
            cases = cases_from_arrays(z, "teacher")
        log.info("teacher targets read from %s (%d images)", path, len(cases))
        return cases
    from neurospine.models import load_card
    from neurospine.spine.pseudo import teacher_cases

    t = time.perf_counter()
    cases = teacher_cases(args.data, threads=args.threads, keep_posterior=bool(args.teacher_posterior))
    teacher = load_card("spine_semantic", task="spine")
    arrays = cases_to_arrays(cases, "teacher", crop=False)
    np.savez_compressed(
        path,
        teacher=np.array(f"{teacher.version} {teacher.sha256}"),
        keep_posterior=np.array(bool(args.teacher_posterior)),
        **arrays,  # type: ignore[arg-type]
    )
    log.info(
        "teacher targets from spine_semantic %s (sha256 %s) for %d images in %.0f s -> %s",
        teacher.version,
        teacher.sha256[:12],
        len(cases),
        time.perf_counter() - t,
        path,
    )
    return cases


def teacher_note(out: Path) -> str | None:
    """The teacher model recorded in ``<out>/teacher.npz`` ("version sha256"), for the card."""
    record = _teacher_record(out)
    return f"spine_semantic {record['teacher']}" if record and "teacher" in record else None


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
    from neurospine.nn.checkpoint import average_weights_from_onnx, load_checkpoint, load_weights_from_onnx
    from neurospine.nn.unet import UNet, count_parameters

    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be a positive number of optimiser steps")
    if args.average_with is not None and (args.init is None or not args.export_only):
        parser.error("--average-with needs --init (the first model) and --export-only")
    if args.average_with is not None and (args.out / "checkpoint.pt").is_file():
        parser.error(f"{args.out} already holds a checkpoint, which --average-with would not use; give a new --out")
    if not all(0.0 <= v <= 1.0 for v in (args.average_weight, args.teacher_fraction, args.teacher_keep_contrast)):
        parser.error("--average-weight, --teacher-fraction and --teacher-keep-contrast must lie in [0, 1]")
    if args.teacher_fraction > 0 and args.pack is not None and not (args.out / "teacher.npz").is_file():
        parser.error(
            "--teacher-fraction builds its targets from ../shared/data, which a --pack run lacks; build "
            "<out>/teacher.npz on a machine with the data (a short run with --teacher-fraction and the same "
            "--teacher-posterior) and copy it over"
        )
    if args.teacher_fraction == 0 and (args.teacher_posterior or args.teacher_keep_contrast != TEACHER_KEEP_CONTRAST):
        parser.error("--teacher-posterior and --teacher-keep-contrast need --teacher-fraction > 0")
    built = recorded_teacher_posterior(args.out)
    if args.teacher_fraction > 0 and not args.export_only and built is not None and built != args.teacher_posterior:
        parser.error(
            f"{args.out / 'teacher.npz'} was built with keep_posterior={built}; remove it or match --teacher-posterior"
        )
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
        if args.average_with is not None:
            average_weights_from_onnx(args.average_with, model, args.average_weight)
            extra["init"] += (
                f" averaged with {args.average_with.name} (sha256 {sha256_of(args.average_with)[:12]}) at weight "
                f"{args.average_weight:g}"
            )
            log.info("weights averaged with %s (weight %g)", args.average_with, args.average_weight)
    changed = recipe_mismatch(extra.get("recipe"), args) if step > 0 and not args.export_only else ""
    if changed:
        parser.error(f"{ckpt} was trained with other settings ({changed}); resume with those or give a new --out")
    elapsed = float(extra.get("elapsed_s", 0.0))
    cpu_s = float(extra.get("cpu_s", 0.0))
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
    fast = args.workers > 0  # workers fill their own pools
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
        mix.paint = PaintPool(sources, 500_000 + step * 7 + args.seed, [], args.dark_ligaments)
        if not fast:
            mix.paint.fill(args.labelmap_pool, rng)
        mix.paint_fraction = args.labelmap_fraction
    if args.teacher_fraction > 0:
        mix.teacher = teacher_pack(args)
        mix.teacher_fraction = args.teacher_fraction
        mix.teacher_keep_contrast = args.teacher_keep_contrast
    from neurospine.spine.train_loop import run

    state = {
        "elapsed_s": elapsed,
        "cpu_s": cpu_s,
        "history": history,
        "init": init_note,
        "recipe": training_recipe(args),
    }
    step, elapsed, cpu_s = run(model, opt, mix, args, rng, step, state, ckpt, monitor, validate)
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
    parts += recipe_flags(args, defaults, VALUE_FLAGS)
    if args.no_body_below_l5:
        parts.append("--no-body-below-l5")
    if getattr(args, "teacher_posterior", False):
        parts.append("--teacher-posterior")
    if args.init is not None:
        parts.append(f"--init {args.init}")
    if args.average_with is not None:
        parts += [f"--average-with {args.average_with}", f"--average-weight {args.average_weight:g}", "--export-only"]
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
    built = recorded_teacher_posterior(out)  # how the teacher targets were built, not how this export was called
    teacher_posterior = bool(getattr(args, "teacher_posterior", False)) if built is None else built
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
        "training_data": training_data(
            float(args.labelmap_fraction), float(getattr(args, "teacher_fraction", 0.0)), teacher_posterior
        ),
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
                "teacher_fraction": getattr(args, "teacher_fraction", 0.0),
                "teacher": teacher_note(out) if getattr(args, "teacher_fraction", 0.0) > 0 else None,
                "teacher_posterior": teacher_posterior,
                "teacher_keep_contrast": getattr(args, "teacher_keep_contrast", TEACHER_KEEP_CONTRAST),
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
