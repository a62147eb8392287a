"""ONNX Runtime sessions with an explicit, fixed CPU thread count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neurospine.models.card import ModelCard
from neurospine.models.registry import weights_path

DEFAULT_THREADS = 2


def onnx_session(card: ModelCard, *, threads: int = DEFAULT_THREADS) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``card`` on the CPU with ``threads`` intra-op threads."""
    return session_for_file(weights_path(card), threads=threads)


def session_for_file(path: str | Path, *, threads: int = DEFAULT_THREADS) -> Any:
    """A CPU session for an ONNX file (no card, no checksum: for freshly exported models in a run folder)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
