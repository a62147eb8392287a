"""Phase 1: 2.5D semantic segmentation on sagittal slices with ONNX Runtime, then clean-up.

The network sees three sagittal slices (the slice and its neighbours ``NEIGHBOUR_MM`` away on each side)
and predicts ``classes.N_CLASSES`` classes. Left/right structures are split afterwards by the side of the
spinal midline (canal/cord/spinous process), which a sagittal 2D model cannot know.
"""

from __future__ import annotations

import logging
from typing import Any

import cc3d
import numpy as np
import numpy.typing as npt
from scipy import ndimage

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


def predict_classes(
    session: Any, image: npt.NDArray[np.float32], lr_spacing_mm: float, *, batch: int = 4
) -> npt.NDArray[np.uint8]:
    """Argmax class map (P, I, R) of ``image`` (model grid, intensities in [0, 1])."""
    offset = neighbour_offset(lr_spacing_mm)
    input_name = session.get_inputs()[0].name
    n = image.shape[2]
    out = np.zeros(image.shape, dtype=np.uint8)
    for start in range(0, n, batch):
        rs = list(range(start, min(n, start + batch)))
        x = np.stack([stack_slices(image, r, offset) for r in rs], axis=0).astype(np.float32)
        x, (h, w) = _pad(x, PAD_MULTIPLE)
        logits = session.run(None, {input_name: x})[0]
        out[:, :, rs[0] : rs[-1] + 1] = np.transpose(np.argmax(logits[:, :, :h, :w], axis=1), (1, 2, 0)).astype(
            np.uint8
        )
    return out


def clean_classes(cls: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.uint8]:
    """Remove specks and structures detached from the spine; fill holes in corpus, disc, canal, cord."""
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
