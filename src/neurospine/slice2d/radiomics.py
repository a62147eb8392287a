"""First-order radiomic features of a region (IBSI definitions, numpy only).

Intensities are the input image's own values inside the region (no normalisation, no resampling).
Let ``x_1..x_N`` be the region's intensities, ``mu`` their mean:

- ``mean``, ``variance = sum((x - mu)^2) / N`` (population, IBSI), ``sd = sqrt(variance)``
- ``skewness = m3 / m2^1.5`` and ``kurtosis = m4 / m2^2 - 3`` (excess kurtosis, IBSI; pyradiomics
  reports ``m4 / m2^2`` without the -3), with ``mk = mean((x - mu)^k)``; both 0 for a constant region
- ``median``, ``p10``, ``p90``, ``p25``/``p75`` (linear interpolation between order statistics,
  ``numpy.percentile`` default), ``iqr = p75 - p25``, ``minimum``, ``maximum``, ``range = max - min``
- ``mad = mean(|x - mu|)`` (mean absolute deviation), ``rmad`` the same on values within [p10, p90]
- ``rms = sqrt(mean(x^2))``, ``energy = sum(x^2)``
- ``mean_positive``: mean of the values > 0 (SpineTK "mean of positive pixels"; NaN if none)
- ``entropy = -sum(p_k log2 p_k)`` and ``uniformity = sum(p_k^2)`` over a histogram with a **fixed bin
  number of 32** between the region's minimum and maximum (IBSI FBN discretisation:
  ``bin = floor(32 (x - min) / (max - min)) + 1``, the maximum falls in bin 32; a constant region is one bin).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

N_BINS = 32
FEATURES: tuple[str, ...] = (
    "n_pixels",
    "mean",
    "median",
    "sd",
    "variance",
    "skewness",
    "kurtosis",
    "minimum",
    "maximum",
    "range",
    "p10",
    "p90",
    "iqr",
    "mad",
    "rmad",
    "rms",
    "energy",
    "mean_positive",
    "entropy",
    "uniformity",
)


def discretise_fbn(values: npt.ArrayLike, n_bins: int = N_BINS) -> npt.NDArray[np.int64]:
    """IBSI fixed-bin-number discretisation to 1..n_bins."""
    x = np.asarray(values, dtype=np.float64)
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return np.ones(x.shape, dtype=np.int64)
    b = np.floor(n_bins * (x - lo) / (hi - lo)).astype(np.int64) + 1
    return np.minimum(b, n_bins)


def first_order(values: npt.ArrayLike, n_bins: int = N_BINS) -> dict[str, float]:
    """The features listed in the module doc for the 1D array ``values`` (empty -> NaNs)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    n = int(x.size)
    if n == 0:
        return {k: (0.0 if k == "n_pixels" else math.nan) for k in FEATURES}
    mu = float(x.mean())
    dev = x - mu
    m2 = float(np.mean(dev**2))
    m3 = float(np.mean(dev**3))
    m4 = float(np.mean(dev**4))
    p10, p25, p50, p75, p90 = (float(v) for v in np.percentile(x, [10, 25, 50, 75, 90]))
    inner = x[(x >= p10) & (x <= p90)]
    pos = x[x > 0]
    bins = discretise_fbn(x, n_bins)
    counts = np.bincount(bins, minlength=n_bins + 1)[1:]
    p = counts[counts > 0] / n
    return {
        "n_pixels": float(n),
        "mean": mu,
        "median": p50,
        "sd": math.sqrt(m2),
        "variance": m2,
        "skewness": m3 / m2**1.5 if m2 > 0 else 0.0,
        "kurtosis": m4 / m2**2 - 3.0 if m2 > 0 else 0.0,
        "minimum": float(x.min()),
        "maximum": float(x.max()),
        "range": float(x.max() - x.min()),
        "p10": p10,
        "p90": p90,
        "iqr": p75 - p25,
        "mad": float(np.mean(np.abs(dev))),
        "rmad": float(np.mean(np.abs(inner - inner.mean()))) if inner.size else math.nan,
        "rms": math.sqrt(float(np.mean(x**2))),
        "energy": float(np.sum(x**2)),
        "mean_positive": float(pos.mean()) if pos.size else math.nan,
        "entropy": float(-np.sum(p * np.log2(p))) + 0.0,
        "uniformity": float(np.sum(p**2)),
    }


def region_features(image: npt.ArrayLike, mask: npt.ArrayLike, n_bins: int = N_BINS) -> dict[str, float]:
    """First-order features of ``image`` inside boolean ``mask`` (same shape)."""
    img = np.asarray(image)
    m = np.asarray(mask, dtype=bool)
    if img.shape != m.shape:
        raise ValueError(f"image {img.shape} and mask {m.shape} differ")
    return first_order(img[m], n_bins)
