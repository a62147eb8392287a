"""``neurospine train slice2d``: train the 2D body/disc U-Net (torch; resumable; CPU-time budget).

Data: real 2D/3D-slice samples from ``neurospine.slice2d.data`` (subject-wise split, see there) plus,
when ``neurospine.synth`` is installed, synthetic MR/CT/X-ray slices. Loss: cross-entropy with a
*marginal* term for pixels known only to be "background or disc" (sets without disc labels), plus soft
Dice on bodies (all samples) and discs (samples with real or synthetic disc labels).

Synthetic outlines follow the engine's drawing convention, not the manual convention of the real sets;
``--synth-boundary-ignore N`` leaves a band of N pixels either side of every synthetic body and disc
outline unlabelled so boundary positions are learned from real labels only. ``--init`` warm-starts from
an exported ONNX model of the same architecture (its card's CPU minutes are carried into the new card).
After every export the outline calibration (:mod:`neurospine.slice2d.calibration`: per-class logit offsets
fitted on the real training slices) is written into the card; ``--calibrate-only`` redoes just that.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.slice2d import data as d

log = logging.getLogger(__name__)

MODEL_NAME = "slice2d_unet"
MODEL_VERSION = "0.2.1"
N_CLASSES = 3
UNET_KW: dict[str, Any] = {"base": 16, "depth": 5, "dims": 2, "max_channels": 128}
GROUP_WEIGHTS = {
    "vesal_mri2d": 0.25,
    "fcs_vb3_myosegmentum_lumbar": 0.25,
    "fcs_vb2_chu_lumbar_t2": 0.15,
    "fewshot_ct_sag": 0.12,
    "synth": 0.23,
}
SYNTH = "synth"
DISC_DICE_WEIGHT = 0.5


def parse_args(argv: list[str]) -> argparse.Namespace:
    from neurospine.nn.engine import add_device_option

    p = argparse.ArgumentParser(prog="neurospine train slice2d", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("runs") / "slice2d", help="run folder (checkpoints, caches)")
    p.add_argument("--data", type=Path, default=None, help="folder of the shared data (default ../shared/data)")
    p.add_argument("--minutes", type=float, default=20.0, help="CPU-time budget in minutes (whole run, resumes count)")
    p.add_argument(
        "--wall-minutes",
        type=float,
        default=None,
        help="also stop after this much wall-clock time in this session (shared machines)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default %(default)s)")
    p.add_argument("--batch", type=int, default=8, help="training batch size (default %(default)s)")
    p.add_argument("--crop", type=int, default=160, help="training crop edge in pixels (default %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    p.add_argument("--synth", type=int, default=60, help="synthetic slices per modality (0 = none)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default %(default)s)")
    p.add_argument(
        "--synth-weight",
        type=float,
        default=GROUP_WEIGHTS[SYNTH],
        help="sampling weight of the synthetic group (real groups keep theirs)",
    )
    p.add_argument(
        "--synth-boundary-ignore",
        type=int,
        default=0,
        help="pixels either side of synthetic body/disc outlines left unlabelled (0 = none)",
    )
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="warm start from this exported ONNX model (same architecture; ignored when resuming a checkpoint)",
    )
    p.add_argument(
        "--export-dir",
        type=Path,
        default=None,
        help="where to write the ONNX + card (default: OUT/export; set NEUROSPINE_MODELS_DIR to it to use the model)",
    )
    p.add_argument(
        "--modalities",
        default="mr,ct,xray",
        help="comma-separated modalities to train on (real and synthetic samples of the others are left out; "
        "e.g. 'mr' for an MR-only model to compare with the joint one)",
    )
    p.add_argument(
        "--group-weight",
        action="append",
        default=[],
        metavar="SOURCE=W",
        help="sampling weight of one real source (repeatable; e.g. vesal_mri2d=0.45; defaults "
        + ", ".join(f"{k} {v:g}" for k, v in GROUP_WEIGHTS.items() if k != SYNTH)
        + "; the synthetic group is set by --synth-weight)",
    )
    p.add_argument(
        "--disc-dice-weight",
        type=float,
        default=DISC_DICE_WEIGHT,
        help="weight of the disc soft-Dice term of the loss (bodies have weight 1)",
    )
    p.add_argument(
        "--version",
        default=MODEL_VERSION,
        help="version written into the exported card (name a candidate run so it cannot be mistaken for the "
        "shipped model; the default is the shipped version)",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=2.0,
        help="write a checkpoint every this many minutes (default %(default)s)",
    )
    p.add_argument("--export-only", action="store_true", help="export the current checkpoint and stop (no training)")
    add_device_option(p, workers=True)
    p.add_argument(
        "--calibrate-only",
        action="store_true",
        help="refit the outline calibration (per-class logit offsets on the real training slices) of the "
        "exported model in the export folder and write it into its card (no training)",
    )
    args = p.parse_args(argv)
    try:
        keep_modalities([], args.modalities)
        parse_group_weights(args.group_weight)
    except ValueError as e:
        p.error(str(e))
    if args.disc_dice_weight < 0:
        p.error("--disc-dice-weight must be >= 0")
    return args


def parse_group_weights(items: list[str]) -> dict[str, float]:
    """``SOURCE=W`` overrides of the real sources' sampling weights (unknown source or bad weight: error)."""
    out: dict[str, float] = {}
    real = sorted(k for k in GROUP_WEIGHTS if k != SYNTH)
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in real:
            raise ValueError(f"--group-weight {item!r}: use SOURCE=W with SOURCE one of {', '.join(real)}")
        try:
            w = float(value)
        except ValueError:
            raise ValueError(f"--group-weight {item!r}: the weight is not a number") from None
        if not (w >= 0.0 and math.isfinite(w)):
            raise ValueError(f"--group-weight {item!r}: the weight must be a finite number >= 0")
        out[name] = w
    return out


def sampling_weights(names: list[str], args: argparse.Namespace) -> npt.NDArray[np.float64]:
    """Normalised sampling probability of each sample group (real sources, then the synthetic group)."""
    table = GROUP_WEIGHTS | parse_group_weights(args.group_weight) | {SYNTH: args.synth_weight}
    w = np.array([table.get(n, 0.1) for n in names], dtype=np.float64)
    if w.sum() <= 0:
        raise ValueError("all sampling weights are zero")
    return w / w.sum()


def _default_data() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path("../shared/data")


# ---- synthetic data -------------------------------------------------------------------------


def synth_samples(n_per_modality: int, seed: int) -> list[d.Sample]:
    """Synthetic slices from ``neurospine.synth.generate_slice2d`` (empty list if unavailable)."""
    try:
        from neurospine.synth import generate_slice2d
    except ImportError:
        log.warning("neurospine.synth not available: training without synthetic slices")
        return []
    from neurospine.slice2d.io2d import model_shape, resize2d
    from neurospine.slice2d.normalize import normalize_image

    out: list[d.Sample] = []
    counts = {"mr": n_per_modality, "ct": n_per_modality, "xray": max(1, n_per_modality // 3)}  # X-ray is slow to make
    for m_i, modality in enumerate(("mr", "ct", "xray")):
        for i in range(counts[modality]):
            s = seed * 100_003 + m_i * 10_007 + i
            try:
                image, bodies, discs, spacing_mm, _meta = generate_slice2d(s, modality=modality)
            except Exception as e:  # the engine is new: skip a bad seed, never stop training
                log.warning("synth seed %d (%s) failed: %s", s, modality, e)
                continue
            # synth columns run posterior -> anterior: flip to the canonical anterior -> posterior
            image = np.ascontiguousarray(np.asarray(image)[:, ::-1])
            bodies = np.asarray(bodies)[:, ::-1]
            discs = np.asarray(discs)[:, ::-1]
            target = np.zeros(np.shape(image), np.uint8)
            target[discs > 0] = d.DISC
            target[bodies > 0] = d.BODY
            d.ignore_outside_rows(target, (bodies > 0) | (discs > 0))  # the sacrum is not labelled
            sp_any: Any = spacing_mm
            sp = (float(sp_any[0]), float(sp_any[1]))
            hw: Any = target.shape
            shape = model_shape((int(hw[0]), int(hw[1])), sp)
            img = resize2d(normalize_image(image, modality), shape, order=1).astype(np.float32)
            out.append(
                d.Sample(
                    img,
                    resize2d(target, shape, order=0).astype(np.uint8),
                    f"synth-{modality}-{s}",
                    "synth",
                    modality,
                    True,
                )
            )
    return out


def parse_modalities(modalities: str) -> list[str]:
    """The sorted, lower-cased names in a comma-separated ``--modalities`` value."""
    return sorted({m.strip().lower() for m in modalities.split(",") if m.strip()})


def keep_modalities(samples: list[d.Sample], modalities: str) -> list[d.Sample]:
    """The samples whose modality is in the comma-separated ``modalities`` (an unknown name is an error)."""
    wanted = set(parse_modalities(modalities))
    unknown = wanted - {"mr", "ct", "xray"}
    if unknown or not wanted:
        raise ValueError(
            f"--modalities: unknown or empty {sorted(unknown)}; use a comma-separated subset of mr,ct,xray"
        )
    return [s for s in samples if s.modality in wanted]


def ignore_outline_band(target: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.uint8]:
    """``target`` with a band of ``width`` pixels either side of body and disc outlines set to ignore.

    Uses the 3D spine model's in-slice band (a 2D target is one slice) for bodies and for discs separately,
    so the body/disc interface is unlabelled as well as the outer outlines.
    """
    from neurospine.spine.training import boundary_band

    if width <= 0:
        return target
    t3 = target[None]
    band = boundary_band(t3, (d.BODY,), width) | boundary_band(t3, (d.DISC,), width)
    return np.where(band[0], np.uint8(d.IGNORE), target).astype(np.uint8)


# ---- augmentation ---------------------------------------------------------------------------


def augment(
    img: npt.NDArray[np.float32], tgt: npt.NDArray[np.uint8], rng: np.random.Generator, crop: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    from neurospine.nn.augment import contrast_randomize

    scale = float(np.exp(rng.uniform(math.log(0.8), math.log(1.25))))
    aspect = float(np.exp(rng.uniform(-0.12, 0.12)))
    angle = math.radians(rng.uniform(-12.0, 12.0))
    c, s = math.cos(angle), math.sin(angle)
    # output -> input mapping (rows, cols)
    mat = np.array([[c, -s], [s, c]]) @ np.diag([1.0 / (scale * aspect), aspect / scale])
    out_shape = (crop, crop)
    # centre the crop on a random labelled point (or anywhere)
    labelled = np.argwhere((tgt == d.BODY) | (tgt == d.DISC))
    if len(labelled) and rng.random() < 0.85:
        centre = labelled[rng.integers(len(labelled))].astype(float) + rng.normal(0, 20, 2)
    else:
        centre = np.array([rng.uniform(0, img.shape[0]), rng.uniform(0, img.shape[1])])
    offset = centre - mat @ (np.array(out_shape, float) / 2.0)
    im = ndimage.affine_transform(img, mat, offset=offset, output_shape=out_shape, order=1, mode="constant", cval=0.0)
    tg = ndimage.affine_transform(
        tgt, mat, offset=offset, output_shape=out_shape, order=0, mode="constant", cval=d.IGNORE
    )
    if rng.random() < 0.5:  # anterior/posterior swap: 2D inputs may face either way
        im, tg = im[:, ::-1], tg[:, ::-1]
    im = contrast_randomize(np.ascontiguousarray(im, dtype=np.float32), rng, p_keep=0.35, p_invert=0.2)
    return im.astype(np.float32), np.ascontiguousarray(tg)


# ---- loss -----------------------------------------------------------------------------------


def loss_fn(logits: Any, target: Any, disc_ok: Any, disc_dice_weight: float = DISC_DICE_WEIGHT) -> Any:
    import torch
    import torch.nn.functional as F

    logp = F.log_softmax(logits, dim=1)
    t = target.long()
    definite = t <= 2
    marginal = t == d.BG_OR_DISC
    ce_def = -logp.gather(1, t.clamp(max=2).unsqueeze(1)).squeeze(1)
    ce_marg = -torch.logsumexp(torch.stack([logp[:, 0], logp[:, 2]], 0), 0)
    n = (definite | marginal).sum().clamp(min=1)
    ce = (ce_def * definite).sum() / n + (ce_marg * marginal).sum() / n
    prob = logp.exp()
    valid = (t != d.IGNORE).float()
    body_t = (t == d.BODY).float()
    inter = (prob[:, 1] * body_t * valid).sum()
    dice_body = 1 - (2 * inter + 1) / ((prob[:, 1] * valid).sum() + body_t.sum() + 1)
    w = disc_ok.float()[:, None, None]
    disc_t = (t == d.DISC).float()
    inter_d = (prob[:, 2] * disc_t * valid * w).sum()
    dice_disc = 1 - (2 * inter_d + 1) / ((prob[:, 2] * valid * w).sum() + (disc_t * w).sum() + 1)
    return ce + dice_body + disc_dice_weight * dice_disc


# ---- main -----------------------------------------------------------------------------------


def calibrate_export(export_dir: Path, root: Path, threads: int) -> int:
    """Outline calibration of ``export_dir``'s model, written into its card (:mod:`.calibration`)."""
    from neurospine.slice2d.calibration import calibrate_run

    onnx_path = export_dir / f"{MODEL_NAME}.onnx"
    if not onnx_path.is_file():
        log.error("no exported model at %s: train or --export-only first", onnx_path)
        return 2
    result = calibrate_run(onnx_path, onnx_path.with_suffix(".json"), root, threads=threads)
    log.info("logit_bias written into %s: %s", onnx_path.with_suffix(".json"), result["logit_bias"])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    log.setLevel(logging.INFO)  # progress lines even when the CLI configured WARNING
    root = args.data or _default_data()
    export_dir: Path = args.export_dir or (args.out / "export")
    if args.calibrate_only:
        return calibrate_export(export_dir, root, args.threads)
    return train(args, list(argv or []), root, export_dir)


def train(args: argparse.Namespace, argv: list[str], root: Path, export_dir: Path) -> int:
    """Train (or resume) on the engine (:mod:`neurospine.nn.engine`), export, then calibrate the exported model."""
    import functools

    import torch

    from neurospine.nn import engine as E
    from neurospine.nn.checkpoint import load_checkpoint, load_weights_from_onnx
    from neurospine.nn.unet import UNet

    device = E.select_device(args.device)
    torch.set_num_threads(max(1, args.threads))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    samples = load_training_samples(args, root, out)
    sampler = slice_sampler(samples, args)

    E.seed_all(args.seed)
    model = UNet(1, N_CLASSES, **UNET_KW)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ckpt = out / "checkpoint.pt"
    step, extra = load_checkpoint(ckpt, model, opt)
    if step == 0 and args.init is not None:
        n = load_weights_from_onnx(args.init, model)
        extra["init"] = init_lineage(args.init)
        log.info("warm start from %s (%d tensors): %s", args.init, n, extra["init"])
    lineage: dict[str, Any] = dict(extra.get("init", {}))
    cpu_used = float(extra.get("cpu_seconds", 0.0))
    where = str(extra.get("trained_on", ""))

    def export_now(cpu_seconds: float) -> int:
        export(
            model,
            export_dir,
            cpu_minutes=cpu_seconds / 60.0,
            steps=step,
            samples=samples,
            argv=argv,
            lineage=lineage,
            recipe=recipe_note(args) + (where + ". " if where else ""),
            version=args.version,
        )
        return calibrate_export(export_dir, root, args.threads)

    if args.export_only:
        return export_now(cpu_used)
    where = E.device_note(device, args.threads)
    budget = E.Budget(minutes=args.minutes, clock="cpu", wall_minutes=args.wall_minutes, used_s=cpu_used)
    loss = functools.partial(loss_fn, disc_dice_weight=args.disc_dice_weight)
    trainer = E.Trainer(model, opt, loss, device)
    ckpt_plan = E.Checkpointing(
        ckpt,
        every_s=args.checkpoint_minutes * 60,
        clock="cpu",
        extra=lambda _s, b: {"cpu_seconds": b.seconds(), "init": lineage, "trained_on": where},
    )
    rng = np.random.default_rng(args.seed + step)
    stream = E.batches(sampler, rng, workers=args.workers, seed=args.seed, step0=step, pin_memory=device.type == "cuda")
    result = E.run_steps(trainer, stream, budget, lr=args.lr, step=step, checkpoint=ckpt_plan)
    step = result.step
    return export_now(budget.seconds())


def load_training_samples(args: argparse.Namespace, root: Path, out: Path) -> list[d.Sample]:
    """Real samples (cached in ``out``) plus the synthetic ones, restricted to ``--modalities``."""
    cache = out / "train_real.npz"
    if not cache.is_file():
        log.info("building the real-data cache from %s", root)
        d.save_samples(d.training_samples(root), cache)
    samples = d.load_samples(cache)
    if args.synth > 0:
        scache = out / f"train_synth_{args.synth}.npz"
        if not scache.is_file():
            syn = synth_samples(args.synth, args.seed)
            if syn:
                d.save_samples(syn, scache)
        if scache.is_file():
            syn_loaded = d.load_samples(scache)
            for s in syn_loaded:
                s.target = ignore_outline_band(s.target, args.synth_boundary_ignore)
            samples += syn_loaded
    return keep_modalities(samples, args.modalities)


def slice_sampler(samples: list[d.Sample], args: argparse.Namespace) -> Any:
    """The engine's sampler: ``rng -> (images, targets, discs_labelled)``, groups drawn by their weights."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        groups.setdefault(s.source, []).append(i)
    names = sorted(groups)
    weights = sampling_weights(names, args)
    log.info("samples per source: %s", {n: len(groups[n]) for n in names})
    log.info(
        "sampling probability per source: %s", {n: round(float(w), 3) for n, w in zip(names, weights, strict=True)}
    )
    batch, crop = int(args.batch), int(args.crop)

    def draw(rng: np.random.Generator) -> tuple[npt.NDArray[Any], ...]:
        imgs, tgts, oks = [], [], []
        for _ in range(batch):
            grp = groups[names[int(rng.choice(len(names), p=weights))]]
            s = samples[grp[int(rng.integers(len(grp)))]]
            im, tg = augment(s.image, s.target, rng, crop)
            imgs.append(im)
            tgts.append(tg)
            oks.append(s.discs_labelled)
        return np.stack(imgs)[:, None], np.stack(tgts).astype(np.int64), np.array(oks)

    return draw


def recipe_note(args: argparse.Namespace) -> str:
    """One sentence on the synthetic-data handling for the card."""
    band = (
        f"a {args.synth_boundary_ignore}-px band either side of synthetic body/disc outlines is ignored"
        if args.synth_boundary_ignore > 0
        else "synthetic outlines are used as labelled"
    )
    wanted = parse_modalities(args.modalities)
    only = "" if wanted == ["ct", "mr", "xray"] else f"Trained on {', '.join(wanted)} only. "
    custom = parse_group_weights(args.group_weight)
    real = f"Real sources re-weighted: {', '.join(f'{k} {v:g}' for k, v in sorted(custom.items()))}. " if custom else ""
    disc = f"Disc soft-Dice weight {args.disc_dice_weight:g}. " if args.disc_dice_weight != DISC_DICE_WEIGHT else ""
    return f"{only}{real}{disc}Synthetic slices: sampling weight {args.synth_weight:g} of the group total; {band}. "


def init_lineage(onnx_path: Path) -> dict[str, Any]:
    """What a warm start came from: the model card beside the ONNX file (name, version, sha, CPU minutes)."""
    from neurospine.models.registry import sha256_of

    info: dict[str, Any] = {"file": onnx_path.name, "sha256": sha256_of(onnx_path)}
    card = onnx_path.with_suffix(".json")
    if card.is_file():
        raw = json.loads(card.read_text(encoding="utf-8"))
        for k in ("name", "version", "train_command", "train_cpu_minutes"):
            info[k] = raw.get(k)
    return info


def export(
    model: Any,
    export_dir: Path,
    *,
    cpu_minutes: float,
    steps: int,
    samples: list[d.Sample],
    argv: list[str],
    lineage: dict[str, Any] | None = None,
    recipe: str = "",
    version: str = MODEL_VERSION,
) -> Path:
    import torch

    from neurospine.nn.engine import export_with_card

    export_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_dir / f"{MODEL_NAME}.onnx"
    example = torch.rand(1, 1, 96, 96, generator=torch.Generator().manual_seed(0))  # not constant: instance norm
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.source] = counts.get(s.source, 0) + 1
    init = lineage or {}
    init_minutes = float(init.get("train_cpu_minutes") or 0.0)
    warm = (
        f"Warm-started from {init.get('name')} {init.get('version')} (sha256 {str(init.get('sha256'))[:12]}, "
        f"{init_minutes:g} CPU-min, trained with `{init.get('train_command')}`); train_cpu_minutes is that "
        f"plus {cpu_minutes:.2f} CPU-min of this fine-tuning run. "
        if init
        else ""
    )
    card = {
        "name": MODEL_NAME,
        "version": version,
        "task": "slice2d",
        "file": onnx_path.name,
        "sha256": "",
        "framework": "onnx",
        "description": "2D U-Net: background / vertebral body / intervertebral disc on sagittal MR, CT slices "
        "and lateral radiographs (one model for all modalities; outline calibration in inputs.logit_bias).",
        "inputs": {
            "channels": 1,
            "layout": "NCHW, rows superior->inferior, cols anterior->posterior",
            "pixel_mm": 1.25,
            "normalisation": "0.5/99.5 percentiles -> [0,1]; CT in HU clipped to [-400,1400] first",
            "size_multiple": 16,
        },
        "labels": {"0": "background", "1": "vertebral_body", "2": "intervertebral_disc"},
        "training_data": [
            {"name": "vesal_mri2d", "licence": "MIT (repo); image origin not named", "used": "slices 2-4,6-9,11,12,14"},
            {
                "name": "fcs_vb3_myosegmentum_lumbar",
                "licence": "GPL-3.0 repo; MyoSegmenTUM (Burian 2019), licence not verified",
                "used": "20 train cases x 5 sagittal slices (27-31 held out)",
            },
            {
                "name": "fcs_vb2_chu_lumbar_t2",
                "licence": "GPL-3.0 repo; Chu et al. 2015 (Zenodo 22304)",
                "used": "8 train cases x 5 slices (12-14 held out)",
            },
            {"name": "fewshot_ct_sag", "licence": "MIT (repo)", "used": "cases 11, 13 midline slices (36 held out)"},
            {"name": "neurospine.synth", "licence": "generated", "used": f"{counts.get('synth', 0)} synthetic slices"},
        ],
        "metrics": {},
        "train_command": "neurospine train slice2d " + " ".join(argv),
        "train_cpu_minutes": round(cpu_minutes + init_minutes, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notes": warm
        + recipe
        + f"{steps} steps{' in this run' if init else ''} of batch 8 (random 160x160 crops at 1.25 mm); "
        f"samples per source {counts}. "
        "Body-only sets (VB2/VB3, fewshot CT) get pseudo-disc labels (gap between consecutive bodies; CT: "
        "marginal only) and a marginal bg-or-disc loss near the spine; rows above/below the annotated "
        "vertebrae are ignored. Augmentation: scale, aspect, rotation, anterior/posterior flip, random LUT / "
        "inversion / gamma / bias / noise. One model for all modalities: real CT (9 slices) and X-ray (none) "
        "are too scarce for separate models; a per-modality comparison was not run (CPU budget). "
        "train_cpu_minutes counts the training loop only; building the real-data cache took about 4 CPU-min "
        "and the synthetic cache about 4 min wall (its CPU time was not recorded). "
        "Metrics: `python -m benchmarks.slice2d --update-card`.",
    }
    export_with_card(model, example, onnx_path, card)
    log.info("exported %s", onnx_path)
    return onnx_path
