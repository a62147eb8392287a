"""Kernel ridge regression with a Gaussian (RBF) kernel on z-scored features (numpy only).

Used as the second member of the feature brain-age model: its median is blended with the MCCQR
network's (see :mod:`model`). The kernel is ``k(a, b) = exp(-gamma * ||a - b||^2 / d)`` with ``d`` the
number of features, so ``gamma`` does not depend on how many features a table has. The fitted model
keeps its training rows (``support``) and dual coefficients: it is a function of those subjects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
#: rows of the kernel matrix computed at once at prediction (bounds memory for large tables)
CHUNK_ROWS = 2048


def rbf_kernel(a: FloatArray, b: FloatArray, gamma: float) -> FloatArray:
    """``exp(-gamma * ||a_i - b_j||^2 / d)`` for rows of ``a`` (n, d) and ``b`` (m, d)."""
    d2 = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    out: FloatArray = np.exp(-gamma * np.maximum(d2, 0.0) / a.shape[1])
    return out


@dataclass(frozen=True)
class KernelRidge:
    support: FloatArray  # (m, d) training rows (z-scored features)
    alpha: FloatArray  # (m,) dual coefficients
    gamma: float
    y_mean: float

    @classmethod
    def fit(cls, z: FloatArray, y: FloatArray, lam: float, gamma: float) -> KernelRidge:
        """Solve ``(K + lam I) alpha = y - mean(y)``."""
        if lam <= 0 or gamma <= 0:
            raise ValueError(f"kernel ridge needs lam > 0 and gamma > 0, got {lam}, {gamma}")
        y_mean = float(np.mean(y))
        k = rbf_kernel(z, z, gamma)
        alpha = np.linalg.solve(k + lam * np.eye(len(z)), y - y_mean)
        return cls(np.asarray(z, dtype=np.float64), alpha.astype(np.float64), float(gamma), y_mean)

    def predict(self, z: FloatArray) -> FloatArray:
        out = np.empty(len(z))
        for s in range(0, len(z), CHUNK_ROWS):
            out[s : s + CHUNK_ROWS] = rbf_kernel(z[s : s + CHUNK_ROWS], self.support, self.gamma) @ self.alpha
        result: FloatArray = out + self.y_mean
        return result
