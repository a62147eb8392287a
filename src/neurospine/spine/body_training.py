"""``neurospine train spine-body``: train the vertebral-body refiner (binary 2.5D sagittal U-Net), export ONNX.

Why a second network: the 14-structure model learns the vertebral-body outline from two conventions at once
(the synthetic engine's drawing and the manual masks of the real sets) and from heavily contrast-randomised
inputs; on the real cases it was trained on it reaches only about 0.88 body Dice after calibration. The
refiner answers one question, "vertebral body (corpus + endplate) or not", on the same 2.5D input, trained
mostly on the real body masks. At inference its log-odds are added to the body logits of the semantic
model (a product of the two experts, :func:`neurospine.spine.semantic.slice_logits`), and the outline
calibration is fitted again on the fused logits.

Data: real VB3/VB2 training cases (body vs anything else, partial labels as in :mod:`neurospine.spine.data`,
nothing below L5 is a body; held-out cases excluded; VB1 and IVD never used) plus a share of synthetic
volumes (corpus + endplate vs everything else) for contrast variety. Intensity augmentation: a share of the
real samples unchanged, the rest inverted or passed through a random look-up table. Time-budgeted,
checkpointed every few minutes, resumable. Imports torch; runtime code never imports this module.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.spine import classes as C
from neurospine.spine import data as D
from neurospine.spine import training as T

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("runs") / "spine-body"
MODEL_NAME = "spine_body"
MODEL_VERSION = "0.1.0"  # 0.2.0 (cervical synthetic regions) was tried and not shipped
UNET_KW: dict[str, Any] = T.UNET_KW  # the same U-Net as the semantic model: both read the same input

TRAINING_DATA: list[dict[str, str]] = [
    *(row for row in T.TRAINING_DATA if row["name"].startswith(("fcs_vb3", "fcs_vb2"))),
    {
        "name": "neurospine.synth (synthetic engine, this repository)",
        "licence": "Apache-2.0 (project code)",
        "use": "corpus + endplate vs everything else, random contrast; --synth-fraction of the samples",
    },
    {
        "name": "fcs_vb1_zukic_lumbar_mri, fcs_ivd_fmrp_lumbar_t2",
        "licence": "see spine_semantic",
        "use": "NOT used",
    },
]


def binary_target(target: npt.NDArray[np.uint8], kind: str) -> npt.NDArray[np.uint8]:
    """Group/class target of a training patch -> 1 body, 0 not body, ``D.IGNORE`` unknown."""
    out = np.full(target.shape, D.IGNORE, dtype=np.uint8)
    known = target != D.IGNORE
    if kind == "body":  # group 0 = corpus + endplate, group 1 = anything else
        out[known] = (target[known] == 0).astype(np.uint8)
    elif kind == "full":
        out[known] = np.isin(target[known], (C.CORPUS, C.ENDPLATE)).astype(np.uint8)
    else:
        raise ValueError(f"no body target for a {kind!r} case")
    return out


def augment_real(x: npt.NDArray[np.float32], rng: np.random.Generator, p_keep: float) -> npt.NDArray[np.float32]:
    from neurospine.nn import augment as A

    out = A.contrast_randomize(x, rng, p_keep=p_keep, p_invert=(1.0 - p_keep) / 3.0)
    if rng.random() < 0.3:
        out = A.blur(out, rng, 1.0)
    return out.astype(np.float32)


def body_loss(logits: Any, target: Any) -> Any:
    """Cross-entropy (ignoring ``D.IGNORE``) + soft Dice of the body class over the known pixels."""
    import torch

    valid = target != D.IGNORE
    ce = torch.nn.functional.cross_entropy(logits, target, ignore_index=D.IGNORE)
    p = torch.softmax(logits, dim=1)[:, 1] * valid
    t = (target == 1).float() * valid
    dice = (2 * (p * t).sum() + 1.0) / (p.sum() + t.sum() + 1.0)
    return ce + (1 - dice)


def build_parser() -> argparse.ArgumentParser:
    from neurospine.nn.engine import add_device_option

    p = argparse.ArgumentParser(prog="neurospine train spine-body", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folder (checkpoint, log, exported model)")
    p.add_argument("--data", type=Path, default=D.shared_root(), help="shared data folder (fcs_* sets)")
    p.add_argument("--minutes", type=float, default=35.0, help="training wall-time budget (resumed runs continue)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default %(default)s)")
    p.add_argument("--batch", type=int, default=6, help="training batch size (default %(default)s)")
    p.add_argument("--patch", type=int, default=160, help="training patch edge in voxels (default %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    p.add_argument("--synth-fraction", type=float, default=0.2, help="share of samples from the synthetic engine")
    p.add_argument("--keep-contrast", type=float, default=0.4, help="share of real samples left unchanged")
    p.add_argument("--synth-pool", type=int, default=8, help="synthetic volumes kept in memory")
    p.add_argument("--synth-refresh", type=int, default=40, help="replace one synthetic volume every N steps")
    p.add_argument(
        "--synth-regions",
        default=",".join(T.SYNTH_LEVELS),
        help="comma-separated fields of view the synthetic volumes are drawn from (uniformly)",
    )
    p.add_argument(
        "--synth-boundary-ignore",
        type=int,
        default=0,
        help="ignore a band this many voxels wide around synthetic body outlines (outline learned from real labels)",
    )
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default %(default)s)")
    p.add_argument("--export-only", action="store_true", help="export the checkpoint to ONNX and stop")
    add_device_option(p, workers=True)
    return p


def train_command(args: argparse.Namespace) -> str:
    defaults = build_parser().parse_args([])
    parts = ["neurospine train spine-body", f"--minutes {args.minutes:g}", f"--threads {args.threads}"]
    parts += T.recipe_flags(
        args,
        defaults,
        (
            ("--lr", "lr"),
            ("--batch", "batch"),
            ("--patch", "patch"),
            ("--synth-fraction", "synth_fraction"),
            ("--keep-contrast", "keep_contrast"),
            ("--synth-regions", "synth_regions"),
            ("--synth-boundary-ignore", "synth_boundary_ignore"),
            ("--seed", "seed"),
            ("--workers", "workers"),  # another sample stream than in-process drawing
            ("--device", "device"),
        ),
    )
    return " ".join(parts)


def body_sampler(
    real: list[D.TrainCase], pool: T.SynthPool, args: argparse.Namespace, step0: int
) -> Callable[[np.random.Generator], tuple[npt.NDArray[Any], ...]]:
    """The engine's sampler: ``rng -> (images, targets)``; replaces one synthetic volume every
    ``--synth-refresh`` batches (counted from the run's first step, so resumed runs keep the rhythm)."""
    n = step0

    def draw(rng: np.random.Generator) -> tuple[npt.NDArray[Any], ...]:
        nonlocal n
        xs, ts = [], []
        for _ in range(args.batch):
            synthetic = bool(pool.cases) and rng.random() < args.synth_fraction
            case = pool.pick(rng) if synthetic else real[int(rng.integers(len(real)))]
            s = T.sample_patch(case, rng, args.patch)
            xs.append(augment_real(s.image, rng, 0.5 if synthetic else args.keep_contrast))
            ts.append(binary_target(s.target, s.kind))
        n += 1
        if pool.cases and n % args.synth_refresh == 0:
            pool.refresh(rng)
        return np.stack(xs), np.stack(ts).astype(np.int64)

    return draw


def main(argv: Sequence[str] | None = None) -> int:
    import copy

    import torch

    from neurospine.nn import engine as E
    from neurospine.nn.checkpoint import load_checkpoint
    from neurospine.nn.unet import UNet, count_parameters

    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    device = E.select_device(args.device)
    torch.set_num_threads(max(1, args.threads))
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = args.out / "checkpoint.pt"
    # torch is not seeded here: the shipped model was initialised from torch's fixed default seed
    model = UNet(3, 2, **UNET_KW)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, extra = load_checkpoint(ckpt, model, opt)
    elapsed = float(extra.get("elapsed_s", 0.0))
    cpu_s = float(extra.get("cpu_s", 0.0))
    log.info(
        "body refiner %d parameters; resume at step %d (%.1f min done)", count_parameters(model), step, elapsed / 60
    )
    if args.export_only:
        export(model, args.out, step, elapsed, args, cpu_s, str(extra.get("trained_on", "")))
        return 0

    rng = np.random.default_rng(args.seed + step)
    real = [c for c in D.train_cases(args.data, nothing_below_l5=True) if c.kind == "body"]
    regions = tuple(r.strip() for r in str(args.synth_regions).split(",") if r.strip())
    pool = T.SynthPool(300_000 + step * 7 + args.seed, args.synth_boundary_ignore, regions)
    use_synth = T.synth_available() and args.synth_fraction > 0
    if use_synth and args.workers <= 0:
        pool.fill(args.synth_pool, rng)

    def worker_sampler(wid: int, wrng: np.random.Generator) -> Any:
        own = copy.copy(pool)
        own.cases = []
        own.next_seed += 1_000_000 * (wid + 1)
        if use_synth:
            own.fill(args.synth_pool, wrng)
        return body_sampler(real, own, args, step)

    where = E.device_note(device, args.threads)
    cpu_mark = time.process_time()
    budget = E.Budget(minutes=args.minutes, clock="wall", used_s=elapsed)
    plan = E.Checkpointing(
        ckpt,
        every_s=180.0,
        extra=lambda _s, b: {
            "elapsed_s": b.seconds(),
            "cpu_s": cpu_s + time.process_time() - cpu_mark,
            "trained_on": where,
        },
    )
    trainer = E.Trainer(model, opt, body_loss, device, clip_norm=5.0)
    stream = E.batches(
        body_sampler(real, pool, args, step),
        rng,
        workers=args.workers,
        seed=args.seed,
        step0=step,
        make_worker_sampler=worker_sampler,
        pin_memory=device.type == "cuda",
    )
    result = E.run_steps(trainer, stream, budget, lr=args.lr, step=step, checkpoint=plan, log_every=50)
    cpu_s += time.process_time() - cpu_mark
    export(model, args.out, result.step, budget.seconds(), args, cpu_s, where)
    return 0


def export(
    model: Any, out: Path, step: int, elapsed: float, args: argparse.Namespace, cpu_s: float, where: str = ""
) -> Path:
    """Write ``<out>/spine_body.onnx`` + its card (held-out metrics are those of the fused pipeline)."""
    import torch

    from neurospine.nn.engine import export_with_card

    example = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    onnx_path = out / f"{MODEL_NAME}.onnx"
    card_path = out / f"{MODEL_NAME}.json"
    command = train_command(args)
    if args.export_only and card_path.is_file():
        command = str(json.loads(card_path.read_text(encoding="utf-8")).get("train_command", command))
    card = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "task": "spine",
        "file": onnx_path.name,
        "sha256": "",
        "framework": "onnx",
        "description": "Vertebral-body refiner: binary 2.5D U-Net on sagittal slices, the same input as "
        "spine_semantic; its log-odds are added to the semantic model's corpus/endplate logits.",
        "inputs": dict(T.MODEL_INPUTS),
        "labels": {"0": {"name": "not_body"}, "1": {"name": "vertebral_body"}},
        "training_data": TRAINING_DATA,
        "metrics": {},
        "train_command": command,
        "train_cpu_minutes": round((cpu_s if cpu_s else elapsed) / 60, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "notes": json.dumps(
            {
                "steps": step,
                "threads": args.threads,
                "batch": args.batch,
                "patch": args.patch,
                "unet": UNET_KW,
                "synth_fraction": args.synth_fraction,
                "keep_contrast": args.keep_contrast,
                "synth_regions": args.synth_regions,
                "synth_boundary_ignore": args.synth_boundary_ignore,
                **({"trained_on": where} if where else {}),
            }
        ),
    }
    sha = export_with_card(model, example, onnx_path, card)
    log.info("exported %s (sha256 %s)", onnx_path, sha[:12])
    return onnx_path


if __name__ == "__main__":
    raise SystemExit(main())
