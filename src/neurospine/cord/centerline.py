"""Smoothed cord centreline from per-slice centroids: local weighted linear regression.

Each slice ``k`` lies in the plane ``n . p = s_k`` (``n`` the unit slice normal, ``s_k`` its position
along ``n`` in mm). The centreline is modelled as ``c(s)``; a Gaussian-weighted linear fit of the
slice centroids around every ``s_k`` gives a smooth point and the derivative ``dc/ds``, whose
direction is the cord tangent. Because every centroid lies in its slice plane, ``n . dc/ds = 1``
and ``cos(theta) = 1 / |dc/ds|``, where ``theta`` is the angle between the cord and the slice normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Default smoothing bandwidth (Gaussian sigma along the cord) in mm.
DEFAULT_BANDWIDTH_MM = 15.0


@dataclass(frozen=True)
class Centerline:
    """Smoothed centreline at the given slice positions (all world RAS mm)."""

    positions_mm: FloatArray  # (K,) slice positions along the slice normal
    points_mm: FloatArray  # (K, 3) smoothed centreline points
    tangents: FloatArray  # (K, 3) unit tangents, oriented like the slice normal
    angles_deg: FloatArray  # (K,) angle between tangent and slice normal


def fit_centerline(
    positions_mm: npt.ArrayLike,
    centroids_mm: npt.ArrayLike,
    normal: npt.ArrayLike,
    *,
    weights: npt.ArrayLike | None = None,
    bandwidth_mm: float = DEFAULT_BANDWIDTH_MM,
) -> Centerline:
    """Fit ``c(s)`` through slice centroids; see the module docstring.

    ``bandwidth_mm`` is widened to at least 1.5 slice gaps so that sparse stacks (thick axial
    slices) still average several slices. A single slice gets the slice normal as tangent.
    """
    s = np.asarray(positions_mm, dtype=np.float64).reshape(-1)
    c = np.asarray(centroids_mm, dtype=np.float64).reshape(-1, 3)
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if s.size != c.shape[0] or s.size != w.size:
        raise ValueError("positions, centroids and weights must have the same length")
    k = s.size
    if k == 0:
        empty = np.zeros((0, 3))
        return Centerline(s, empty, empty, np.zeros(0))
    if k == 1:
        return Centerline(s, c.copy(), n[None, :].copy(), np.zeros(1))
    gaps = np.diff(np.sort(s))
    gap = float(np.median(gaps)) if gaps.size else 1.0
    h = max(float(bandwidth_mm), 1.5 * gap)
    points = np.empty_like(c)
    slopes = np.empty_like(c)
    for i in range(k):
        d = s - s[i]
        kw = w * np.exp(-0.5 * (d / h) ** 2)
        sw = kw.sum()
        if sw <= 0:
            points[i], slopes[i] = c[i], n
            continue
        md = (kw * d).sum() / sw
        mc = (kw[:, None] * c).sum(axis=0) / sw
        var = (kw * (d - md) ** 2).sum() / sw
        if var <= 1e-9:
            points[i], slopes[i] = mc, n
            continue
        slope = (kw[:, None] * (d - md)[:, None] * (c - mc)).sum(axis=0) / sw / var
        points[i] = mc + slope * (0.0 - md)
        slopes[i] = slope
    # the in-plane part of the slope is what bends the cord; the normal part must be 1 by geometry
    inplane = slopes - (slopes @ n)[:, None] * n[None, :]
    deriv = inplane + n[None, :]
    norms = np.linalg.norm(deriv, axis=1)
    tangents = deriv / norms[:, None]
    angles = np.degrees(np.arccos(np.clip(1.0 / norms, -1.0, 1.0)))
    return Centerline(s, points, tangents, angles)
