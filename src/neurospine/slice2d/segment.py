"""Semantic segmentation of one canonical 2D plane with the shipped ONNX U-Net."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.slice2d.io2d import MODEL_PIXEL_MM, Plane2D, model_shape, resize2d
from neurospine.slice2d.normalize import normalize_image

log = logging.getLogger(__name__)

MODEL_NAME = "slice2d_unet"
SIZE_MULTIPLE = 16
#: Refuse planes that would exceed this many model pixels per side (memory guard).
MAX_MODEL_SIDE = 1024


@dataclass(frozen=True)
class Semantic2D:
    """Class probabilities (3, H, W) and labels (0 bg, 1 body, 2 disc) on the plane's own grid."""

    probs: npt.NDArray[np.float32]
    labels: npt.NDArray[np.uint8]


def softmax(x: npt.NDArray[np.float32], axis: int = 0) -> npt.NDArray[np.float32]:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def predict_model_grid(session: Any, image01: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Probabilities (3, H, W) for an image already on the model grid and in [0, 1]."""
    h, w = image01.shape
    ph, pw = (-h) % SIZE_MULTIPLE, (-w) % SIZE_MULTIPLE
    x = np.pad(image01, ((0, ph), (0, pw)), mode="constant")[None, None].astype(np.float32)
    name = session.get_inputs()[0].name
    logits = session.run(None, {name: x})[0][0]
    return softmax(logits[:, :h, :w])


def segment_plane(session: Any, plane: Plane2D, modality: str) -> Semantic2D:
    """Normalise, resample to ``MODEL_PIXEL_MM``, predict, and bring probabilities back to the plane grid."""
    shape = model_shape(plane.shape, plane.spacing_mm, MODEL_PIXEL_MM)
    if max(shape) > MAX_MODEL_SIDE:
        shape = (
            max(16, int(shape[0] * MAX_MODEL_SIDE / max(shape))),
            max(16, int(shape[1] * MAX_MODEL_SIDE / max(shape))),
        )
    img = resize2d(normalize_image(plane.pixels, modality), shape, order=1).astype(np.float32)
    probs_m = predict_model_grid(session, img)
    probs = resize2d(probs_m, plane.shape, order=1).astype(np.float32)
    return Semantic2D(probs, np.argmax(probs, axis=0).astype(np.uint8))
