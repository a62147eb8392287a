"""Helpers for the spine tests: a lumbar phantom and a tiny intensity-threshold ONNX model.

The threshold model (a 1x1 convolution on the centre slice) labels normalised intensities
< 0.3 background, 0.3-0.6 disc, 0.6-0.8 corpus, > 0.8 sacrum, so the phantom's bodies, discs and sacrum
come out as those classes and the whole pipeline (instances, naming, outputs) runs on known anatomy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurospine.io import Volume, reorient
from neurospine.spine import classes as C
from tests.conftest import make_affine

BODY_MM = 25
DISC_MM = 8
N_BODIES = 5


def lumbar_phantom(axcodes: str = "RAS", lr_mm: float = 3.0) -> Volume:
    """5 bodies (bright 0.7), discs (0.45) between and below them, a sacrum (1.0) below; PIR built, then
    reoriented to ``axcodes``. The top of the field of view cuts nothing (no disc above L1)."""
    n_r = round(36 / lr_mm)
    data = np.full((90, 5 * (BODY_MM + DISC_MM) + 70, n_r), 0.1, dtype=np.float32)
    r0, r1 = n_r // 2 - round(15 / lr_mm), n_r // 2 + round(15 / lr_mm)
    row = 15
    for _ in range(N_BODIES):
        data[30:60, row : row + BODY_MM, r0:r1] = 0.7
        row += BODY_MM
        data[31:59, row : row + DISC_MM, r0:r1] = 0.45
        row += DISC_MM
    data[28:66, row : row + 45, r0 - 1 : r1 + 1] = 1.0
    pir = Volume(data, make_affine((1.0, 1.0, lr_mm), "PIR", origin=(10.0, -20.0, 5.0)))
    out, _ = reorient(pir, axcodes)
    return out


def save_conv1x1(path: Path, slope: np.ndarray, bias: np.ndarray) -> None:
    """A 1x1-convolution ONNX model (3 input channels -> ``slope.shape[0]`` logits) written to ``path``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], kernel_shape=[1, 1])
    graph = helper.make_graph(
        [node],
        "conv1x1",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", slope.shape[0], "h", "w"])],
        initializer=[numpy_helper.from_array(slope, "w"), numpy_helper.from_array(bias, "b")],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def write_threshold_model(folder: Path) -> None:
    """Write ``spine_semantic.onnx`` + card (tiny threshold model) into ``folder``."""
    from neurospine.models.registry import sha256_of

    slope = np.zeros((C.N_CLASSES, 3, 1, 1), dtype=np.float32)
    bias = np.full(C.N_CLASSES, -100.0, dtype=np.float32)
    for cls, a, b in ((C.BG, 0.0, 0.0), (C.DISC, 10.0, -3.0), (C.CORPUS, 20.0, -9.0), (C.SACRUM, 30.0, -17.0)):
        slope[cls, 1, 0, 0] = a
        bias[cls] = b
    save_conv1x1(folder / "spine_semantic.onnx", slope, bias)
    card = {
        "name": "spine_semantic",
        "version": "0.0.1-test",
        "task": "spine",
        "file": "spine_semantic.onnx",
        "sha256": sha256_of(folder / "spine_semantic.onnx"),
        "inputs": {"inplane_mm": 1.0},
    }
    (folder / "spine_semantic.json").write_text(json.dumps(card), encoding="utf-8")


def test_threshold_model_labels_phantom_intensities(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    write_threshold_model(tmp_path)
    sess = ort.InferenceSession(str(tmp_path / "spine_semantic.onnx"), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 1, 4), dtype=np.float32)
    x[0, 1, 0] = [0.1, 0.45, 0.7, 0.95]
    got = np.argmax(sess.run(None, {"input": x})[0], axis=1).ravel().tolist()
    assert got == [C.BG, C.DISC, C.CORPUS, C.SACRUM]


def test_partial_target_below_the_last_labelled_body_is_other_not_unknown():
    from neurospine.spine.data import IGNORE, partial_target

    lab = np.zeros((6, 40, 4), dtype=np.int16)
    lab[1:5, 5:10, :] = 1  # upper body
    lab[1:5, 14:19, :] = 2  # lowest labelled body (L5)
    plain = partial_target(lab)
    below = partial_target(lab, nothing_below=True)
    assert (plain[:, :5] == IGNORE).all() and (below[:, :5] == IGNORE).all()  # above: unlabelled T12
    assert (plain[2, 19:] == IGNORE).all()
    assert (below[2, 19:] == 1).all()  # L5-S1 disc and sacrum: not a vertebral body
    assert (below[2, 5:10] == 0).all() and (below[2, 10:14] == 1).all()
    assert (below[0, 19:] == 1).all()  # an unlabelled column, below every label
