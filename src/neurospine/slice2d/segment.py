"""Semantic segmentation of one canonical 2D plane with the shipped ONNX U-Net.

Outline calibration: the model card may carry per-modality logit offsets in ``inputs.logit_bias``
(``{modality: {class name: offset}}``, fitted on the real training slices by
:mod:`neurospine.slice2d.calibration`). They are added to the logits before the softmax, so the
probabilities and the labels move together; a modality or class that is absent gets 0.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.inference.offsets import logit_offsets
from neurospine.slice2d.io2d import MODEL_PIXEL_MM, Plane2D, model_shape, resize2d
from neurospine.slice2d.normalize import normalize_image

log = logging.getLogger(__name__)

MODEL_NAME = "slice2d_unet"
SIZE_MULTIPLE = 16
#: Refuse planes that would exceed this many model pixels per side (memory guard).
MAX_MODEL_SIDE = 1024
#: network output channels, in order (the card's ``labels``)
CLASS_NAMES: tuple[str, ...] = ("background", "vertebral_body", "intervertebral_disc")


@dataclass(frozen=True)
class Semantic2D:
    """Class probabilities (3, H, W) and labels (0 bg, 1 body, 2 disc) on the plane's own grid."""

    probs: npt.NDArray[np.float32]
    labels: npt.NDArray[np.uint8]


def softmax(x: npt.NDArray[np.float32], axis: int = 0) -> npt.NDArray[np.float32]:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def bias_vector(spec: Mapping[str, float] | None) -> npt.NDArray[np.float32] | None:
    """Per-channel offsets from ``{class name: offset}`` (None when empty or all zero)."""
    out = logit_offsets(spec, CLASS_NAMES)
    return out if out is not None and np.any(out != 0) else None


def card_logit_bias(inputs: Mapping[str, Any], modality: str) -> dict[str, float]:
    """The offsets of ``modality`` in a card's ``inputs`` (``logit_bias``; absent modality -> {})."""
    spec = inputs.get("logit_bias") or {}
    per_modality = spec.get(modality) or {}
    return {str(k): float(v) for k, v in per_modality.items()}


def model_logits(session: Any, image01: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Logits (3, H, W) for an image already on the model grid and in [0, 1]."""
    h, w = image01.shape
    ph, pw = (-h) % SIZE_MULTIPLE, (-w) % SIZE_MULTIPLE
    x = np.pad(image01, ((0, ph), (0, pw)), mode="constant")[None, None].astype(np.float32)
    name = session.get_inputs()[0].name
    logits = np.asarray(session.run(None, {name: x})[0][0], dtype=np.float32)
    return logits[:, :h, :w]


def predict_model_grid(session: Any, image01: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Probabilities (3, H, W) for an image already on the model grid and in [0, 1] (no calibration)."""
    return softmax(model_logits(session, image01))


def plane_logits(session: Any, plane: Plane2D, modality: str) -> npt.NDArray[np.float32]:
    """Normalise, resample to ``MODEL_PIXEL_MM`` and predict: logits (3, h, w) on the model grid."""
    shape = model_shape(plane.shape, plane.spacing_mm, MODEL_PIXEL_MM)
    if max(shape) > MAX_MODEL_SIDE:
        shape = (
            max(16, int(shape[0] * MAX_MODEL_SIDE / max(shape))),
            max(16, int(shape[1] * MAX_MODEL_SIDE / max(shape))),
        )
    img = resize2d(normalize_image(plane.pixels, modality), shape, order=1).astype(np.float32)
    return model_logits(session, img)


def semantic_from_logits(
    logits: npt.NDArray[np.float32],
    plane_shape: tuple[int, int],
    logit_bias: Mapping[str, float] | None = None,
) -> Semantic2D:
    """Add the class offsets, softmax, and bring the probabilities back to the plane grid."""
    bias = bias_vector(logit_bias)
    x = logits if bias is None else logits + bias[:, None, None]
    probs = resize2d(softmax(x), plane_shape, order=1).astype(np.float32)
    return Semantic2D(probs, np.argmax(probs, axis=0).astype(np.uint8))


def segment_plane(
    session: Any, plane: Plane2D, modality: str, logit_bias: Mapping[str, float] | None = None
) -> Semantic2D:
    """Segment one plane; ``logit_bias`` ({class name: offset}, e.g. from :func:`card_logit_bias`)
    is added to the logits before the softmax."""
    return semantic_from_logits(plane_logits(session, plane, modality), plane.shape, logit_bias)
