"""Atomic, resumable training checkpoints (model + optimizer + step + free-form state)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (a crash never leaves a half-written file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "extra": extra or {},
        "rng_torch": torch.get_rng_state(),
    }
    torch.save(state, tmp)
    os.replace(tmp, target)
    return target


def load_checkpoint(
    path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
) -> tuple[int, dict[str, Any]]:
    """Restore model (and optimizer) state; return ``(step, extra)``. ``(0, {})`` if no file."""
    p = Path(path)
    if not p.is_file():
        return 0, {}
    state = torch.load(p, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if "rng_torch" in state:
        torch.set_rng_state(state["rng_torch"])
    return int(state["step"]), dict(state.get("extra", {}))
