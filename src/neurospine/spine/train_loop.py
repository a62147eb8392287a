"""The spine trainer's loop on the one training engine (:mod:`neurospine.nn.engine`).

In-process (``--workers 0``, the default) batches come from the run's own generator and sample mix, in the
order the former loop drew them, so ``neurospine train spine`` on a CPU reproduces the shipped model. With
``--workers N`` each DataLoader worker owns a copy of the sample mix (real cases, synthetic pool, painted
label maps) with its own seeds and refreshes its pools itself. ``--device cuda`` runs the forward pass in
bfloat16 autocast; the loss is computed in float32. Training only (imports torch).
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurospine.nn import engine as E
from neurospine.spine import data as D
from neurospine.spine import train_batches as T

log = logging.getLogger(__name__)


def mix_sampler(mix: T.SampleMix, args: argparse.Namespace, step0: int) -> E.Sampler:
    """``rng -> batch``; the pools are refreshed after every batch as the step count asks."""
    n = step0

    def draw(rng: np.random.Generator) -> E.Batch:
        nonlocal n
        batch = T.draw_batch(rng, mix, int(args.batch), int(args.patch))
        n += 1
        mix.after_step(n, rng, int(args.synth_refresh))
        return batch

    return draw


def worker_mix(mix: T.SampleMix, args: argparse.Namespace, wid: int, rng: np.random.Generator) -> T.SampleMix:
    """A worker's own copy of the mix: other synthetic/painted seeds, pools filled from its generator."""
    own = copy.copy(mix)
    own.pool = copy.copy(mix.pool)
    own.pool.cases = list(mix.pool.cases)
    own.pool.next_seed += 1_000_000 * (wid + 1)
    if own.paint is not None:
        own.paint = copy.copy(mix.paint)
        own.paint.cases = list(mix.paint.cases)
        own.paint.next_seed += 1_000_000 * (wid + 1)
        own.paint.fill(int(args.labelmap_pool), rng)
    if mix.synth_fraction > 0 and T.synth_available():
        own.pool.fill(int(args.synth_pool), rng)
    return own


def run(
    model: Any,
    opt: Any,
    mix: T.SampleMix,
    args: argparse.Namespace,
    rng: np.random.Generator,
    step: int,
    state: dict[str, Any],
    ckpt: Path,
    monitor: list[D.EvalCase],
    validate: Callable[[Any, list[D.EvalCase]], dict[str, float]],
) -> tuple[int, float, float]:
    """Train until the budget is spent; returns (step, elapsed seconds, CPU seconds). Model ends on the CPU.

    ``state`` holds ``elapsed_s``, ``cpu_s``, ``history`` and ``init`` from the checkpoint and the run's ``recipe``
    (saved with each checkpoint, checked on resume); ``validate`` on
    ``monitor`` (CPU only, every ``--validate-every`` minutes) is monitoring, never model selection.
    """
    device = E.select_device(args.device)
    trainer = E.Trainer(model, opt, T.group_loss, device, clip_norm=5.0)
    budget = E.Budget(minutes=args.minutes, clock="wall", steps=args.steps, used_s=float(state["elapsed_s"]))
    cpu0, cpu_mark = float(state["cpu_s"]), time.process_time()
    history: list[dict[str, Any]] = state["history"]
    last_val = time.time()

    def extra(_step: int, b: E.Budget) -> dict[str, Any]:
        cpu = cpu0 + time.process_time() - cpu_mark
        return {
            "elapsed_s": b.seconds(),
            "cpu_s": cpu,
            "history": history,
            "init": state["init"],
            "recipe": state.get("recipe"),
        }

    def monitor_step(step_now: int, losses: list[float], b: E.Budget) -> None:
        nonlocal last_val
        if monitor and device.type == "cpu" and time.time() - last_val > args.validate_every * 60:
            scores = validate(model, monitor)
            entry = {"step": step_now, "minutes": round(b.seconds() / 60, 1), "loss": float(np.mean(losses[-100:]))}
            history.append({**entry, **scores})
            log.info("validation (monitoring only, not used for selection): %s", scores)
            last_val = time.time()

    stream = E.batches(
        mix_sampler(mix, args, step),
        rng,
        workers=int(args.workers),
        seed=int(args.seed),
        step0=step,
        make_worker_sampler=lambda wid, wrng: mix_sampler(worker_mix(mix, args, wid, wrng), args, step),
        pin_memory=device.type == "cuda",
    )
    result = E.run_steps(
        trainer,
        stream,
        budget,
        lr=args.lr,
        step=step,
        checkpoint=E.Checkpointing(ckpt, every_s=180.0, extra=extra),
        log_every=50,
        on_step=monitor_step,
    )
    history.append({"step": result.step, "minutes": round(budget.seconds() / 60, 1), "loss": _recent(result.losses)})
    return result.step, budget.seconds(), cpu0 + time.process_time() - cpu_mark


def _recent(losses: list[float]) -> float:
    return float(np.mean(losses[-20:] or [0.0]))
