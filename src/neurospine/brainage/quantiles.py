"""Quantile machinery shared by the feature MLP and the T1 CNN (numpy only).

Design (MCCQR, after Hahn et al.): a network outputs a *fixed monotone grid* of quantiles of age at the
levels :data:`TAU_GRID`. Monotonicity holds by construction: the head outputs a first value and
``K-1`` raw increments, and quantile ``k`` is the first value plus the cumulative sum of
``softplus(increment)``. Training minimises the pinball loss averaged over all grid levels (composite
quantile regression); this is the expectation of the random-level pinball loss over the grid, computed
without sampling noise, and one forward pass returns the whole quantile function.

At prediction, dropout stays on: each of ``T`` Monte-Carlo passes gives one quantile function
``Q_t(tau)``. The predictive distribution is the equal-weight mixture of the ``T`` passes; it is
represented by pooling ``Q_t(u_j)`` at stratified levels ``u_j`` (the deterministic version of drawing a
random quantile level per pass). Point estimate = pooled median, ``sd`` = pooled standard deviation,
intervals = pooled quantiles, then widened or narrowed by split-conformal calibration (see
:class:`ConformalTable`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: quantile levels output by the networks (monotone grid, symmetric around the median)
TAU_GRID: FloatArray = np.array(
    [
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.15,
        0.2,
        0.25,
        0.3,
        0.35,
        0.4,
        0.45,
        0.5,
        0.55,
        0.6,
        0.65,
        0.7,
        0.75,
        0.8,
        0.85,
        0.9,
        0.95,
        0.975,
        0.99,
        0.995,
    ]
)
#: levels at which each MC pass's quantile function is read when pooling the mixture
POOL_LEVELS: FloatArray = (np.arange(40, dtype=np.float64) + 0.5) / 40.0
#: stored grid of pooled quantile levels used for any-level conformal calibration
STORE_LEVELS: FloatArray = np.asarray(np.round(np.linspace(0.005, 0.995, 199), 6), dtype=np.float64)
#: nominal interval coverages reported in benchmarks
REPORT_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.95)


def softplus(x: FloatArray) -> FloatArray:
    return np.logaddexp(0.0, x)


def sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out


def monotone_head(raw: FloatArray) -> FloatArray:
    """Raw head outputs ``(n, K)`` -> monotone quantiles ``(n, K)`` (first value + cumulative softplus)."""
    inc = softplus(raw[:, 1:])
    return np.concatenate([raw[:, :1], raw[:, :1] + np.cumsum(inc, axis=1)], axis=1)


def monotone_head_backward(raw: FloatArray, grad_q: FloatArray) -> FloatArray:
    """Gradient of a loss w.r.t. ``raw`` given its gradient w.r.t. the monotone quantiles."""
    g = np.empty_like(raw)
    # q_k = r_0 + sum_{j<=k, j>=1} softplus(r_j): dq_k/dr_0 = 1, dq_k/dr_j = sigmoid(r_j) for j <= k
    g[:, 0] = grad_q.sum(axis=1)
    tail = np.cumsum(grad_q[:, ::-1], axis=1)[:, ::-1]  # sum_{k>=j} grad_q_k
    g[:, 1:] = tail[:, 1:] * sigmoid(raw[:, 1:])
    return g


def pinball_loss(y: npt.ArrayLike, q: npt.ArrayLike, tau: npt.ArrayLike) -> FloatArray:
    """Elementwise pinball (quantile) loss ``max(tau*(y-q), (tau-1)*(y-q))`` with broadcasting."""
    diff = np.asarray(y, dtype=np.float64) - np.asarray(q, dtype=np.float64)
    t = np.asarray(tau, dtype=np.float64)
    out: FloatArray = np.maximum(t * diff, (t - 1.0) * diff)
    return out


def pinball_grad(y: FloatArray, q: FloatArray, tau: FloatArray) -> FloatArray:
    """d pinball / d q (subgradient 0 where ``y == q``)."""
    diff = y - q
    return np.where(diff > 0, -tau, np.where(diff < 0, 1.0 - tau, 0.0))


def interp_quantiles(q_grid: FloatArray, levels: FloatArray, tau: FloatArray = TAU_GRID) -> FloatArray:
    """Read monotone quantile functions ``(..., K)`` given on ``tau`` at ``levels`` (linear; flat tails
    extended linearly with the outermost slope)."""
    q = np.asarray(q_grid, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64)
    idx = np.clip(np.searchsorted(tau, lv) - 1, 0, len(tau) - 2)
    t0, t1 = tau[idx], tau[idx + 1]
    w = (lv - t0) / (t1 - t0)
    out: FloatArray = q[..., idx] * (1.0 - w) + q[..., idx + 1] * w
    return out


def pool_mc(q_passes: FloatArray) -> FloatArray:
    """MC passes ``(T, n, K)`` -> pooled mixture samples ``(n, T*len(POOL_LEVELS))`` (sorted)."""
    t, n, _ = q_passes.shape
    vals = interp_quantiles(q_passes, POOL_LEVELS)  # (T, n, M)
    pooled = np.transpose(vals, (1, 0, 2)).reshape(n, t * len(POOL_LEVELS))
    return np.sort(pooled, axis=1)


@dataclass(frozen=True)
class Predictive:
    """Per-subject predictive distribution summarised on :data:`STORE_LEVELS` (+ moments)."""

    median: FloatArray  # (n,)
    sd: FloatArray  # (n,)
    quantiles: FloatArray  # (n, len(STORE_LEVELS)) raw (uncalibrated) mixture quantiles

    @classmethod
    def from_passes(cls, q_passes: FloatArray) -> Predictive:
        pooled = pool_mc(q_passes)
        qs = np.quantile(pooled, STORE_LEVELS, axis=1).T
        return cls(np.median(pooled, axis=1), pooled.std(axis=1), qs)

    def affine(self, offset: float, scale: float) -> Predictive:
        """The distribution of ``offset + scale * age`` (``scale > 0``)."""
        return Predictive(offset + scale * self.median, scale * self.sd, offset + scale * self.quantiles)

    def raw_interval(self, coverage: float) -> tuple[FloatArray, FloatArray]:
        a = (1.0 - coverage) / 2.0
        lo = _interp_store(self.quantiles, a)
        hi = _interp_store(self.quantiles, 1.0 - a)
        return lo, hi

    def cdf(self, y: FloatArray) -> FloatArray:
        """Predictive CDF at ``y`` (per subject), clipped to [STORE_LEVELS[0], STORE_LEVELS[-1]]."""
        out = np.empty(len(y))
        for i in range(len(y)):
            out[i] = np.interp(y[i], self.quantiles[i], STORE_LEVELS)
        return out


def _interp_store(qs: FloatArray, level: float) -> FloatArray:
    lv = float(np.clip(level, STORE_LEVELS[0], STORE_LEVELS[-1]))
    j = int(np.clip(np.searchsorted(STORE_LEVELS, lv) - 1, 0, len(STORE_LEVELS) - 2))
    w = (lv - STORE_LEVELS[j]) / (STORE_LEVELS[j + 1] - STORE_LEVELS[j])
    out: FloatArray = qs[:, j] * (1.0 - w) + qs[:, j + 1] * w
    return out


@dataclass(frozen=True)
class ConformalTable:
    """Split-conformal calibration data, valid at any coverage level (normalised CQR).

    Stores, for the ``n`` calibration subjects, their true ages and their raw predictive quantiles on
    :data:`STORE_LEVELS` and sds. For coverage ``1-a`` the score of subject ``i`` is
    ``max(lo_i - y_i, y_i - hi_i) / sd_i``; the calibrated interval of a new subject is
    ``[lo - c*sd, hi + c*sd]`` with ``c`` the ``ceil((n+1)(1-a))/n`` empirical quantile of the scores
    (Romano et al. 2019, with sd scaling). ``c`` may be negative (the raw intervals were too wide).

    Split-conformal needs ``n >= (1-a)/a`` subjects (19 for 95 %). Below that the needed order
    statistic does not exist and :meth:`interval` falls back to the normal-theory prediction interval
    of the standardised residuals ``r = (y - median) / sd``: ``median + sd * (mean_r +- t * sd_r *
    sqrt(1 + 1/n))`` with ``t`` the ``(1 + coverage)/2`` Student-t quantile on ``n-1`` degrees of freedom
    (exact coverage for Gaussian residuals, no finite-sample guarantee otherwise; :meth:`method` tells
    which applies).
    """

    ages: FloatArray
    quantiles: FloatArray
    sd: FloatArray

    @property
    def n(self) -> int:
        return len(self.ages)

    def correction(self, coverage: float) -> float:
        pred = Predictive(np.zeros(self.n), self.sd, self.quantiles)
        lo, hi = pred.raw_interval(coverage)
        scores = np.maximum(lo - self.ages, self.ages - hi) / np.maximum(self.sd, 1e-6)
        k = int(np.ceil((self.n + 1) * coverage))
        if k > self.n:
            raise ValueError(
                f"{self.n} calibration subjects cannot give a conformal {coverage:.0%} correction "
                f"(needs {min_conformal_n(coverage)}); use interval()"
            )
        return float(np.sort(scores)[k - 1])

    def _residual_bounds(self, coverage: float) -> tuple[float, float]:
        """Normal-theory prediction interval of a new standardised residual (small ``n``)."""
        from scipy.stats import t as student_t

        if self.n < 2:
            raise ValueError(f"a {coverage:.0%} interval needs at least 2 calibration subjects, got {self.n}")
        median = self.quantiles[:, int(np.argmin(np.abs(STORE_LEVELS - 0.5)))]
        r = (self.ages - median) / np.maximum(self.sd, 1e-6)
        half = float(student_t.ppf(0.5 + coverage / 2.0, self.n - 1)) * float(np.std(r, ddof=1))
        half *= float(np.sqrt(1.0 + 1.0 / self.n))
        centre = float(np.mean(r))
        return centre - half, centre + half

    def method(self, coverage: float) -> str:
        """How :meth:`correction` is obtained at this level: ``conformal`` or ``normal-theory``."""
        return "conformal" if int(np.ceil((self.n + 1) * coverage)) <= self.n else "normal-theory"

    def interval(self, pred: Predictive, coverage: float) -> tuple[FloatArray, FloatArray]:
        if self.method(coverage) == "normal-theory":
            r_lo, r_hi = self._residual_bounds(coverage)
            return pred.median + r_lo * pred.sd, pred.median + r_hi * pred.sd
        lo, hi = pred.raw_interval(coverage)
        c = self.correction(coverage)
        lo_c, hi_c = lo - c * pred.sd, hi + c * pred.sd
        mid = pred.median
        # a negative correction must not cross the median
        return np.minimum(lo_c, mid), np.maximum(hi_c, mid)


def min_conformal_n(coverage: float) -> int:
    """Fewest calibration subjects for which a split-conformal interval at ``coverage`` exists."""
    n = 1
    while int(np.ceil((n + 1) * coverage)) > n:
        n += 1
    return n
