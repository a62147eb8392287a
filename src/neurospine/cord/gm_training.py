"""``neurospine train cord-gm``: train the grey-matter model on the grey-matter challenge's training people.

Patches: one axial slice with manual grey matter, resampled around the manual cord's centroid with the
geometry of :func:`neurospine.cord.gm.patch_coords` (shifted, rotated, rescaled, mirrored), intensities
normalised as at inference and then gamma/noise/blur-augmented. Target: the manual grey matter (hard, linearly
interpolated). Loss: BCE + soft Dice. Time-budgeted on the one training engine (``neurospine.nn.engine``),
checkpointed, resumable; the last checkpoint is exported (no checkpoint is picked on any scan). Held-out people
(``cord.data.GMC_HELDOUT``) are never loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.cord.crop import normalize_patch
from neurospine.cord.data import GMC_TRAIN, gmc_paths, refuse_held_out
from neurospine.cord.gm import PATCH, SPACING_MM, patch_coords
from neurospine.cord.training import SHARED_DATA, WEIGHTS_DIR
from neurospine.io import load_volume, reorient

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float32]

MODEL_NAME = "cord_gm"
VERSION = "1.0.0"


@dataclass(frozen=True)
class GMVolume:
    """One challenge session on a RAS grid: image, manual cord and grey matter, in-plane spacing."""

    name: str
    image: FloatArray
    cord: npt.NDArray[np.bool_]
    gm: FloatArray
    spacing_mm: tuple[float, float]

    @property
    def gm_slices(self) -> npt.NDArray[np.intp]:
        return np.flatnonzero((self.gm > 0).any(axis=(0, 1)) & self.cord.any(axis=(0, 1)))


def load_sessions(shared_data: Path, cases: tuple[tuple[str, str], ...] = GMC_TRAIN) -> list[GMVolume]:
    """The challenge sessions with manual cord and grey-matter masks; held-out sessions are refused."""
    out = []
    for case, _person in cases:
        refuse_held_out(case)
        img_path, cord_path = gmc_paths(shared_data, case)
        gm_path = img_path.with_name(f"{case}_gmseg.nii.gz")
        if not (img_path.is_file() and cord_path.is_file() and gm_path.is_file()):
            log.warning("challenge session missing: %s", img_path)
            continue
        img, _ = reorient(load_volume(img_path), "RAS")
        cord, _ = reorient(load_volume(cord_path, check_intensity=False), "RAS")
        gm, _ = reorient(load_volume(gm_path, check_intensity=False), "RAS")
        out.append(
            GMVolume(
                case,
                np.asarray(img.data, dtype=np.float32),
                np.asarray(cord.data) > 0,
                (np.asarray(gm.data) > 0).astype(np.float32),
                (img.spacing_mm[0], img.spacing_mm[1]),
            )
        )
    return out


def sample_patch(vol: GMVolume, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
    """One (1, P, P) image and (1, P, P) grey-matter target."""
    k = int(rng.choice(vol.gm_slices))
    ii, jj = np.nonzero(vol.cord[:, :, k])
    shift_mm = rng.normal(0.0, 0.6, 2)
    centre = (
        float(ii.mean()) + shift_mm[0] / vol.spacing_mm[0],
        float(jj.mean()) + shift_mm[1] / vol.spacing_mm[1],
    )
    ci, cj = patch_coords(
        centre,
        vol.spacing_mm,
        patch_spacing_mm=SPACING_MM * float(np.exp(rng.normal(0.0, 0.1))),
        angle_rad=math.radians(float(rng.uniform(-25.0, 25.0))),
        flip=bool(rng.random() < 0.5),
    )
    img = ndimage.map_coordinates(vol.image[:, :, k], [ci, cj], order=1, mode="nearest")
    target = ndimage.map_coordinates(vol.gm[:, :, k], [ci, cj], order=1, mode="constant", cval=0.0)
    x = normalize_patch(img).clip(0.0, 1.5)
    x = np.power(np.clip(x, 0.0, None), float(np.exp(rng.normal(0.0, 0.25))))
    if rng.random() < 0.3:
        x = ndimage.gaussian_filter(x, float(rng.uniform(0.3, 1.0)))
    if rng.random() < 0.5:
        x = x + rng.normal(0.0, float(rng.uniform(0.0, 0.05)), x.shape)
    return normalize_patch(x)[None].astype(np.float32), target[None].astype(np.float32)


def sample_batch(vols: list[GMVolume], rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
    idx = rng.integers(len(vols), size=n)
    xs, ys = zip(*(sample_patch(vols[i], rng) for i in idx), strict=True)
    return np.stack(xs), np.stack(ys)


def _loss(torch: Any, logits: Any, target: Any) -> Any:
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(1, 2, 3))
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3)) + 1.0)
    return bce + dice.mean()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="neurospine train cord-gm",
        description="Train the grey-matter model (axial T2*w) on the grey-matter challenge's training people "
        "(manual GM masks). Resumes from OUT/ckpt.pt. Example: neurospine train cord-gm --minutes 20",
    )
    p.add_argument("--out", type=Path, default=Path("runs") / "cord-gm", help="run folder (checkpoints, log)")
    p.add_argument("--minutes", type=float, default=20.0, help="budget in CPU minutes of this process (1 thread)")
    p.add_argument("--max-wall-minutes", type=float, default=None, help="also stop after this much wall time")
    p.add_argument("--shared-data", type=Path, default=SHARED_DATA, help="shared data folder (default ../shared/data)")
    p.add_argument("--batch", type=int, default=16, help="training batch size (default %(default)s)")
    p.add_argument("--base", type=int, default=16, help="channels of the first U-Net stage")
    p.add_argument("--depth", type=int, default=3, help="U-Net depth in stages")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate, cosine schedule (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default %(default)s)")
    p.add_argument("--version", default=VERSION, help="version written on the exported model card")
    p.add_argument("--export-dir", type=Path, default=WEIGHTS_DIR, help="where the ONNX model and card go")
    from neurospine.nn.engine import add_device_option

    add_device_option(p)  # on a GPU --minutes counts wall time
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import torch

    from neurospine.nn import engine as E
    from neurospine.nn.checkpoint import load_checkpoint
    from neurospine.nn.unet import UNet

    args = parse_args(list(argv or []))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    E.seed_all(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    vols = load_sessions(args.shared_data)
    if not vols:
        log.error("no grey-matter training data in %s", args.shared_data)
        return 1
    device = E.select_device(args.device)
    model = UNet(1, 1, base=args.base, depth=args.depth, dims=2)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt = args.out / "ckpt.pt"
    step, extra = load_checkpoint(ckpt, model, opt)
    budget = E.Budget(
        minutes=args.minutes,
        clock="wall" if device.type != "cpu" else "cpu",
        wall_minutes=args.max_wall_minutes,
        used_s=float(extra.get("elapsed_s", 0.0)),
        wall_in_schedule=False,
    )
    stream = E.batches(lambda rng: sample_batch(vols, rng, args.batch), np.random.default_rng(args.seed + step))
    log.info("start step %d, %d sessions: %s", step, len(vols), ", ".join(v.name for v in vols))
    result = E.run_steps(
        E.Trainer(model, opt, functools.partial(_loss, torch), device),
        stream,
        budget,
        lr=args.lr,
        step=step,
        checkpoint=E.Checkpointing(ckpt, every_s=180.0, extra=lambda _s, b: {"elapsed_s": b.seconds()}),
        log_every=250,
    )
    minutes = budget.seconds() / 60.0
    card = {
        "name": MODEL_NAME,
        "version": str(args.version),
        "task": "cord",
        "file": f"{MODEL_NAME}.onnx",
        "sha256": "",
        "framework": "onnx",
        "description": "2D U-Net: grey matter inside the spinal cord on axial T2*w slices (cord-centred patches).",
        "inputs": {
            "patch": PATCH,
            "patch_spacing_mm": SPACING_MM,
            "input": "one cord-centred axial patch (N,1,64,64), percentile 1-99 scaled",
            "output": "logits (N,1,64,64); sigmoid gives the grey-matter probability",
        },
        "labels": {"0": "grey matter"},
        "training_data": [
            {
                "name": "Spinal Cord Grey Matter Challenge, axial T2*w with manual grey-matter masks: sessions "
                + ", ".join(v.name for v in vols)
                + "; 9418 (UCL) and 9709 (Milan, 2 sessions) held out (cord.data.GMC_TRAIN / GMC_HELDOUT)",
                "licence": "CC0-1.0",
                "n": str(len(vols)),
            }
        ],
        "metrics": {"note": "held-out challenge people: benchmarks/results/cord_gm.json"},
        "train_command": f"neurospine train cord-gm --minutes {args.minutes:g} --seed {args.seed}",
        "train_cpu_minutes": round(minutes, 1),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notes": json.dumps(
            {
                "steps": result.step,
                "train_minutes": round(minutes, 2),
                "device": args.device,
                "budget_clock": budget.clock,
                "checkpoint": "last (none picked on any scan)",
            }
        ),
    }
    args.export_dir.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 1, PATCH, PATCH, generator=torch.Generator().manual_seed(0))
    sha = E.export_with_card(model, example, args.export_dir / f"{MODEL_NAME}.onnx", card)
    log.info("done: %d steps, %.1f min; exported %s (%s)", result.step, minutes, MODEL_NAME, sha[:12])
    return 0
