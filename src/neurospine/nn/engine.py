"""One training engine for every ``neurospine train`` task (torch only; runtime code never imports it).

A task supplies four things and the engine does the rest:

- a **sampler**: ``sampler(rng) -> tuple of arrays`` (one batch: the model inputs, then the loss targets).
  In-process (``workers=0``, the default) it draws from the task's own generator, in exactly the order the
  task's former loop did, so a shipped model is reproduced bit for bit on a CPU. With ``--workers N`` it runs
  in N torch ``DataLoader`` worker processes, each with its own generator seeded ``[seed, step, worker]``
  (a different but still deterministic stream); ``make_worker_sampler`` lets a task give each worker its own
  copy of stateful pools.
- a **loss**: ``loss(outputs, *targets)``; outputs are cast to float32 first (the forward pass may run in
  bfloat16 autocast on CUDA, the loss never does).
- a **schedule** (:func:`cosine_lr`, by steps or by minutes: the fraction of the :class:`Budget` used).
- a **budget** (:class:`Budget`): steps, or minutes of CPU or wall-clock time, carried across resumes.

:func:`run_steps` trains until the budget is spent, writing :mod:`neurospine.nn.checkpoint` checkpoints every
few minutes; :class:`Trainer` is the single optimiser step that epoch-based tasks (brain age) call directly.
:func:`add_device_option` / :func:`select_device` give every task ``--device cpu|cuda``; :func:`export_with_card`
writes the ONNX file and its model card (:mod:`neurospine.nn.export`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from neurospine.errors import InputError

log = logging.getLogger(__name__)

Batch = tuple[npt.NDArray[Any], ...]
Sampler = Callable[[np.random.Generator], Batch]
DEVICES = ("cpu", "cuda")


# ---- device and seeds ---------------------------------------------------------------------------


def add_device_option(p: argparse.ArgumentParser, *, workers: bool = False) -> None:
    """``--device`` (and optionally ``--workers``) with the engine's help texts."""
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="torch device (cuda: bf16 autocast, loss in float32; cpu reproduces the shipped model)",
    )
    if workers:
        p.add_argument(
            "--workers",
            type=int,
            default=0,
            help="batch-drawing worker processes (0: in-process, the shipped models' exact sample order)",
        )


def select_device(name: str) -> torch.device:
    """The torch device for ``--device``; CUDA that is not there is a clear error, never a silent CPU run."""
    if name not in DEVICES:
        raise InputError(None, f"unknown --device {name!r}", "use --device cpu or --device cuda")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(None, "--device cuda but torch sees no CUDA device", "use --device cpu (or a CUDA build)")
    return torch.device(name)


def seed_all(seed: int) -> None:
    """Seed torch's global generator (network initialisation); numpy generators are passed explicitly."""
    torch.manual_seed(seed)


def device_note(device: torch.device, threads: int) -> str:
    """Where a model trained, for its card."""
    if device.type == "cuda":
        return f"trained on CUDA ({torch.cuda.get_device_name(device)}, bf16 autocast)"
    return f"trained on the CPU ({threads} torch threads)"


# ---- schedules and budgets ----------------------------------------------------------------------


def cosine_lr(base: float, frac: float, floor: float = 0.02) -> float:
    """Cosine decay from ``base`` to ``floor * base`` over ``frac`` in [0, 1] (steps or time used)."""
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


CLOCKS: dict[str, Callable[[], float]] = {
    "cpu": lambda: time.process_time(),
    "wall": lambda: time.time(),
}


@dataclass
class Budget:
    """When training stops and how far the schedule is: ``steps`` if given, else ``minutes`` of ``clock``.

    ``used_s`` is the clock time of earlier sessions (from the checkpoint); ``wall_minutes`` also stops this
    session after that much wall time, and the schedule then follows whichever budget runs out first (unless
    ``wall_in_schedule`` is False: then the wall limit only stops the run).
    """

    minutes: float | None = None
    clock: str = "wall"
    steps: int | None = None
    wall_minutes: float | None = None
    used_s: float = 0.0
    wall_in_schedule: bool = True
    _mark: float = field(default=0.0, repr=False)
    _wall_mark: float = field(default=0.0, repr=False)

    def start(self) -> None:
        self._mark = CLOCKS[self.clock]()
        self._wall_mark = time.monotonic()

    def seconds(self) -> float:
        """Clock seconds used, earlier sessions included."""
        return self.used_s + (CLOCKS[self.clock]() - self._mark)

    def fraction(self, step: int) -> float:
        if self.steps is not None:
            return step / self.steps
        frac = self.seconds() / (float(self.minutes or 0.0) * 60.0)
        if self.wall_minutes is not None and self.wall_in_schedule:
            frac = max(frac, (time.monotonic() - self._wall_mark) / (self.wall_minutes * 60.0))
        return frac

    def spent(self, step: int) -> bool:
        if self.steps is not None:
            return step >= self.steps
        if self.wall_minutes is not None and time.monotonic() - self._wall_mark >= self.wall_minutes * 60.0:
            return True
        return self.seconds() >= float(self.minutes or 0.0) * 60.0


# ---- data sources -------------------------------------------------------------------------------


class _WorkerStream(torch.utils.data.IterableDataset[Batch]):
    """Endless batches in DataLoader workers, each from its own sampler copy and generator."""

    def __init__(self, make_sampler: Callable[[int, np.random.Generator], Sampler], seed: int, step0: int) -> None:
        self.make_sampler = make_sampler
        self.seed = seed
        self.step0 = step0

    def __iter__(self) -> Iterator[Batch]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.step0, wid, 17])
        sampler = self.make_sampler(wid, rng)
        while True:
            yield sampler(rng)


def batches(
    sampler: Sampler,
    rng: np.random.Generator,
    *,
    workers: int = 0,
    seed: int = 0,
    step0: int = 0,
    make_worker_sampler: Callable[[int, np.random.Generator], Sampler] | None = None,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Endless batches: in-process from ``rng`` (workers=0) or from ``workers`` DataLoader processes."""
    if workers <= 0:

        def gen() -> Iterator[Batch]:
            while True:
                yield sampler(rng)

        return gen()
    loader = torch.utils.data.DataLoader(
        _WorkerStream(make_worker_sampler or (lambda _wid, _rng: sampler), seed, step0),
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4,
        persistent_workers=True,
    )
    return iter(loader)


# ---- one optimiser step -------------------------------------------------------------------------


class Trainer:
    """Model + optimiser on a device: ``step(batch, lr)`` is one forward/backward/update.

    ``n_inputs`` leading arrays of a batch go to the model (or to ``forward``, e.g. a bound method other than
    ``model.__call__``), the rest to ``loss_fn(outputs, *targets)``.
    On CUDA the forward pass runs in bfloat16 autocast and the loss is computed on float32 outputs.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        opt: torch.optim.Optimizer,
        loss_fn: Callable[..., torch.Tensor],
        device: torch.device | str = "cpu",
        *,
        n_inputs: int = 1,
        clip_norm: float | None = None,
        forward: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        self.model = model
        self.forward = forward or model
        self.opt = opt
        self.loss_fn = loss_fn
        self.device = torch.device(device)
        self.n_inputs = n_inputs
        self.clip_norm = clip_norm
        self.amp = self.device.type == "cuda"

    def to_device(self) -> None:
        _move(self.model, self.opt, self.device)
        if self.amp:
            torch.backends.cudnn.benchmark = True

    def to_cpu(self) -> None:
        _move(self.model, self.opt, torch.device("cpu"))

    def tensors(self, batch: Sequence[Any]) -> list[torch.Tensor]:
        nb = self.device.type == "cuda"
        return [torch.as_tensor(a).to(self.device, non_blocking=nb) for a in batch]

    def step(self, batch: Sequence[Any], lr: float | None = None) -> float:
        """One update; returns the loss value."""
        if lr is not None:
            for g in self.opt.param_groups:
                g["lr"] = lr
        t = self.tensors(batch)
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.forward(*t[: self.n_inputs])
        loss = self.loss_fn(out.float(), *t[self.n_inputs :])
        self.opt.zero_grad()
        loss.backward()
        if self.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.opt.step()
        return float(loss.detach().item())


def _move(model: torch.nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> None:
    model.to(device)
    for state in opt.state.values():
        for k, v in state.items():
            if torch.is_tensor(v) and k != "step":
                state[k] = v.to(device)


# ---- epochs -------------------------------------------------------------------------------------


def train_epoch(
    trainer: Trainer,
    rng: np.random.Generator,
    indices: npt.NDArray[np.integer[Any]],
    batch: int,
    make_batch: Callable[[npt.NDArray[np.integer[Any]], np.random.Generator], Batch],
    lr: float,
    *,
    min_batch: int = 2,
) -> list[float]:
    """One pass over ``indices`` in a random order (batches smaller than ``min_batch`` skipped); the losses.

    ``make_batch(idx, rng)`` builds the arrays of one batch. The model is on the trainer's device during the
    epoch and back on the CPU afterwards (for the task's own evaluation).
    """
    trainer.to_device()
    trainer.model.train()
    for g in trainer.opt.param_groups:
        g["lr"] = lr
    perm = rng.permutation(indices)
    losses = []
    for b in range(0, len(perm), batch):
        idx = perm[b : b + batch]
        if len(idx) < min_batch:
            continue
        losses.append(trainer.step(make_batch(idx, rng)))
    trainer.to_cpu()
    return losses


def load_run_state(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any] | None:
    """An epoch run's state from ``path`` (model and optimiser restored), or None when there is no file.

    Reads checkpoints written by :func:`save_run_state` and the ``{model, opt, state}`` files of the loops
    before the engine (brain-age runs), so those runs resume too.
    """
    from neurospine.nn.checkpoint import load_checkpoint

    if not path.is_file():
        return None
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if "opt" in ck:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        return dict(ck["state"])
    _step, extra = load_checkpoint(path, model, opt)
    return dict(extra["state"])


def save_run_state(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Checkpoint after an epoch (atomic; ``state``, with its ``epoch``, rides in the free-form part)."""
    from neurospine.nn.checkpoint import save_checkpoint

    save_checkpoint(path, model, opt, int(state["epoch"]), {"state": state})


# ---- the step loop ------------------------------------------------------------------------------


@dataclass
class Checkpointing:
    """Where and how often :func:`run_steps` saves; ``extra(step, budget)`` is the task's free-form state."""

    path: Path
    every_s: float = 180.0
    clock: str = "wall"
    extra: Callable[[int, Budget], dict[str, Any]] = lambda _step, _budget: {}


@dataclass
class RunResult:
    step: int
    losses: list[float]
    data_wait_s: float


def run_steps(
    trainer: Trainer,
    stream: Iterator[Batch],
    budget: Budget,
    *,
    lr: float,
    step: int = 0,
    checkpoint: Checkpointing | None = None,
    log_every: int = 20,
    floor: float = 0.02,
    on_step: Callable[[int, list[float], Budget], None] | None = None,
) -> RunResult:
    """Train until ``budget`` is spent (cosine learning rate over it), then save a final checkpoint.

    The model comes back on the CPU. Per step: read the budget, set the learning rate, draw a batch, update,
    then ``on_step(step, losses, budget)`` (monitoring, e.g. a validation every few minutes).
    """
    from neurospine.nn.checkpoint import save_checkpoint

    trainer.to_device()
    trainer.model.train()
    budget.start()
    last_ckpt = CLOCKS[checkpoint.clock]() if checkpoint else 0.0
    losses: list[float] = []
    wait = 0.0
    while not budget.spent(step):
        rate = cosine_lr(lr, budget.fraction(step), floor)
        t0 = time.monotonic()
        batch = next(stream)
        wait += time.monotonic() - t0
        losses.append(trainer.step(batch, rate))
        step += 1
        if step % log_every == 0 or step == 1:
            log.info(
                "step %d  loss %.4f  lr %.2e  %.1f min",
                step,
                float(np.mean(losses[-log_every:])),
                rate,
                budget.seconds() / 60,
            )
        if on_step is not None:
            on_step(step, losses, budget)
        if checkpoint is not None and CLOCKS[checkpoint.clock]() - last_ckpt >= checkpoint.every_s:
            save_checkpoint(checkpoint.path, trainer.model, trainer.opt, step, checkpoint.extra(step, budget))
            last_ckpt = CLOCKS[checkpoint.clock]()
    trainer.to_cpu()
    if checkpoint is not None:
        save_checkpoint(checkpoint.path, trainer.model, trainer.opt, step, checkpoint.extra(step, budget))
    log.info("trained to step %d (%.1f min of %s time)", step, budget.seconds() / 60, budget.clock)
    return RunResult(step, losses, wait)


# ---- export -------------------------------------------------------------------------------------


def export_with_card(
    model: torch.nn.Module, example: torch.Tensor, onnx_path: Path, card: dict[str, Any], **export_kw: Any
) -> str:
    """Export ``model`` (checked against torch), put its sha256 into ``card`` and write ``<name>.json`` beside it."""
    from neurospine.io import write_text_atomic
    from neurospine.nn.export import export_onnx

    model.to("cpu").eval()
    sha = export_onnx(model, example, onnx_path, **export_kw)
    card["sha256"] = sha
    write_text_atomic(onnx_path.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    return sha
