"""A tiny deterministic ONNX stand-in for the U-Net (tests and smoke runs; needs the ``onnx`` package).

It is a 1x1 convolution: on the normalised image ``x``, class logits are ``0`` (background),
``20 (x - 0.6)`` (body) and ``20 (0.3 - x)`` (disc). So bright regions become bodies and dark regions
discs; a phantom with bright blocks separated by dark strips on a mid-grey background segments exactly.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from neurospine.slice2d.segment import MODEL_NAME


def write_tiny_model(folder: str | Path) -> Path:
    """Write ``<MODEL_NAME>.onnx`` and its card into ``folder``; return the ONNX path."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    w = np.array([0.0, 20.0, -20.0], dtype=np.float32).reshape(3, 1, 1, 1)
    b = np.array([0.0, -12.0, 6.0], dtype=np.float32)
    node = helper.make_node("Conv", ["input", "W", "B"], ["output"], kernel_shape=[1, 1])
    graph = helper.make_graph(
        [node],
        "tiny_slice2d",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / f"{MODEL_NAME}.onnx"
    onnx.save(model, str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    card = {
        "name": MODEL_NAME,
        "version": "tiny-test",
        "task": "slice2d",
        "file": path.name,
        "sha256": sha,
        "notes": "deterministic 1x1-conv stand-in for tests; not a trained model",
    }
    (folder / f"{MODEL_NAME}.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return path


def phantom_plane(
    n_bodies: int = 4, body_rows: int = 24, disc_rows: int = 8, width: int = 36, shape: tuple[int, int] = (200, 120)
) -> tuple[np.ndarray, np.ndarray]:
    """Phantom image (bg 0.45, bodies 1.0, discs 0.1) and its semantic labels (1 body, 2 disc)."""
    img = np.full(shape, 0.45, np.float32)
    lab = np.zeros(shape, np.uint8)
    r = 20
    c0 = (shape[1] - width) // 2
    for i in range(n_bodies):
        img[r : r + body_rows, c0 : c0 + width] = 1.0
        lab[r : r + body_rows, c0 : c0 + width] = 1
        r += body_rows
        if i < n_bodies - 1:
            img[r : r + disc_rows, c0 : c0 + width] = 0.1
            lab[r : r + disc_rows, c0 : c0 + width] = 2
            r += disc_rows
    return img, lab
