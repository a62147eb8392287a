"""Cord (and canal) soft segmentation of a whole volume with a 2D network on axial slices."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.cord.crop import (
    Detection,
    FloatArray,
    Predictor,
    block_mean,
    detect_cord,
    detection_from_canal,
    fine_factors,
    normalize_patch,
    predict_batched,
    sample_window,
    slab_average,
    window_for,
)
from neurospine.io import Volume, reorient
from neurospine.models.card import ModelCard

log = logging.getLogger(__name__)

MODEL_NAME = "cord_softseg"
#: smallest cord (mm^3) that counts as found; below it the tools report "no spinal cord found"
MIN_CORD_MM3 = 30.0
#: shortest cord (mm along the axial slice axis) that counts as a cord, unless the image is shorter
MIN_CORD_LENGTH_MM = 10.0
#: coarse detection components tried, heaviest first, until one gives a cord at least that long
DETECTION_TRIES = 3


@dataclass(frozen=True)
class SegmentOptions:
    """Inference geometry; defaults come from the model card's ``inputs``."""

    fine_spacing_mm: float = 0.5
    coarse_spacing_mm: float = 1.0
    window_mm: float = 36.0  # <= 0: no crop (whole slices)
    threshold: float = 0.5
    #: > 0: the fine pass sees each thin axial slice averaged over a slab this thick (mm) centred on it
    slab_mm: float = 0.0

    @classmethod
    def from_card(cls, card: ModelCard, **overrides: Any) -> SegmentOptions:
        keys = {f for f in cls.__dataclass_fields__}
        vals = {k: float(v) for k, v in card.inputs.items() if k in keys}
        vals.update({k: float(v) for k, v in overrides.items() if k in keys and v is not None})
        return cls(**vals)


@dataclass(frozen=True)
class CordSegmentation:
    """Soft cord and canal fractions plus binary masks, on the input grid."""

    cord_soft: FloatArray
    canal_soft: FloatArray
    cord_mask: npt.NDArray[np.uint8]
    canal_mask: npt.NDArray[np.uint8]
    detected_slices: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not bool(self.cord_mask.any())


def _sigmoid(x: npt.NDArray[np.floating]) -> FloatArray:
    return (0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float32)))).astype(np.float32)


def onnx_predictor(session: Any) -> Predictor:
    """Wrap an ONNX Runtime session whose output holds logits (N, C, H, W) into a probability predictor."""
    name = session.get_inputs()[0].name

    def predict(batch: FloatArray) -> FloatArray:
        logits = session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return _sigmoid(logits)

    return predict


def _largest_component(mask: npt.NDArray[np.bool_], weights: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return mask
    mass = ndimage.sum_labels(weights, labels, index=np.arange(1, n + 1))
    return labels == (int(np.argmax(mass)) + 1)


#: canal pieces separated by a gap of about this length along the slice axis count as connected
CANAL_GAP_MM = 3.0


def _bridge_slices(mask: npt.NDArray[np.bool_], slice_mm: float) -> npt.NDArray[np.bool_]:
    """``mask`` dilated along the last (slice) axis by ``reach`` slices on each side, so that pieces with up
    to ``2 * reach`` missing slices between them touch, ``reach = max(1, floor(CANAL_GAP_MM / (2 * slice)))``:
    gaps up to 2 mm at 1 mm slices, 3 mm at 0.5 or 1.5 mm; thick slices: two missing slices at most."""
    reach = max(1, int(CANAL_GAP_MM / (2.0 * max(slice_mm, 1e-6)) + 1e-6))
    line = np.ones((1, 1, 2 * reach + 1), dtype=bool)
    return np.asarray(ndimage.binary_dilation(mask, structure=line), dtype=bool)


def segment_volume(
    image: Volume,
    predict: Predictor,
    options: SegmentOptions | None = None,
    *,
    canal_guide: npt.NDArray[np.bool_] | None = None,
    cord_test: Callable[[npt.NDArray[np.bool_]], str | None] | None = None,
) -> CordSegmentation:
    """Detect the cord, segment it slice by slice in a window around it, return results on the input grid.

    ``canal_guide`` (a spinal-canal mask on the input grid, e.g. the spine model's) replaces the coarse
    detection pass: the windows are centred on the canal (:func:`detection_from_canal`). ``cord_test`` says why
    a cord (mask on the RAS grid) is not the cord (``None``: it may be), e.g. a cord off a head's midline
    (:mod:`neurospine.cord.headmidline`); like a cord too short, a rejected one makes the detection try its next
    components, and is recorded in ``extra["rejected"]``."""
    opt = options or SegmentOptions()
    ras, record = reorient(image, "RAS")
    data = np.asarray(ras.data, dtype=np.float32)
    sp = ras.spacing_mm
    crop = opt.window_mm > 0
    guide = None
    if canal_guide is not None and np.shape(canal_guide) != image.shape:
        raise ValueError(f"canal_guide has shape {np.shape(canal_guide)}, the image {image.shape}")
    if canal_guide is not None and np.any(canal_guide):
        guide = np.asarray(reorient(image.with_data(np.asarray(canal_guide, dtype=np.uint8)), "RAS")[0].data) > 0
    det: Detection
    if crop and guide is not None:
        det = detection_from_canal(guide)
    elif crop:
        det = detect_cord(data, sp, predict, coarse_spacing_mm=opt.coarse_spacing_mm, threshold=opt.threshold)
    else:  # no crop: the fine pass covers whole slices (slower; kept to measure what cropping saves)
        z = data.shape[2]
        mid = np.tile([(data.shape[0] - 1) / 2.0, (data.shape[1] - 1) / 2.0], (z, 1))
        det = Detection(mid, np.ones(z, dtype=bool), np.zeros((0, 0, 0), np.float32))
    # the canal-guided pass follows the spine model's canal: its cord is judged by the canal check instead
    judged = not (crop and guide is not None)

    def rejected(mask: npt.NDArray[np.bool_]) -> str:
        if not judged or not mask.any():
            return ""
        if not long_enough(mask, sp[2]):
            length = cord_length_mm(mask, sp[2])
            return f"the cord found is {length:.0f} mm long, under {MIN_CORD_LENGTH_MM:.0f} mm: not a cord"
        return (cord_test(mask) or "") if cord_test is not None else ""

    cord, canal, cord_bin, canal_bin = _fine_pass(data, sp, det, predict, opt, crop)
    why = rejected(cord_bin)
    tries = 1
    if why and crop:  # no-crop mode has no coarse components to try
        # a cord a few millimetres long, or one the cord test rejects (an eyeball on a head MRI), is not the cord:
        # the heaviest coarse component was something else; the next ones are tried (docs/decisions/
        # cord-min-length.md, cord-head-midline.md). A first pass without cord is left to the canal check.
        for rank in range(1, DETECTION_TRIES):
            other = detect_cord(
                data,
                sp,
                predict,
                threshold=opt.threshold,
                rank=rank,
                coarse=det.coarse,
                coarse_spacing_mm=opt.coarse_spacing_mm,
            )
            if not other.any:
                break
            tries += 1
            result = _fine_pass(data, sp, other, predict, opt, crop)
            if result[2].any() and not rejected(result[2]):
                det, (cord, canal, cord_bin, canal_bin), why = other, result, ""
                break
    return CordSegmentation(
        cord_soft=record.undo(np.clip(cord, 0.0, 1.0)).astype(np.float32),
        canal_soft=record.undo(np.clip(canal, 0.0, 1.0)).astype(np.float32),
        cord_mask=record.undo(cord_bin.astype(np.uint8)).astype(np.uint8),
        canal_mask=record.undo(canal_bin.astype(np.uint8)).astype(np.uint8),
        detected_slices=int(det.found.sum()),
        extra={
            "coarse_prob_max": float(det.coarse_prob.max()) if det.coarse_prob.size else 0.0,
            "cropped": crop,
            "canal_guided": guide is not None and crop,
            "detection_tries": tries,
            "cord_length_mm": cord_length_mm(cord_bin, sp[2]),
            "long_enough": not judged or long_enough(cord_bin, sp[2]),
            "rejected": why,
        },
    )


def cord_length_mm(cord_bin: npt.NDArray[np.bool_], slice_mm: float) -> float:
    """Length of a cord mask (RAS grid) along the axial slice axis: slices holding cord x slice spacing."""
    return float(np.count_nonzero(np.asarray(cord_bin).any(axis=(0, 1)))) * float(slice_mm)


def long_enough(cord_bin: npt.NDArray[np.bool_], slice_mm: float) -> bool:
    """Whether a cord mask (RAS grid) is at least :data:`MIN_CORD_LENGTH_MM` long, or as long as the image
    along the slice axis when the image is shorter (a single axial slice can hold a whole cord section)."""
    field_mm = float(np.shape(cord_bin)[2]) * float(slice_mm)
    return cord_length_mm(cord_bin, slice_mm) >= min(MIN_CORD_LENGTH_MM, field_mm) - 1e-6


def _fine_pass(
    data: FloatArray,
    sp: tuple[float, float, float],
    det: Detection,
    predict: Predictor,
    opt: SegmentOptions,
    crop: bool,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Cord and canal probabilities of windows centred on ``det``'s centres on every slice, then the cord's
    largest component and the canal pieces that belong to it: (cord, canal, cord mask, canal mask), RAS grid."""
    cord = np.zeros(data.shape, dtype=np.float32)
    canal = np.zeros(data.shape, dtype=np.float32)
    if det.any:
        fine_input = slab_average(data, sp[2], opt.slab_mm)  # unchanged unless slices are thinner
        factors = fine_factors((sp[0], sp[1]), opt.fine_spacing_mm)
        patches, windows = [], []
        # every slice gets the fine pass (centres extrapolated beyond the detected range): a partial
        # detection must not cut the cord short; false positives are removed by the component filter
        k_lo, k_hi = 0, data.shape[2]
        for k in range(k_lo, k_hi):
            if crop:
                centre = (float(det.centres_px[k, 0]), float(det.centres_px[k, 1]))
                start, size = window_for(centre, (sp[0], sp[1]), opt.window_mm)
            else:
                start, size = (0, 0), (data.shape[0], data.shape[1])
            patches.append(normalize_patch(sample_window(fine_input[:, :, k], start, size, factors)))
            windows.append((start, size))
        probs = predict_batched(predict, patches, batch=16 if crop else 2)
        for k, prob, (start, size) in zip(range(k_lo, k_hi), probs, windows, strict=True):
            native = block_mean(prob, factors)  # (C, size0, size1)
            x0, y0 = max(0, start[0]), max(0, start[1])
            x1, y1 = min(data.shape[0], start[0] + size[0]), min(data.shape[1], start[1] + size[1])
            if x1 <= x0 or y1 <= y0:
                continue
            sub = native[:, x0 - start[0] : x1 - start[0], y0 - start[1] : y1 - start[1]]
            cord[x0:x1, y0:y1, k] = sub[0]
            if sub.shape[0] > 1:
                canal[x0:x1, y0:y1, k] = sub[1]
    cord_bin = cord >= opt.threshold
    if cord_bin.any():
        cord_bin = _largest_component(cord_bin, cord)
        support = ndimage.binary_dilation(cord_bin, structure=np.ones((5, 5, 3), dtype=bool))
        cord = np.where(support, cord, 0.0).astype(np.float32)
    canal_bin = (canal >= opt.threshold) | cord_bin
    if canal_bin.any() and cord_bin.any():
        # canal pieces separated from the cord's canal by a short gap along the cord (a slice or two the
        # network missed, e.g. around the conus; see _bridge_slices) still belong to it
        labels, _ = ndimage.label(_bridge_slices(canal_bin, sp[2]), structure=np.ones((3, 3, 3), dtype=bool))
        keep = np.unique(labels[cord_bin])
        canal_bin = canal_bin & np.isin(labels, keep[keep > 0])
    elif not cord_bin.any():
        canal_bin = _largest_component(canal_bin, canal) if canal_bin.any() else canal_bin
    return cord, canal, cord_bin, canal_bin
