"""Training loop of the ``lowres`` raw-T1w recipe (see :mod:`neurospine.brainage.t1_lowres`); needs torch.

The epoch count is planned once from the CPU time of the first epochs and ``--minutes``; the last
:data:`t1_lowres.SWA_FRACTION` of epochs are averaged. ``<out>/ckpt.pt`` is written after every epoch
(weights, optimiser, averaged weights, state) and rerunning the command resumes. ``--wall-minutes``
stops early (the average then covers the epochs reached). VAL subjects are only monitored.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import numpy as np

from neurospine.brainage import t1_lowres as low

log = logging.getLogger(__name__)

PLAN_AFTER_EPOCHS = 3
VAL_EVERY = 5
DEFAULT_WEIGHT_DECAY = 0.05


def _val_pinball_low(model: Any, images: np.ndarray, y: np.ndarray, hidden: int, dropout_p: float) -> float:
    import torch

    from neurospine.brainage.t1_net import pinball_torch

    model.eval()
    keep = torch.full((1, 2 * hidden), 1.0 - dropout_p)
    with torch.no_grad():
        q = torch.cat([model.forward_low(torch.from_numpy(low.centre_low(im))[None, None], keep) for im in images])
        return float(pinball_torch(q, torch.from_numpy(y.astype(np.float32))))


def train_lowres(
    args: argparse.Namespace, cache: np.ndarray, tr: np.ndarray, va: np.ndarray, y_std: np.ndarray
) -> tuple[Any, dict[str, Any]]:
    """Train (or resume) and return the weight-averaged model (batch norm re-estimated) and the run state."""
    import torch

    from neurospine.brainage.t1_net import DROPOUT_P, HIDDEN, pinball_torch, precise_bn, random_mask

    wall0 = time.monotonic()
    lowc = np.stack([low.downsample2(c) for c in cache])  # padded 4 mm volumes
    model = low.build_lowres_model(args.width, HIDDEN, DROPOUT_P)
    wd = DEFAULT_WEIGHT_DECAY if args.weight_decay is None else args.weight_decay
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=wd)
    ckpt_path = args.out / "ckpt.pt"
    state: dict[str, Any] = {
        "epoch": 0,
        "cpu_s": 0.0,
        "planned": None,
        "history": [],
        "swa_n": 0,
        "swa_state": None,
        "best_epoch": -1,
        "recipe": "lowres",
    }
    from neurospine.nn import engine as E

    loaded = E.load_run_state(ckpt_path, model, opt)
    if loaded is not None:
        if loaded.get("recipe") != "lowres":
            raise ValueError(f"{ckpt_path} is not a lowres checkpoint; use another --out")
        state = loaded
        log.info("resumed at epoch %d (%.1f CPU min used)", state["epoch"], state["cpu_s"] / 60)
    trainer = E.Trainer(model, opt, pinball_torch, E.select_device(args.device), n_inputs=2, forward=model.forward_low)
    state["trained_on"] = E.device_note(trainer.device, args.threads)

    def make_batch(idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        x = np.stack([low.augment_lowres(lowc[i], rng) for i in idx])[:, None]
        return x, random_mask(len(idx), rng), y_std[idx]

    rng = np.random.default_rng(args.seed + 2000 + state["epoch"])
    budget_s = args.minutes * 60.0
    wall_s = None if args.wall_minutes is None else args.wall_minutes * 60.0
    while True:
        planned = state["planned"] or args.max_epochs
        if state["epoch"] >= planned or state["cpu_s"] >= budget_s:
            break
        if wall_s is not None and time.monotonic() - wall0 >= wall_s:
            log.warning("wall-time limit reached at epoch %d of %d", state["epoch"], planned)
            break
        t0 = time.process_time()
        losses = E.train_epoch(
            trainer, rng, tr, args.batch, make_batch, args.lr * low.lr_factor(state["epoch"], planned)
        )
        state["epoch"] += 1
        if state["epoch"] > low.swa_start_epoch(planned):
            cur = {k: v.detach().clone().float() for k, v in model.state_dict().items() if v.is_floating_point()}
            if state["swa_state"] is None:
                state["swa_state"] = cur
            else:
                n = state["swa_n"]
                for k, v in cur.items():
                    state["swa_state"][k] += (v - state["swa_state"][k]) / (n + 1)
            state["swa_n"] += 1
        vloss = float("nan")
        if state["epoch"] % VAL_EVERY == 0:
            vloss = _val_pinball_low(model, lowc[va], y_std[va], HIDDEN, DROPOUT_P)
        state["cpu_s"] += time.process_time() - t0
        if state["planned"] is None and state["epoch"] >= PLAN_AFTER_EPOCHS:
            per_epoch = state["cpu_s"] / state["epoch"]
            state["planned"] = int(min(args.max_epochs, max(state["epoch"] + 1, budget_s // max(per_epoch, 1e-3))))
        state["history"].append((state["epoch"], float(np.mean(losses)), vloss))
        log.info(
            "epoch %d/%s train %.4f val %.4f lr %.2e swa %d cpu %.1f min",
            state["epoch"],
            state["planned"],
            np.mean(losses),
            vloss,
            opt.param_groups[0]["lr"],
            state["swa_n"],
            state["cpu_s"] / 60,
        )
        E.save_run_state(ckpt_path, model, opt, state)
    if state["swa_state"] is not None:
        sd = model.state_dict()
        sd.update({k: v.to(sd[k].dtype) for k, v in state["swa_state"].items()})
        model.load_state_dict(sd)
    precise_bn(model, cache[tr])
    state["final_val_pinball"] = _val_pinball_low(model, lowc[va], y_std[va], HIDDEN, DROPOUT_P)
    log.info("averaged %d epochs; VAL pinball (z units) %.4f", state["swa_n"], state["final_val_pinball"])
    return model, state
