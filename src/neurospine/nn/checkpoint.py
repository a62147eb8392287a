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


def load_weights_from_onnx(path: str | Path, model: nn.Module) -> int:
    """Warm-start ``model`` from an ONNX file exported from the same architecture.

    The exporter keeps parameter names as initializer names, so a shipped model can seed a fine-tuning
    run even when its training checkpoint is gone. Every parameter and buffer must be found with the
    right shape; returns the number of tensors loaded.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    found = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    state = model.state_dict()
    missing = [k for k, v in state.items() if k not in found or tuple(found[k].shape) != tuple(v.shape)]
    if missing:
        raise ValueError(f"{path}: {len(missing)} tensors missing or of another shape (first: {missing[0]})")
    model.load_state_dict({k: torch.from_numpy(found[k].copy()) for k in state})
    return len(state)


def average_weights_from_onnx(path: str | Path, model: nn.Module, weight: float) -> int:
    """Move every tensor of ``model`` to ``(1 - weight) * itself + weight * the same tensor of the ONNX model at
    ``path`` (same architecture): a weight-space average of two networks on one training path (e.g. a model and its
    fine-tuned version). Integer buffers are left as they are. Returns the number of tensors averaged."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"average weight must lie in [0, 1], got {weight}")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    load_weights_from_onnx(path, model)
    theirs = model.state_dict()
    mixed = {k: ((1.0 - weight) * v + weight * theirs[k]) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(mixed)
    return sum(1 for v in state.values() if v.is_floating_point())
