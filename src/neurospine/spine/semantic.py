"""Phase 1: 2.5D semantic segmentation on sagittal slices with ONNX Runtime, then clean-up.

The network sees three sagittal slices (the slice and its neighbours ``NEIGHBOUR_MM`` away on each side)
and predicts ``classes.N_CLASSES`` classes. Left/right structures are split afterwards by the side of the
spinal midline (canal/cord/spinous process), which a sagittal 2D model cannot know.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cc3d
import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.inference.offsets import logit_offsets
from neurospine.spine import classes as C

log = logging.getLogger(__name__)

#: distance of the neighbouring slices given as extra channels
NEIGHBOUR_MM = 3.0
#: spatial sizes are padded to a multiple of this (U-Net depth 5)
PAD_MULTIPLE = 16
#: components smaller than this (mm^3) are removed from every class
MIN_COMPONENT_MM3 = 20.0


def neighbour_offset(lr_spacing_mm: float, neighbour_mm: float = NEIGHBOUR_MM) -> int:
    return max(1, round(neighbour_mm / lr_spacing_mm))


def stack_slices(image: npt.NDArray[np.float32], r: int, offset: int) -> npt.NDArray[np.float32]:
    """(3, P, I) channels: slices r-offset, r, r+offset (clamped at the edges)."""
    n = image.shape[2]
    idx = [min(max(r - offset, 0), n - 1), r, min(max(r + offset, 0), n - 1)]
    return np.stack([image[:, :, i] for i in idx], axis=0)


def _pad(x: npt.NDArray[np.float32], multiple: int) -> tuple[npt.NDArray[np.float32], tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="constant")
    return x, (h, w)


def logit_bias_vector(spec: Mapping[str, float] | None) -> npt.NDArray[np.float32] | None:
    """Per-class logit offsets from a model card's ``inputs.logit_bias`` ({class name: offset})."""
    return logit_offsets(spec, [n for n, _ in C.NET_CLASSES])


#: network classes that make up the vertebral body (the refiner's positive class)
BODY_CLASSES = (C.CORPUS, C.ENDPLATE)


@dataclass(frozen=True)
class BodyRefiner:
    """A binary vertebral-body network on the same 2.5D input; its log-odds (body minus not-body), times
    ``weight``, are added to the semantic model's corpus and endplate logits (a product of the two experts)."""

    session: Any
    weight: float = 1.0


def _run(session: Any, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0], dtype=np.float32)


def network_logits(
    session: Any, x: npt.NDArray[np.float32], refiner: BodyRefiner | None = None
) -> npt.NDArray[np.float32]:
    """Logits (B, C, H, W) of a padded input batch, with the refiner's body log-odds fused in when given."""
    logits = _run(session, x)
    if refiner is not None:
        body = _run(refiner.session, x)
        margin = body[:, 1] - body[:, 0]
        logits[:, list(BODY_CLASSES)] += refiner.weight * margin[:, None]
    return logits


def _argmax(logits: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None) -> npt.NDArray[np.uint8]:
    """Class per pixel of (B, C, H, W) logits, after adding the per-class ``bias``."""
    if bias is not None:
        logits = logits + bias[None, :, None, None]
    return np.argmax(logits, axis=1).astype(np.uint8)


def predict_classes(
    session: Any,
    image: npt.NDArray[np.float32],
    lr_spacing_mm: float,
    *,
    batch: int = 4,
    logit_bias: npt.NDArray[np.float32] | None = None,
    refiner: BodyRefiner | None = None,
) -> npt.NDArray[np.uint8]:
    """Argmax class map (P, I, R) of ``image`` (model grid, intensities in [0, 1])."""
    full = (slice(0, image.shape[0]), slice(0, image.shape[1]))
    labels = _predict_slices(
        session, image, list(range(image.shape[2])), neighbour_offset(lr_spacing_mm), full, batch, logit_bias, refiner
    )
    out = np.zeros(image.shape, dtype=np.uint8)
    for r, lab2d in labels.items():
        out[:, :, r] = lab2d
    return out


#: classes that locate the spine for cropping (not the sacrum: pelvic false positives would widen the box)
_LOCATOR = (C.CORPUS, C.DISC, C.CANAL, C.CORD, C.ARCUS, C.SPINOUS, C.ENDPLATE)
#: margins (mm) around the located spine along P, I, R
CROP_MARGIN_MM = (30.0, 30.0, 15.0)
#: pass-1 slice stride (mm)
LOCATE_STRIDE_MM = 6.0


def slice_logits(
    session: Any,
    image: npt.NDArray[np.float32],
    slices: list[int],
    offset: int,
    box: tuple[slice, slice],
    batch: int,
    refiner: BodyRefiner | None = None,
) -> dict[int, npt.NDArray[np.float32]]:
    """Logits (C, h, w) of the sagittal ``slices`` inside the in-plane ``box`` (refiner fused when given)."""
    out: dict[int, npt.NDArray[np.float32]] = {}
    for start in range(0, len(slices), batch):
        rs = slices[start : start + batch]
        x = np.stack([stack_slices(image, r, offset)[:, box[0], box[1]] for r in rs], axis=0).astype(np.float32)
        x, (h, w) = _pad(x, PAD_MULTIPLE)
        logits = network_logits(session, x, refiner)
        for k, r in enumerate(rs):
            out[r] = logits[k, :, :h, :w]
    return out


def _predict_slices(
    session: Any,
    image: npt.NDArray[np.float32],
    slices: list[int],
    offset: int,
    box: tuple[slice, slice],
    batch: int,
    bias: npt.NDArray[np.float32] | None = None,
    refiner: BodyRefiner | None = None,
) -> dict[int, npt.NDArray[np.uint8]]:
    out: dict[int, npt.NDArray[np.uint8]] = {}
    for start in range(0, len(slices), batch):
        logits = slice_logits(session, image, slices[start : start + batch], offset, box, batch, refiner)
        for r, lg in logits.items():
            out[r] = _argmax(lg[None], bias)[0]
    return out


@dataclass(frozen=True)
class SpineBox:
    """Where the network runs in pass 2: an in-plane box (P, I) and a range of sagittal slices."""

    box: tuple[slice, slice]
    slices: range


def locate_spine(
    session: Any,
    image: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
    *,
    batch: int = 4,
    logit_bias: npt.NDArray[np.float32] | None = None,
) -> tuple[SpineBox | None, dict[int, npt.NDArray[np.uint8]]]:
    """Pass 1: every ``LOCATE_STRIDE_MM`` slice on the whole field of view; the box around the connected
    groups of spine classes at least 10 % of the largest (plus margins), or None when nothing is found.
    Also returns the pass-1 class maps (reused by pass 2)."""
    n_r = image.shape[2]
    offset = neighbour_offset(spacing_mm[2])
    stride = max(1, round(LOCATE_STRIDE_MM / spacing_mm[2]))
    full = (slice(0, image.shape[0]), slice(0, image.shape[1]))
    first = list(range(stride // 2, n_r, stride)) or [n_r // 2]
    coarse = _predict_slices(session, image, first, offset, full, batch, logit_bias)
    stack = np.stack([coarse[r] for r in first], axis=2)
    spine = np.isin(stack, _LOCATOR)
    if not spine.any():
        return None, coarse
    lab = cc3d.connected_components(spine.astype(np.uint8), connectivity=26)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    keep = (sizes >= 0.1 * sizes.max())[lab]  # every sizeable piece of the column (it may be broken)
    pts = np.nonzero(keep)
    lo_p = max(0, int(pts[0].min() - CROP_MARGIN_MM[0] / spacing_mm[0]))
    hi_p = min(image.shape[0], int(pts[0].max() + CROP_MARGIN_MM[0] / spacing_mm[0]) + 1)
    lo_i = max(0, int(pts[1].min() - CROP_MARGIN_MM[1] / spacing_mm[1]))
    hi_i = min(image.shape[1], int(pts[1].max() + CROP_MARGIN_MM[1] / spacing_mm[1]) + 1)
    r_sel = [first[k] for k in np.unique(pts[2])]
    lo_r = max(0, int(min(r_sel) - stride - CROP_MARGIN_MM[2] / spacing_mm[2]))
    hi_r = min(n_r, int(max(r_sel) + stride + CROP_MARGIN_MM[2] / spacing_mm[2]) + 1)
    return SpineBox((slice(lo_p, hi_p), slice(lo_i, hi_i)), range(lo_r, hi_r)), coarse


def predict_classes_cropped(
    session: Any,
    image: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float, float],
    *,
    batch: int = 4,
    logit_bias: npt.NDArray[np.float32] | None = None,
    refiner: BodyRefiner | None = None,
) -> npt.NDArray[np.uint8]:
    """Two passes: :func:`locate_spine`, then every slice of the spine's box is predicted. Falls back to the
    whole image when pass 1 finds nothing. ``logit_bias`` is added to the logits before the argmax. The
    body ``refiner`` runs in pass 2 only (pass 1 just locates the spine), so with a refiner every slice of the
    box is predicted again."""
    found, coarse = locate_spine(session, image, spacing_mm, batch=batch, logit_bias=logit_bias)
    if found is None:
        return predict_classes(session, image, spacing_mm[2], batch=batch, logit_bias=logit_bias, refiner=refiner)
    box = found.box
    out = np.zeros(image.shape, dtype=np.uint8)
    reuse = {} if refiner is not None else coarse
    for r, lab2d in reuse.items():
        if r in found.slices:
            out[box[0], box[1], r] = lab2d[box[0], box[1]]
    todo = [r for r in found.slices if r not in reuse]
    offset = neighbour_offset(spacing_mm[2])
    for r, lab2d in _predict_slices(session, image, todo, offset, box, batch, logit_bias, refiner).items():
        out[box[0], box[1], r] = lab2d
    log.debug("spine box %s slices %s of %s", box, found.slices, image.shape)
    return out


def clean_classes(cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.uint8]:
    """Remove specks and structures detached from the spine; fill holes in corpus, disc, canal, cord."""
    out = cls.copy()
    if not out.any():
        return out
    box = ndimage.find_objects((out > 0).astype(np.uint8))[0]
    out[box] = _clean_box(np.ascontiguousarray(out[box]), spacing_mm)
    return out


def _clean_box(cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.uint8]:
    vox = float(np.prod(spacing_mm))
    out = cls.copy()
    min_vox = max(1, int(MIN_COMPONENT_MM3 / vox))
    for c in range(1, C.N_CLASSES):
        m = out == c
        if not m.any():
            continue
        lab = cc3d.connected_components(m.astype(np.uint8), connectivity=26)
        sizes = np.bincount(lab.ravel())
        small = np.nonzero(sizes < min_vox)[0]
        small = small[small > 0]
        if small.size:
            out[np.isin(lab, small)] = 0
    fg = out > 0
    if fg.any():
        lab = cc3d.connected_components(fg.astype(np.uint8), connectivity=26)
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        keep = sizes >= 0.05 * sizes.max()
        out[~keep[lab]] = 0
    for c in (C.CORPUS, C.DISC, C.CANAL, C.CORD):
        m = out == c
        if m.any():
            filled = ndimage.binary_fill_holes(m)
            assert filled is not None
            out[filled & (out == 0)] = c
    return out


def midline_r(cls: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Right-left midline (R index) for every inferior row, from canal, cord and spinous process."""
    n_rows = cls.shape[1]
    mid_mask = np.isin(cls, (C.CANAL, C.CORD, C.SPINOUS))
    if not mid_mask.any():
        mid_mask = np.isin(cls, (C.CORPUS, C.DISC))
    if not mid_mask.any():
        return np.full(n_rows, (cls.shape[2] - 1) / 2.0)
    r_idx = np.arange(cls.shape[2], dtype=np.float64)
    counts = mid_mask.sum(axis=(0, 2)).astype(np.float64)
    sums = (mid_mask.sum(axis=0) * r_idx[None, :]).sum(axis=1)
    rows = np.nonzero(counts > 0)[0]
    vals = sums[rows] / counts[rows]
    line = np.interp(np.arange(n_rows), rows, vals)
    return np.asarray(ndimage.uniform_filter1d(line, size=15, mode="nearest"), dtype=np.float64)


def to_spineps_values(cls: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """SPINEPS semantic values with left/right structures split at the midline (PIR: R grows rightwards)."""
    values = C.net_to_spineps(cls)
    lr = np.isin(cls, C.LR_CLASSES)
    if lr.any():
        mid = midline_r(cls)
        p, i, r = np.nonzero(lr)
        right = r > mid[i]
        values[p[right], i[right], r[right]] += 1
    return values
