"""Slice geometry for 2D axial inference: resampling a slice, cord detection, crop windows.

Inference works on the image reoriented to RAS (an exact permutation), one axial slice (axes 0, 1)
at a time. Two passes share one network:

1. *detection*: every slice resampled to ``coarse_spacing_mm`` over the whole field of view; the
   largest connected 3D cord component gives a cord centre per slice (interpolated where missing);
2. *segmentation*: a window of ``window_mm`` around that centre, upsampled by an integer factor per
   axis so fine pixels nest exactly inside native pixels. Predictions are brought back to the
   native grid by block averaging, which preserves partial-volume fractions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

FloatArray = npt.NDArray[np.float32]
#: ``predict(batch (N, 1, H, W) float32) -> probabilities (N, C, H, W)`` with H, W multiples of 16.
Predictor = Callable[[FloatArray], FloatArray]
MULTIPLE = 8  # three 2x poolings in the U-Net


def normalize_patch(img: npt.ArrayLike, low: float = 1.0, high: float = 99.0) -> FloatArray:
    """Percentile scaling of one 2D patch to about [0, 1] (the same rule as in training)."""
    a = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(a, [low, high])
    if hi - lo < 1e-6:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), -0.2, 1.2).astype(np.float32)


def pad_to_multiple(a: FloatArray, multiple: int = MULTIPLE) -> tuple[FloatArray, tuple[int, int]]:
    """Edge-pad the last two axes up to multiples of ``multiple``; return padded array and original size."""
    h, w = a.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        pad = [(0, 0)] * (a.ndim - 2) + [(0, ph), (0, pw)]
        a = np.pad(a, pad, mode="edge")
    return a, (h, w)


def fine_factors(spacing_mm: tuple[float, float], target_mm: float) -> tuple[int, int]:
    """Integer upsampling per in-plane axis so the fine spacing is close to ``target_mm``."""
    return (max(1, round(spacing_mm[0] / target_mm)), max(1, round(spacing_mm[1] / target_mm)))


def sample_window(
    slice2d: npt.NDArray[np.floating], start: tuple[int, int], size: tuple[int, int], factors: tuple[int, int]
) -> FloatArray:
    """Linear samples of ``slice2d`` on the fine grid of the native window ``start``..``start+size``."""
    fx, fy = factors
    xs = start[0] + (np.arange(size[0] * fx) + 0.5) / fx - 0.5
    ys = start[1] + (np.arange(size[1] * fy) + 0.5) / fy - 0.5
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    out = ndimage.map_coordinates(np.asarray(slice2d, dtype=np.float32), [gx, gy], order=1, mode="nearest")
    return out.astype(np.float32)


def slab_weights(spacing_mm: float, slab_mm: float) -> FloatArray:
    """Weights over neighbouring slices ``-n..n`` that average a slab ``slab_mm`` thick centred on a slice.

    Each native slice covers ``[j*s - s/2, j*s + s/2]``; its weight is its overlap with
    ``[-slab/2, slab/2]``, normalised to sum 1. A slab no thicker than one slice gives ``[1.0]``.
    """
    if spacing_mm <= 0:
        raise ValueError(f"slice spacing must be positive, got {spacing_mm}")
    half = 0.5 * max(slab_mm, spacing_mm)
    n = math.ceil(half / spacing_mm - 0.5 - 1e-9)
    j = np.arange(-n, n + 1, dtype=np.float64)
    lo = np.maximum(j * spacing_mm - 0.5 * spacing_mm, -half)
    hi = np.minimum(j * spacing_mm + 0.5 * spacing_mm, half)
    w = np.clip(hi - lo, 0.0, None)
    return (w / w.sum()).astype(np.float32)


def slab_average(data: npt.NDArray[np.floating], spacing_mm: float, slab_mm: float) -> FloatArray:
    """Each axial slice (last axis) replaced by the mean of a ``slab_mm`` slab centred on it (edges replicated).

    Inputs whose slices are already ``slab_mm`` or more apart are returned unchanged (as float32).
    """
    a = np.asarray(data, dtype=np.float32)
    w = slab_weights(spacing_mm, slab_mm)
    if w.size == 1:
        return a
    return ndimage.correlate1d(a, w, axis=-1, mode="nearest").astype(np.float32)


def block_mean(fine: FloatArray, factors: tuple[int, int]) -> FloatArray:
    """Average ``(C, H*fx, W*fy)`` blocks back to ``(C, H, W)``."""
    fx, fy = factors
    c, h, w = fine.shape
    return fine.reshape(c, h // fx, fx, w // fy, fy).mean(axis=(2, 4)).astype(np.float32)


def resample_slice(slice2d: npt.NDArray[np.floating], spacing_mm: tuple[float, float], target_mm: float) -> FloatArray:
    """Resample a whole slice to isotropic ``target_mm`` (field of view kept)."""
    shape = (
        max(1, round(slice2d.shape[0] * spacing_mm[0] / target_mm)),
        max(1, round(slice2d.shape[1] * spacing_mm[1] / target_mm)),
    )
    xs = (np.arange(shape[0]) + 0.5) * (slice2d.shape[0] / shape[0]) - 0.5
    ys = (np.arange(shape[1]) + 0.5) * (slice2d.shape[1] / shape[1]) - 0.5
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    return ndimage.map_coordinates(np.asarray(slice2d, dtype=np.float32), [gx, gy], order=1, mode="nearest")


def predict_batched(predict: Predictor, patches: list[FloatArray], batch: int = 16) -> list[FloatArray]:
    """Run ``predict`` on same-shape 2D patches in batches; returns (C, H, W) per patch."""
    out: list[FloatArray] = []
    for i in range(0, len(patches), batch):
        chunk = np.stack(patches[i : i + batch])[:, None]
        padded, (h, w) = pad_to_multiple(chunk)
        prob = predict(padded)
        out.extend(list(prob[:, :, :h, :w]))
    return out


@dataclass(frozen=True)
class Detection:
    """Cord centre per slice in native pixel coordinates (``nan`` rows never happen after filling)."""

    centres_px: npt.NDArray[np.float64]  # (Z, 2)
    found: npt.NDArray[np.bool_]  # (Z,) slice had cord in the detection pass
    coarse_prob: FloatArray  # (Zd, Hc, Wc) cord probability at coarse spacing on the detection slices
    slice_step: int = 1  # detection ran on every ``slice_step``-th slice
    #: the coarse pass's output (cord, canal, slice indices), to try another component without a second pass
    coarse: tuple[FloatArray, FloatArray | None, npt.NDArray[np.intp]] | None = None

    @property
    def any(self) -> bool:
        return bool(self.found.any())


def detection_from_canal(canal: npt.NDArray[np.bool_]) -> Detection:
    """Cord centres from a spinal-canal mask given by another model (RAS grid, axial slices on axis 2): the
    canal's centroid on every slice that holds it, interpolated between those slices and held constant beyond
    them. Used when the coarse detection pass landed outside the canal (docs/decisions/cord-in-canal.md)."""
    mask = np.asarray(canal, dtype=bool)
    z = mask.shape[2]
    centres = np.full((z, 2), np.nan)
    found = np.asarray(mask.any(axis=(0, 1)), dtype=bool)
    for k in np.flatnonzero(found):
        centres[k] = np.argwhere(mask[:, :, k]).mean(axis=0)
    if found.any():
        _interpolate_centres(centres, np.flatnonzero(found))
    return Detection(centres, found, np.zeros((0, 0, 0), dtype=np.float32))


def _interpolate_centres(centres: npt.NDArray[np.float64], idx: npt.NDArray[np.intp]) -> None:
    """Fill every row of ``centres`` (Z, 2) in place from the rows ``idx``: linear between them, constant beyond."""
    z = centres.shape[0]
    for a in range(2):
        centres[:, a] = np.interp(np.arange(z), idx, centres[idx, a])


def detect_cord(
    data: npt.NDArray[np.floating],
    spacing_mm: tuple[float, float, float],
    predict: Predictor,
    *,
    coarse_spacing_mm: float = 1.0,
    threshold: float = 0.5,
    slice_step_mm: float = 3.0,
    rank: int = 0,
    coarse: tuple[FloatArray, FloatArray | None, npt.NDArray[np.intp]] | None = None,
) -> Detection:
    """Whole-slice pass at coarse spacing on slices about ``slice_step_mm`` apart; keep the largest
    3D cord component (``rank`` > 0: the next ones by mass; no cord when there are not that many); centre
    per slice (interpolated between the detection slices). ``coarse``: the network's output of an earlier call
    on the same image (:func:`coarse_pass`), so trying another component costs no second pass.

    Detection slices without cord (below the conus, or past a gap) take their centre from the canal
    component that contains the kept cord, so the segmentation windows follow the canal down a lumbar
    scan instead of staying where the cord ended."""
    z = data.shape[2]
    probs, canal, ks = (
        coarse if coarse is not None else coarse_pass(data, spacing_mm, predict, coarse_spacing_mm, slice_step_mm)
    )
    step = detection_step(spacing_mm[2], slice_step_mm)
    binary = probs >= threshold
    labels, n = ndimage.label(binary, structure=np.ones((3, 3, 3), dtype=bool))
    centres = np.full((z, 2), np.nan)
    found = np.zeros(z, dtype=bool)
    if n > rank:
        mass = ndimage.sum_labels(probs, labels, index=np.arange(1, n + 1))
        keep = labels == (int(np.argsort(-mass, kind="stable")[rank]) + 1)
        scale = (data.shape[0] / probs.shape[1], data.shape[1] / probs.shape[2])
        for d, k in enumerate(ks):
            c = _weighted_centre(np.where(keep[d], probs[d], 0.0), scale)
            if c is not None:
                centres[k] = c
                found[k] = True
        if canal is not None:
            _centres_from_canal(canal >= threshold, canal, keep, ks, found, centres, scale)
    located = found | ~np.isnan(centres[:, 0])
    if located.any():
        idx = np.flatnonzero(located)
        _interpolate_centres(centres, idx)
        if idx.size >= 3:
            for a in range(2):
                centres[idx, a] = ndimage.median_filter(centres[idx, a], size=3, mode="nearest")
            _interpolate_centres(centres, idx)
    return Detection(centres, found, probs, step, (probs, canal, ks))


def detection_step(slice_mm: float, slice_step_mm: float) -> int:
    """Every how many slices the coarse pass runs: about ``slice_step_mm`` apart, at least every slice."""
    return max(1, math.ceil(slice_step_mm / slice_mm - 1e-6))


def coarse_pass(
    data: npt.NDArray[np.floating],
    spacing_mm: tuple[float, float, float],
    predict: Predictor,
    coarse_spacing_mm: float = 1.0,
    slice_step_mm: float = 3.0,
) -> tuple[FloatArray, FloatArray | None, npt.NDArray[np.intp]]:
    """The network on whole slices at coarse spacing, about ``slice_step_mm`` apart (the last slice always
    included): cord probabilities (Zd, Hc, Wc), canal probabilities (or ``None``) and the slice indices."""
    sx, sy = spacing_mm[0], spacing_mm[1]
    target = max(coarse_spacing_mm, min(sx, sy))
    z = data.shape[2]
    ks = np.arange(0, z, detection_step(spacing_mm[2], slice_step_mm))
    if ks[-1] != z - 1:
        ks = np.append(ks, z - 1)
    slices = [normalize_patch(resample_slice(data[:, :, k], (sx, sy), target)) for k in ks]
    outputs = predict_batched(predict, slices, batch=8)
    probs = np.stack([p[0] for p in outputs]).astype(np.float32)  # (Zd, Hc, Wc)
    canal = np.stack([p[1] for p in outputs]).astype(np.float32) if outputs[0].shape[0] > 1 else None
    return probs, canal, ks


def _weighted_centre(w: npt.NDArray[np.floating], scale: tuple[float, float]) -> tuple[float, float] | None:
    """Probability-weighted centre of a coarse 2D map, in native pixel coordinates (None when empty)."""
    total = float(w.sum())
    if total <= 0:
        return None
    ii, jj = np.nonzero(w)
    ci = float((w[ii, jj] * ii).sum() / total)
    cj = float((w[ii, jj] * jj).sum() / total)
    return ((ci + 0.5) * scale[0] - 0.5, (cj + 0.5) * scale[1] - 0.5)


def _centres_from_canal(
    canal_bin: npt.NDArray[np.bool_],
    canal_prob: FloatArray,
    cord_keep: npt.NDArray[np.bool_],
    ks: npt.NDArray[np.intp],
    found: npt.NDArray[np.bool_],
    centres: npt.NDArray[np.float64],
    scale: tuple[float, float],
) -> None:
    """Fill ``centres`` (in place) of detection slices without cord from the canal component(s) that
    contain the kept cord component (nothing happens when the canal does not touch it)."""
    labels, n = ndimage.label(canal_bin | cord_keep, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return
    ids = np.unique(labels[cord_keep])
    ids = ids[ids > 0]
    if ids.size == 0:
        return
    follow = np.isin(labels, ids)
    for d, k in enumerate(ks):
        if found[k] or not follow[d].any():
            continue
        c = _weighted_centre(np.where(follow[d], canal_prob[d], 0.0), scale)
        if c is not None:
            centres[k] = c


def window_for(
    centre_px: tuple[float, float], spacing_mm: tuple[float, float], window_mm: float
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Native-pixel window ``(start, size)`` of about ``window_mm`` centred on ``centre_px``."""
    size = (max(4, math.ceil(window_mm / spacing_mm[0])), max(4, math.ceil(window_mm / spacing_mm[1])))
    start = (round(centre_px[0] - size[0] / 2), round(centre_px[1] - size[1] / 2))
    return start, size
