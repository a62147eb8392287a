"""Numpy intensity augmentations for contrast-agnostic training (any dimensionality).

All take and return float32 arrays normalised to about [0, 1] and a ``numpy.random.Generator``.
The random look-up table and inversion are the levers measured in docs/feasibility (contrast
randomisation); bias, gamma, noise and blur add scanner variety.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

FloatArray = npt.NDArray[np.float32]


def normalize_percentile(img: npt.ArrayLike, low: float = 0.5, high: float = 99.5) -> FloatArray:
    """Map the [low, high] percentiles of non-zero-ish voxels to [0, 1], clipped."""
    a = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(a, [low, high])
    if hi <= lo:
        return np.zeros_like(a)
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def random_lut(img: FloatArray, rng: np.random.Generator, n_knots: int = 6) -> FloatArray:
    """Random monotone-free piecewise-linear intensity mapping of [0, 1] onto [0, 1]."""
    xs = np.linspace(0.0, 1.0, n_knots)
    ys = rng.random(n_knots).astype(np.float32)
    return np.interp(img, xs, ys).astype(np.float32)


def invert(img: FloatArray) -> FloatArray:
    return (1.0 - img).astype(np.float32)


def gamma(img: FloatArray, rng: np.random.Generator, log_range: float = 0.5) -> FloatArray:
    g = float(np.exp(rng.uniform(-log_range, log_range)))
    return np.power(np.clip(img, 0.0, 1.0), g).astype(np.float32)


def bias_field(img: FloatArray, rng: np.random.Generator, strength: float = 0.3) -> FloatArray:
    """Multiply by a smooth random field (coarse noise upsampled)."""
    coarse = rng.normal(0.0, 1.0, size=tuple(max(2, s // 32) for s in img.shape))
    zoom = [s / c for s, c in zip(img.shape, coarse.shape, strict=True)]
    field = ndimage.zoom(coarse, zoom, order=1)[tuple(slice(0, s) for s in img.shape)]
    field = np.exp(strength * field / (np.abs(field).max() + 1e-6))
    return (img * field).astype(np.float32)


def noise(img: FloatArray, rng: np.random.Generator, max_sigma: float = 0.05) -> FloatArray:
    sigma = rng.uniform(0.0, max_sigma)
    return (img + rng.normal(0.0, sigma, size=img.shape)).astype(np.float32)


def blur(img: FloatArray, rng: np.random.Generator, max_sigma_vox: float = 1.0) -> FloatArray:
    return ndimage.gaussian_filter(img, rng.uniform(0.0, max_sigma_vox)).astype(np.float32)


def contrast_randomize(
    img: FloatArray, rng: np.random.Generator, p_keep: float = 0.25, p_invert: float = 0.25
) -> FloatArray:
    """Keep (p_keep), invert (p_invert) or apply a random LUT (rest), then gamma/bias/noise.

    Output is renormalised to [0, 1].
    """
    u = rng.random()
    if u < p_keep:
        out = img
    elif u < p_keep + p_invert:
        out = invert(img)
    else:
        out = random_lut(img, rng)
    out = gamma(out, rng)
    if rng.random() < 0.5:
        out = bias_field(out, rng)
    if rng.random() < 0.5:
        out = noise(out, rng)
    return normalize_percentile(out, 0.0, 100.0)
