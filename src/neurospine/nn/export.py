"""ONNX export with a dynamic batch and spatial size, checked against torch."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    dynamic_spatial: bool = True,
    check_tolerance: float = 1e-3,
    opset: int = 17,
) -> str:
    """Export ``model`` (in eval mode) to ``path`` atomically; return the file's sha256.

    The export is verified with ONNX Runtime on a seeded random tensor of ``example``'s shape (a
    constant example would make instance-norm outputs ill-conditioned): the maximum absolute
    difference to the torch output must stay under ``check_tolerance``.
    """
    import onnxruntime as ort

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    model = model.eval()
    axes: dict[int, str] = {0: "batch"}
    if dynamic_spatial:
        for i in range(2, example.ndim):
            axes[i] = f"s{i - 2}"
    check = torch.randn(example.shape, generator=torch.Generator().manual_seed(0), dtype=example.dtype)
    with torch.no_grad():
        expected = model(check).numpy()
        torch.onnx.export(
            model,
            (example,),
            str(tmp),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": axes},
            opset_version=opset,
            dynamo=False,
        )
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": check.numpy()})[0]
    diff = float(np.max(np.abs(got - expected)))
    if diff > check_tolerance:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"ONNX export differs from torch by {diff:.3g} (> {check_tolerance})")
    log.info("exported %s (max |onnx - torch| = %.2e)", target, diff)
    os.replace(tmp, target)
    return hashlib.sha256(target.read_bytes()).hexdigest()
