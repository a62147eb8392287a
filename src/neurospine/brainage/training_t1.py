"""``neurospine train brainage-t1``: the raw-T1w 3D CNN with the MCCQR head (needs torch).

Data: ``ixi_t1_2mm`` (IXI, Hammersmith Hospital, 121 subjects here, CC BY-SA 3.0). Split (by subject,
deterministic, stratified by age): every subject is ranked by age; in each consecutive block of 5 one
subject (chosen with the seed) goes to TEST (24 subjects, never seen in training or model selection);
of the rest, one per block of 8 goes to VAL (early stopping on the validation pinball loss and the
split-conformal calibration set); the remainder is TRAIN. The shipped model is the one trained on
TRAIN; its card reports metrics on TEST.

Network: small 3D ResNet (4 stages, stride-2, batch norm) -> global average pool -> [dropout] -> FC ->
ReLU -> [dropout] -> FC -> monotone quantile head on :data:`quantiles.TAU_GRID`. Dropout is an explicit
random-mask *input* (``mask``, shape ``(T, 2*HIDDEN)``, entries 0 or 1), so the exported ONNX graph keeps
Monte-Carlo dropout at inference: the runtime feeds ``T`` random masks and gets ``T`` quantile functions
from one trunk evaluation.

``--recipe lowres`` (the shipped model since 0.2.0) trains a 4 mm network inside the same ONNX interface with
strong augmentation and weight averaging instead of early stopping; see :mod:`t1_lowres`.

Checkpoint/resume: ``<out>/ckpt.pt`` is written after every epoch (weights, optimiser, epoch, best
state, CPU seconds used); rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.t1_net import (
    CACHE_SHAPE,
    DROPOUT_P,
    HIDDEN,
    SHIFT_VOX,
    centre,
    pinball_torch,
    precise_bn,
    random_mask,
    residual_block_class,
)
from neurospine.brainage.t1_preprocess import CROP_SHAPE, preprocess_t1

log = logging.getLogger(__name__)

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ixi_t1_2mm"
DEFAULT_OUT = Path("runs") / "brainage-t1"
MODEL_NAME = "brainage_t1"


def _parser() -> argparse.ArgumentParser:
    from neurospine.nn.engine import add_device_option

    p = argparse.ArgumentParser(
        prog="neurospine train brainage-t1",
        description="Train the raw-T1w brain-age 3D CNN (MCCQR head) on ixi_t1_2mm, export ONNX + card. "
        "Resumes from <out>/ckpt.pt. Example: neurospine train brainage-t1 --out runs/brainage-t1 --minutes 25",
    )
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with ages.csv and t1/ (ixi_t1_2mm)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folder (cache, checkpoint, log)")
    p.add_argument("--minutes", type=float, default=25.0, help="CPU-time budget for the training epochs")
    p.add_argument("--max-epochs", type=int, default=400, help="cap on training epochs (default %(default)s)")
    p.add_argument("--batch", type=int, default=8, help="training batch size (default %(default)s)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default %(default)s)")
    p.add_argument("--width", type=int, default=12, help="channels of the first stage")
    p.add_argument("--seed", type=int, default=0, help="initialisation / augmentation seed")
    p.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the TRAIN/VAL/TEST split (keep 0: the shipped model's TEST subjects are never trained on)",
    )
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default %(default)s)")
    p.add_argument("--mc", type=int, default=50, help="Monte-Carlo passes for evaluation")
    p.add_argument(
        "--recipe",
        choices=("default", "lowres"),
        default="default",
        help="default: 2 mm network, early stopping on VAL; lowres: 4 mm network inside the same ONNX "
        "interface, strong augmentation, weight averaging of the last epochs (see brainage.t1_lowres)",
    )
    p.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 1e-3; lowres 0.05)")
    p.add_argument("--wall-minutes", type=float, default=None, help="stop training after this wall time")
    p.add_argument(
        "--export",
        type=Path,
        default=None,
        help="folder for brainage_t1.onnx/.json/_calib.npz (default: the package weights folder)",
    )
    add_device_option(p)
    return p


# ---------------------------------------------------------------- data


def read_ages(data: Path) -> list[dict[str, Any]]:
    rows = []
    with (data / "ages.csv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            rows.append({"file": str(data / r["file"]), "id": r["ixi_id"], "age": float(r["age"])})
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate subject ids in ages.csv")
    return rows


def split_subjects(ages: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Age-stratified subject split: TEST 1 in 5, VAL 1 in 8 of the rest, TRAIN the remainder."""
    rng = np.random.default_rng(seed)
    order = np.argsort(ages, kind="stable")
    test = [int(blk[rng.integers(len(blk))]) for blk in np.array_split(order, int(np.ceil(len(order) / 5)))]
    rest = np.array([i for i in order if i not in set(test)])
    val = [int(blk[rng.integers(len(blk))]) for blk in np.array_split(rest, int(np.ceil(len(rest) / 8)))]
    train = np.array(sorted(set(rest.tolist()) - set(val)))
    return {"train": train, "val": np.array(sorted(val)), "test": np.array(sorted(test))}


def build_cache(rows: list[dict[str, Any]], out: Path) -> np.ndarray:
    from neurospine.io import load_volume

    path = out / "cache_t1.npy"
    if path.is_file():
        arr = np.load(path)
        if arr.shape == (len(rows), *CACHE_SHAPE):
            return arr
    arr = np.zeros((len(rows), *CACHE_SHAPE), dtype=np.float16)
    for i, r in enumerate(rows):
        arr[i] = preprocess_t1(load_volume(r["file"]), CACHE_SHAPE)
    tmp = out / "cache_t1.tmp.npy"
    np.save(tmp, arr)
    tmp.replace(path)
    return arr


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random shift (crop from the padded cache), L/R flip, intensity scale/gamma/noise."""
    o = rng.integers(0, 2 * SHIFT_VOX + 1, size=3)
    v = x[o[0] : o[0] + CROP_SHAPE[0], o[1] : o[1] + CROP_SHAPE[1], o[2] : o[2] + CROP_SHAPE[2]].astype(np.float32)
    if rng.random() < 0.5:
        v = v[::-1]
    v = np.power(np.clip(v / 3.0, 0, 1), rng.uniform(0.8, 1.25)) * 3.0 * rng.uniform(0.9, 1.1)
    v = v + rng.normal(0, 0.03, size=v.shape).astype(np.float32) * (v > 0)
    return np.ascontiguousarray(v, dtype=np.float32)


# ---------------------------------------------------------------- model


def build_model(width: int) -> Any:
    import torch
    from torch import nn

    Block = residual_block_class()

    class BrainAgeCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.stem = nn.Sequential(nn.Conv3d(1, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU())
            self.stages = nn.Sequential(Block(w, 2 * w), Block(2 * w, 4 * w), Block(4 * w, HIDDEN))
            self.fc1 = nn.Linear(HIDDEN, HIDDEN)
            self.fc2 = nn.Linear(HIDDEN, len(qmod.TAU_GRID))

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            f = self.stages(self.stem(image)).mean(dim=(2, 3, 4))  # (B, HIDDEN)
            keep = 1.0 - DROPOUT_P
            h = f * mask[:, :HIDDEN] / keep  # broadcasts (1, H) against (T, H)
            h = torch.relu(self.fc1(h)) * mask[:, HIDDEN:] / keep
            raw = self.fc2(h)
            inc = torch.nn.functional.softplus(raw[:, 1:])
            return torch.cat([raw[:, :1], raw[:, :1] + torch.cumsum(inc, dim=1)], dim=1)

    return BrainAgeCNN()


def mc_quantiles(model: Any, images: np.ndarray, mc: int, rng: np.random.Generator) -> np.ndarray:
    """(T, n, K) standardised quantiles with MC dropout masks (batch norm in eval mode)."""
    import torch

    model.eval()
    out = np.zeros((mc, len(images), len(qmod.TAU_GRID)))
    with torch.no_grad():
        for i, im in enumerate(images):
            x = torch.from_numpy(centre(im))[None, None]
            out[:, i, :] = model(x, torch.from_numpy(random_mask(mc, rng))).numpy()
    return out


def val_pinball(model: Any, images: np.ndarray, y: np.ndarray) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        # no-dropout pass: masks equal to the keep probability (inverted dropout divides by it)
        keep = torch.full((1, 2 * HIDDEN), 1.0 - DROPOUT_P)
        qs = [model(torch.from_numpy(centre(im))[None, None], keep) for im in images]
        q = torch.cat(qs, 0)
        return float(pinball_torch(q, torch.from_numpy(y.astype(np.float32))))


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    import torch

    from neurospine.nn import engine as E

    args = _parser().parse_args(argv)
    E.select_device(args.device)  # a missing CUDA device stops here, before the cache is built
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(max(1, args.threads))
    E.seed_all(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = read_ages(args.data)
    ages = np.array([r["age"] for r in rows])
    split = split_subjects(ages, args.split_seed)
    log.info("subjects: train %d val %d test %d", *(len(split[k]) for k in ("train", "val", "test")))
    cache = build_cache(rows, args.out)
    tr, va = split["train"], split["val"]
    mu, sd = float(ages[tr].mean()), float(ages[tr].std())
    y_std = ((ages - mu) / sd).astype(np.float32)

    if args.recipe == "lowres":
        from neurospine.brainage.training_t1_lowres import train_lowres

        low_model, low_state = train_lowres(args, cache, tr, va, y_std)
        return _finish(low_model, args, rows, ages, split, cache, mu, sd, low_state)
    model = build_model(args.width)
    wd = 1e-3 if args.weight_decay is None else args.weight_decay
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=wd)
    ckpt_path = args.out / "ckpt.pt"
    state: dict[str, Any] = {
        "epoch": 0,
        "cpu_s": 0.0,
        "best_val": float("inf"),
        "best_epoch": -1,
        "best_state": None,
        "planned": None,
        "history": [],
        "val_v3": True,
    }
    loaded = E.load_run_state(ckpt_path, model, opt)
    if loaded is not None:
        state = loaded
        if not state.get("val_v3"):  # validation losses before the eval fixes are not comparable
            state.update(best_val=float("inf"), best_epoch=-1, best_state=None, val_v3=True)
        log.info("resumed at epoch %d (%.1f CPU min used)", state["epoch"], state["cpu_s"] / 60)
    trainer = E.Trainer(model, opt, pinball_torch, E.select_device(args.device), n_inputs=2)
    state["trained_on"] = E.device_note(trainer.device, args.threads)

    def make_batch(idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        x = np.stack([augment(cache[i], rng) for i in idx])[:, None]
        return x, random_mask(len(idx), rng), y_std[idx]

    rng = np.random.default_rng(args.seed + 1000 + state["epoch"])
    budget_s = args.minutes * 60.0
    while True:
        planned = state["planned"] or args.max_epochs
        if state["epoch"] >= planned or state["cpu_s"] >= budget_s:
            break
        t0 = time.process_time()
        lr = E.cosine_lr(args.lr, state["epoch"] / planned) * min(1.0, (state["epoch"] + 1) / 3)
        losses = E.train_epoch(trainer, rng, tr, args.batch, make_batch, lr)
        precise_bn(model, cache[tr])
        vloss = val_pinball(model, cache[va], y_std[va])
        state["epoch"] += 1
        state["cpu_s"] += time.process_time() - t0
        # fit the cosine schedule into the CPU budget (re-planned every epoch, so --minutes may change on resume)
        per_epoch = state["cpu_s"] / state["epoch"]
        state["planned"] = int(min(args.max_epochs, max(state["epoch"] + 1, 5, budget_s // max(per_epoch, 1e-3))))
        if vloss < state["best_val"]:
            state["best_val"], state["best_epoch"] = vloss, state["epoch"]
            state["best_state"] = {k: v.clone() for k, v in model.state_dict().items()}
        state["history"].append((state["epoch"], float(np.mean(losses)), vloss))
        log.info(
            "epoch %d/%d train %.4f val %.4f (best %.4f @%d) cpu %.1f min",
            state["epoch"],
            state["planned"],
            np.mean(losses),
            vloss,
            state["best_val"],
            state["best_epoch"],
            state["cpu_s"] / 60,
        )
        E.save_run_state(ckpt_path, model, opt, state)

    model.load_state_dict(state["best_state"])
    return _finish(model, args, rows, ages, split, cache, mu, sd, state)


def _finish(
    model: Any,
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    ages: np.ndarray,
    split: dict[str, np.ndarray],
    cache: np.ndarray,
    mu: float,
    sd: float,
    state: dict[str, Any],
) -> int:
    import torch

    from neurospine.brainage.t1_model import export_card
    from neurospine.models.registry import shipped_dir

    rng = np.random.default_rng(12345)
    model.eval()
    export = args.export or shipped_dir()
    export.mkdir(parents=True, exist_ok=True)
    onnx_path = export / f"{MODEL_NAME}.onnx"
    dummy = (torch.zeros(1, 1, *CROP_SHAPE), torch.ones(4, 2 * HIDDEN))
    tmp = export / f".{MODEL_NAME}.tmp.onnx"
    torch.onnx.export(
        model,
        dummy,
        str(tmp),
        input_names=["image", "mask"],
        output_names=["quantiles"],
        dynamic_axes={"mask": {0: "passes"}, "quantiles": {0: "passes"}},
        opset_version=17,
        dynamo=False,
    )
    tmp.replace(onnx_path)

    def predict(idx: np.ndarray) -> qmod.Predictive:
        q = mc_quantiles(model, cache[idx], args.mc, rng) * sd + mu
        return qmod.Predictive.from_passes(q)

    va, te, tr = split["val"], split["test"], split["train"]
    p_val, p_test = predict(va), predict(te)
    conf = qmod.ConformalTable(ages[va], p_val.quantiles, p_val.sd)
    calib_path = save_calibration(export, conf, mu, sd)
    y = ages[te]
    metrics = heldout_metrics(ages, split, p_test, conf, split_seed=args.split_seed)
    metrics["mc_passes"] = args.mc
    log.info("TEST metrics %s", json.dumps(metrics))
    with (args.out / "split.json").open("w", encoding="utf-8") as fh:
        json.dump({k: [rows[i]["id"] for i in v] for k, v in split.items()}, fh, indent=1)
    np.savez(
        args.out / "test_predictions.npz",
        ids=np.array([rows[i]["id"] for i in te]),
        age=y,
        median=p_test.median,
        sd=p_test.sd,
        quantiles=p_test.quantiles,
    )
    export_card(
        export,
        onnx_path,
        calib_path,
        metrics=metrics,
        age_mean=mu,
        age_sd=sd,
        train_cpu_minutes=state["cpu_s"] / 60.0,
        epochs=state["epoch"],
        best_epoch=state["best_epoch"],
        train_ids=[rows[i]["id"] for i in tr],
        width=args.width,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        recipe=args.recipe,
        train_command=train_command(args),
        swa_epochs=int(state.get("swa_n", 0)),
    )
    return 0


def save_calibration(export: Path, conf: qmod.ConformalTable, mu: float, sd: float) -> Path:
    """Write ``brainage_t1_calib.npz`` (VAL ages, quantiles, sds and the age standardisation) atomically."""
    from neurospine.brainage.t1_model import CALIB_SUFFIX

    calib_path = export / f"{MODEL_NAME}{CALIB_SUFFIX}"
    tmpc = export / f".{MODEL_NAME}.calib.tmp.npz"
    np.savez(tmpc, ages=conf.ages, quantiles=conf.quantiles, sd=conf.sd, age_mean=mu, age_sd=sd)
    tmpc.replace(calib_path)
    return calib_path


def pinball_years(y: np.ndarray, pred: qmod.Predictive) -> float:
    """Mean pinball loss (years) of ``pred`` over the network's quantile grid."""
    q = qmod.interp_quantiles(pred.quantiles, qmod.TAU_GRID, qmod.STORE_LEVELS)
    return float(qmod.pinball_loss(y[:, None], q, qmod.TAU_GRID[None, :]).mean())


def heldout_metrics(
    ages: np.ndarray,
    split: dict[str, np.ndarray],
    p_test: qmod.Predictive,
    conf: qmod.ConformalTable,
    *,
    split_seed: int,
) -> dict[str, Any]:
    """TEST metrics written into the card: MAE, r, baseline, interval coverage/width per level, pinball."""
    va, te, tr = split["val"], split["test"], split["train"]
    y = ages[te]
    metrics: dict[str, Any] = {
        "split": f"held-out TEST subjects (age-stratified 1 in 5, seed {split_seed}), never used for training "
        "or selection",
        "n_train": len(tr),
        "n_val_calibration": len(va),
        "n_test": len(te),
        "mae_years": float(np.abs(p_test.median - y).mean()),
        "r": float(np.corrcoef(p_test.median, y)[0, 1]),
        "baseline_predict_train_mean_mae_years": float(np.abs(ages[tr].mean() - y).mean()),
        "mean_sd_years": float(p_test.sd.mean()),
    }
    for cov in qmod.REPORT_LEVELS:
        lo, hi = conf.interval(p_test, cov)
        metrics[f"coverage_{int(cov * 100)}"] = float(np.mean((y >= lo) & (y <= hi)))
        metrics[f"width_{int(cov * 100)}_years"] = float(np.mean(hi - lo))
        metrics[f"interval_method_{int(cov * 100)}"] = conf.method(cov)
    metrics["pinball_years"] = pinball_years(y, p_test)
    return metrics


def train_command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (data/export folders left at their defaults)."""
    parts = ["neurospine train brainage-t1", f"--out {args.out}", f"--minutes {args.minutes:g}"]
    if args.recipe != "default":
        parts += [f"--recipe {args.recipe}", f"--width {args.width}", f"--lr {args.lr:g}", f"--batch {args.batch}"]
        if args.weight_decay is not None:
            parts.append(f"--weight-decay {args.weight_decay:g}")
    parts.append(f"--seed {args.seed} --threads {args.threads}")
    if args.split_seed:
        parts.append(f"--split-seed {args.split_seed}")
    if getattr(args, "device", "cpu") != "cpu":
        parts.append(f"--device {args.device}")
    return " ".join(parts)
