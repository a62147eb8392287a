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
- ``entropy = -sum(p_k log2 p_k)`` and ``uniformity = sum(p_k^2)`` over the occupied bins of an IBSI
  **fixed bin width** (FBS) discretisation, ``bin = floor((x - origin) / width) + 1``. The intensity scale
  is the whole image's, not the region's: ``origin`` = the image's 0.5th percentile and ``width`` = (99.5th
  - 0.5th percentile) / 64 (``image_binning``). Bins therefore stay put when a region gains or loses a
  boundary pixel, unlike region-range (FBN) binning, where one extreme pixel re-bins the whole region.

Re-segmentation (IBSI "intensity outlier filtering", ``outlier_sigma``, on by default): before any feature is
computed, the region's pixels with ``|x - mu| > outlier_sigma * sd`` are dropped, ``mu`` and ``sd`` (population,
divisor N) being those of the whole region; every feature except ``n_pixels`` is then computed on the kept
pixels, and ``n_outliers`` counts the dropped ones (``n_pixels`` stays the region's size, IBSI's
"morphological mask"). The default is ``DEFAULT_OUTLIER_SIGMA`` = 3; ``None`` keeps every pixel
(``n_outliers = 0``). A constant region keeps all its pixels; a region of 10 pixels or fewer cannot
have a value beyond 3 sd (``|x - mu| <= sd * sqrt(N - 1)``). ``docs/radiomics.md`` gives the
measurements behind the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

N_BINS_IMAGE = 64
ROBUST_PERCENTILES = (0.5, 99.5)
#: Default ``outlier_sigma`` of ``region_features`` / ``first_order`` (IBSI's mean +- 3 sd; None = off).
DEFAULT_OUTLIER_SIGMA: float | None = 3.0
FEATURES: tuple[str, ...] = (
    "n_pixels",
    "n_outliers",
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


@dataclass(frozen=True)
class Binning:
    """Fixed-bin-width discretisation: bin 1 starts at ``origin``; every bin is ``width`` wide."""

    origin: float
    width: float


def image_binning(image: npt.ArrayLike, n_bins: int = N_BINS_IMAGE) -> Binning:
    """Bins from the image's robust intensity range: ``n_bins`` bins between its 0.5th and 99.5th percentiles.

    Falls back to the full range when the percentiles coincide, and to width 1 for a constant image.
    """
    a = np.asarray(image, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return Binning(0.0, 1.0)
    lo, hi = (float(v) for v in np.percentile(a, ROBUST_PERCENTILES))
    if hi <= lo:
        lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return Binning(lo, 1.0)
    return Binning(lo, (hi - lo) / n_bins)


def discretise_fbs(values: npt.ArrayLike, binning: Binning) -> npt.NDArray[np.int64]:
    """IBSI fixed-bin-width discretisation ``floor((x - origin) / width) + 1`` (values below origin get bins <= 0)."""
    x = np.asarray(values, dtype=np.float64)
    return np.floor((x - binning.origin) / binning.width).astype(np.int64) + 1


def resegment_outliers(values: npt.ArrayLike, outlier_sigma: float) -> npt.NDArray[np.float64]:
    """IBSI intensity outlier filtering: the values within ``mean +- outlier_sigma * sd`` (bounds included).

    ``mean`` and ``sd`` (population, divisor N) are the input values'. An empty input stays empty.
    """
    if not outlier_sigma > 0:
        raise ValueError(f"outlier_sigma must be > 0, got {outlier_sigma}")
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        return x
    mu, sd = float(x.mean()), float(x.std())
    return x[np.abs(x - mu) <= outlier_sigma * sd]


def first_order(
    values: npt.ArrayLike, binning: Binning | None = None, *, outlier_sigma: float | None = DEFAULT_OUTLIER_SIGMA
) -> dict[str, float]:
    """The features listed in the module doc for the 1D array ``values`` (empty -> NaNs).

    ``binning`` defaults to ``image_binning(values)`` (the values stand for the whole image, before any
    re-segmentation); pass the image's binning when ``values`` are one region of it. ``outlier_sigma``:
    drop values farther than that many standard deviations from the mean first (``resegment_outliers``).
    """
    x_all = np.asarray(values, dtype=np.float64).ravel()
    n_all = int(x_all.size)
    if n_all == 0:
        return {k: (0.0 if k in ("n_pixels", "n_outliers") else math.nan) for k in FEATURES}
    if binning is None:
        binning = image_binning(x_all)
    x = x_all if outlier_sigma is None else resegment_outliers(x_all, outlier_sigma)
    n = int(x.size)
    mu = float(x.mean())
    dev = x - mu
    m2 = float(np.mean(dev**2))
    m3 = float(np.mean(dev**3))
    m4 = float(np.mean(dev**4))
    p10, p25, p50, p75, p90 = (float(v) for v in np.percentile(x, [10, 25, 50, 75, 90]))
    inner = x[(x >= p10) & (x <= p90)]
    pos = x[x > 0]
    _, counts = np.unique(discretise_fbs(x, binning), return_counts=True)
    p = counts / n
    return {
        "n_pixels": float(n_all),
        "n_outliers": float(n_all - n),
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


def region_features(
    image: npt.ArrayLike,
    mask: npt.ArrayLike,
    binning: Binning | None = None,
    *,
    outlier_sigma: float | None = DEFAULT_OUTLIER_SIGMA,
) -> dict[str, float]:
    """First-order features of ``image`` inside boolean ``mask`` (same shape).

    ``binning`` defaults to ``image_binning(image)``; compute it once per image when measuring many regions.
    ``outlier_sigma``: IBSI re-segmentation of the region (see the module doc); None keeps every pixel.
    """
    img = np.asarray(image)
    m = np.asarray(mask, dtype=bool)
    if img.shape != m.shape:
        raise ValueError(f"image {img.shape} and mask {m.shape} differ")
    return first_order(img[m], binning or image_binning(img), outlier_sigma=outlier_sigma)
