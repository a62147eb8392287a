"""The spine trainer's fast path: batches drawn in worker processes, the network on any torch device.

Used when ``neurospine train spine`` gets ``--workers N`` or ``--device cuda``. Each worker owns a copy of the
sample mix (real cases, synthetic pool, painted label maps) with its own seeds and refreshes its pools itself,
so the training process only moves batches to the device and steps the optimiser. On CUDA the forward pass runs
in bfloat16 autocast; the loss is computed in float32. Training only (imports torch).
"""

from __future__ import annotations

import argparse
import copy
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from neurospine.spine import train_batches as T

log = logging.getLogger(__name__)


class _BatchStream(torch.utils.data.IterableDataset):
    """Endless batches; every worker draws from its own generator and its own pools."""

    def __init__(self, mix: T.SampleMix, args: argparse.Namespace, step0: int) -> None:
        self.mix = mix
        self.batch = int(args.batch)
        self.patch = int(args.patch)
        self.refresh = int(args.synth_refresh)
        self.seed = int(args.seed)
        self.step0 = step0
        self.synth_pool = int(args.synth_pool)
        self.paint_pool = int(args.labelmap_pool)

    def __iter__(self) -> Iterator[tuple[npt.NDArray[np.generic], ...]]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.step0, wid, 17])
        mix = copy.copy(self.mix)
        mix.pool = copy.copy(self.mix.pool)
        mix.pool.cases = list(self.mix.pool.cases)
        mix.pool.next_seed += 1_000_000 * (wid + 1)
        if mix.paint is not None:
            mix.paint = copy.copy(self.mix.paint)
            mix.paint.cases = list(self.mix.paint.cases)
            mix.paint.next_seed += 1_000_000 * (wid + 1)
            mix.paint.fill(self.paint_pool, rng)
        if self.mix.synth_fraction > 0 and T.synth_available():
            mix.pool.fill(self.synth_pool, rng)
        n = 0
        while True:
            yield T.draw_batch(rng, mix, self.batch, self.patch)
            n += 1
            mix.after_step(n, rng, self.refresh)


def run_fast(
    model: Any,
    opt: Any,
    mix: T.SampleMix,
    args: argparse.Namespace,
    step: int,
    elapsed: float,
    history: list[dict[str, Any]],
    init_note: str | None,
    ckpt: Path,
    cpu_s: float,
) -> tuple[int, float, float]:
    """Train until the budget is spent; returns (step, elapsed seconds, CPU seconds). Model ends on the CPU."""
    from neurospine.nn.checkpoint import save_checkpoint

    device = torch.device(args.device)
    use_amp = device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        _BatchStream(mix, args, step),
        batch_size=None,
        num_workers=max(0, int(args.workers)),
        pin_memory=use_amp,
        prefetch_factor=4 if args.workers > 0 else None,
        persistent_workers=args.workers > 0,
    )
    t_first = time.time()
    it = iter(loader)  # workers start (fork) before the process touches the GPU
    model.to(device)
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v):
                state[k] = v.to(device)
    if use_amp:
        torch.backends.cudnn.benchmark = True
    cpu_mark = time.process_time()
    last_ckpt = time.time()
    losses: list[float] = []
    model.train()
    t_wait = 0.0
    while not T.budget_spent(step, elapsed, args):
        t_step = time.time()
        x, t, member, dmask = (torch.as_tensor(a).to(device, non_blocking=True) for a in next(it))
        t_wait += time.time() - t_step
        lr = T.cosine_lr(args.lr, T.budget_used(step, elapsed, args), 1.0)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            logits = model(x)
        loss = T.group_loss(logits.float(), t, member, dmask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 50 == 0 or step == 1:
            losses.append(float(loss.item()))
            if step == 1:
                log.info("first batch after %.1f s (workers filling their pools)", time.time() - t_first)
        if step % 500 == 0:
            log.info(
                "step %d  loss %.4f  lr %.2e  %.1f min  data wait %.0f%%",
                step,
                float(np.mean(losses[-10:])),
                lr,
                elapsed / 60,
                100 * t_wait / max(elapsed, 1e-6),
            )
        elapsed += time.time() - t_step
        if time.time() - last_ckpt > 180:
            save_checkpoint(ckpt, model, opt, step, _extra(elapsed, cpu_s, cpu_mark, history, init_note, losses))
            last_ckpt = time.time()
    model.to("cpu")
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v):
                state[k] = v.to("cpu")
    cpu_s += time.process_time() - cpu_mark
    history.append({"step": step, "minutes": round(elapsed / 60, 1), "loss": float(np.mean(losses[-20:] or [0.0]))})
    save_checkpoint(
        ckpt, model, opt, step, {"elapsed_s": elapsed, "cpu_s": cpu_s, "history": history, "init": init_note}
    )
    log.info("trained %d steps in %.1f min (data wait %.0f%%)", step, elapsed / 60, 100 * t_wait / max(elapsed, 1e-6))
    return step, elapsed, cpu_s


def _extra(
    elapsed: float, cpu_s: float, cpu_mark: float, history: list[dict[str, Any]], init: str | None, losses: list[float]
) -> dict[str, Any]:
    return {
        "elapsed_s": elapsed,
        "cpu_s": cpu_s + time.process_time() - cpu_mark,
        "history": [*history, {"loss": float(np.mean(losses[-20:] or [0.0]))}],
        "init": init,
    }
