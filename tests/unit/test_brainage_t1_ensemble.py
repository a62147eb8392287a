"""Merging raw-T1 brain-age networks into one ONNX ensemble graph."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.brainage.t1_ensemble import merge_parallel

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _member(path, scale: float) -> None:
    from onnx import TensorProto, helper, numpy_helper

    w = np.full((4, 25), scale, dtype=np.float32)
    node = helper.make_node("MatMul", ["mask", "w"], ["quantiles"])
    graph = helper.make_graph(
        [node],
        "member",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 2, 2, 2]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["passes", 4]),
        ],
        [helper.make_tensor_value_info("quantiles", TensorProto.FLOAT, ["passes", 25])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_merged_graph_stacks_member_passes(tmp_path):
    _member(tmp_path / "a.onnx", 1.0)
    _member(tmp_path / "b.onnx", 2.0)
    out = merge_parallel([tmp_path / "a.onnx", tmp_path / "b.onnx"], tmp_path / "ens.onnx")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image", "mask"]
    mask = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 1, 1]], dtype=np.float32)
    (q,) = sess.run(None, {"image": np.zeros((1, 1, 2, 2, 2), np.float32), "mask": mask})
    assert q.shape == (6, 25)
    np.testing.assert_allclose(q[:3, 0], mask.sum(1))  # member a, same masks
    np.testing.assert_allclose(q[3:, 0], 2 * mask.sum(1))  # member b, same masks
    assert not list(tmp_path.glob(".*tmp"))  # written atomically


def test_one_member_is_not_an_ensemble(tmp_path):
    _member(tmp_path / "a.onnx", 1.0)
    with pytest.raises(ValueError, match="at least two"):
        merge_parallel([tmp_path / "a.onnx"], tmp_path / "ens.onnx")
