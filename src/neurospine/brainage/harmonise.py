"""Feature-level site harmonisation that keeps age effects (numpy only).

When a model is fitted, a *normative model* of every feature as a function of age is fitted on the
training population: least squares on a piecewise-linear age basis (:func:`age_basis`, knots at
:data:`KNOTS_YEARS`), with its per-feature residual sd. At a new site, the residuals of the local
labelled controls against that normative model are free of age effects, so their mean per feature
estimates the site's offset. With ~20 controls those means are noisy; they are shrunk toward 0 by one
empirical-Bayes (James-Stein) factor shared by all features::

    z_j = mean residual_j / sd_j              (offset in normative-sd units)
    v   = mean_j var(residual_j / sd_j) / n   (sampling variance of z_j)
    tau2 = max(mean_j z_j^2 - v, 0)           (spread of the true site offsets)
    offset_j = tau2 / (tau2 + v) * mean residual_j

and the offset is subtracted from every subject of the site before prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: knots of the piecewise-linear age basis (years)
KNOTS_YEARS: tuple[float, ...] = (15.0, 25.0, 40.0, 60.0)
AGE_CENTRE_YEARS = 40.0
AGE_SCALE_YEARS = 20.0
RIDGE = 1e-3


def age_basis(age: FloatArray, knots: FloatArray) -> FloatArray:
    """(n, 2 + len(knots)) design: 1, centred age, and one hinge ``max(age - k, 0)`` per knot (scaled)."""
    a = np.asarray(age, dtype=np.float64)
    cols = [np.ones_like(a), (a - AGE_CENTRE_YEARS) / AGE_SCALE_YEARS]
    cols += [np.maximum(a - k, 0.0) / AGE_SCALE_YEARS for k in knots]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class NormativeModel:
    """feature_j ~ age_basis(age) @ coef[:, j], residual sd ``resid_sd[j]``."""

    knots_years: FloatArray  # (k,)
    coef: FloatArray  # (2 + k, d)
    resid_sd: FloatArray  # (d,)

    @classmethod
    def fit(cls, x: FloatArray, age: FloatArray, knots: tuple[float, ...] = KNOTS_YEARS) -> NormativeModel:
        kn = np.asarray(knots, dtype=np.float64)
        b = age_basis(age, kn)
        coef: FloatArray = np.linalg.solve(b.T @ b + RIDGE * np.eye(b.shape[1]), b.T @ x).astype(np.float64)
        sd = (x - b @ coef).std(axis=0)
        return cls(kn, coef, np.where(sd > 0, sd, 1.0))

    def residuals(self, x: FloatArray, age: FloatArray) -> FloatArray:
        out: FloatArray = x - age_basis(age, self.knots_years) @ self.coef
        return out


@dataclass(frozen=True)
class SiteOffset:
    offset: FloatArray  # (d,) in feature units, subtracted from every subject of the site
    shrinkage: float  # empirical-Bayes factor in [0, 1] applied to the raw mean residuals
    tau2: float  # between-site variance of offsets (normative-sd units^2)


def site_offset(norm: NormativeModel, x: FloatArray, age: FloatArray) -> SiteOffset:
    """Empirical-Bayes-shrunk per-feature site offset from local labelled controls (``n >= 2``)."""
    r = norm.residuals(x, age) / norm.resid_sd
    n = len(age)
    z = r.mean(axis=0)
    v = float(np.mean(r.var(axis=0, ddof=1))) / n
    tau2 = max(float(np.mean(z**2)) - v, 0.0)
    f = tau2 / (tau2 + v) if tau2 + v > 0 else 0.0
    return SiteOffset(f * z * norm.resid_sd, f, tau2)
