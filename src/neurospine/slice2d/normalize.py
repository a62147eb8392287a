"""Intensity normalisation shared by training and inference."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: CT window (HU) applied before percentile scaling when an image has HU-like values.
CT_WINDOW_HU = (-400.0, 1400.0)


def normalize_image(pixels: npt.ArrayLike, modality: str) -> npt.NDArray[np.float32]:
    """Map an image to [0, 1]: CT in HU is clipped to ``CT_WINDOW_HU``; then the 0.5/99.5 percentiles."""
    a = np.asarray(pixels, dtype=np.float32)
    if modality == "ct" and float(a.min()) < -100.0:
        a = np.clip(a, *CT_WINDOW_HU)
    lo, hi = np.percentile(a, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
