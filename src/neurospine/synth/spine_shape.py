"""The spine centreline (canal axis) as a framed curve, and world <-> canonical coordinates.

Canonical coordinates ``(s, a, l)``: ``s`` arc length along the canal axis (mm, increasing caudally),
``a`` offset along the anterior normal (mm, + anterior) and ``l`` along the right binormal (mm, + right).
Every spinal structure is defined in these coordinates, so bending the curve (lordosis, kyphosis,
scoliosis, axial rotation) bends all structures coherently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: The largest curvature allowed (1/mm): posterior elements reach ~80 mm from the axis and must not fold.
MAX_CURVATURE = 1.0 / 110.0


@dataclass(frozen=True)
class Centreline:
    """Samples ``c`` (M, 3) with orthonormal frames ``t`` (caudal), ``n`` (anterior), ``b`` (right)."""

    s: FloatArray
    c: FloatArray
    t: FloatArray
    n: FloatArray
    b: FloatArray

    @property
    def ds(self) -> float:
        return float(self.s[1] - self.s[0])

    def _interp(self, arr: FloatArray, s: FloatArray) -> FloatArray:
        x = (np.asarray(s, dtype=np.float64) - self.s[0]) / self.ds
        i0 = np.clip(np.floor(x).astype(np.int64), 0, len(self.s) - 2)
        w = np.clip(x - i0, 0.0, 1.0)[..., None]
        return arr[i0] * (1.0 - w) + arr[i0 + 1] * w

    def point(self, s: npt.ArrayLike) -> FloatArray:
        return self._interp(self.c, np.asarray(s, dtype=np.float64))

    def to_world(self, s: npt.ArrayLike, a: npt.ArrayLike, l: npt.ArrayLike) -> FloatArray:  # noqa: E741
        """Canonical ``(s, a, l)`` (broadcastable) -> world points (..., 3)."""
        s_arr, a_arr, l_arr = np.broadcast_arrays(
            np.asarray(s, dtype=np.float64), np.asarray(a, dtype=np.float64), np.asarray(l, dtype=np.float64)
        )
        return (
            self._interp(self.c, s_arr)
            + a_arr[..., None] * self._interp(self.n, s_arr)
            + l_arr[..., None] * self._interp(self.b, s_arr)
        )

    def canonical(self, points: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """World points (P, 3) -> canonical ``s, a, l`` by bisection on the normal planes."""
        p = np.asarray(points, dtype=np.float64)
        m = len(self.s)
        lo = np.zeros(len(p), dtype=np.int64)
        hi = np.full(len(p), m - 1, dtype=np.int64)
        for _ in range(math.ceil(math.log2(m)) + 1):
            mid = (lo + hi) // 2
            f = np.einsum("ij,ij->i", p - self.c[mid], self.t[mid])
            ok = f >= 0
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        i0 = np.clip(lo, 0, m - 2)
        f0 = np.einsum("ij,ij->i", p - self.c[i0], self.t[i0])
        f1 = np.einsum("ij,ij->i", p - self.c[i0 + 1], self.t[i0 + 1])
        denom = np.where(np.abs(f0 - f1) < 1e-9, 1.0, f0 - f1)
        w = np.clip(f0 / denom, 0.0, 1.0)
        s = self.s[i0] + w * self.ds
        wc = w[:, None]
        c = self.c[i0] * (1 - wc) + self.c[i0 + 1] * wc
        n = self.n[i0] * (1 - wc) + self.n[i0 + 1] * wc
        b = self.b[i0] * (1 - wc) + self.b[i0 + 1] * wc
        d = p - c
        # extrapolate beyond the sampled ends along the end tangents
        s = s + np.where(lo <= 0, np.minimum(f0, 0.0), 0.0) + np.where(lo >= m - 2, np.maximum(f1, 0.0), 0.0)
        return s, np.einsum("ij,ij->i", d, n), np.einsum("ij,ij->i", d, b)


def _rotate(u: list[float], v: list[float], ang: float) -> tuple[list[float], list[float]]:
    """Rotate the pair (u, v) by ``ang`` in their plane: u -> u cos + v sin, v -> v cos - u sin."""
    ca, sa = math.cos(ang), math.sin(ang)
    return ([u[i] * ca + v[i] * sa for i in range(3)], [v[i] * ca - u[i] * sa for i in range(3)])


def integrate_frames(
    kappa_sag: FloatArray, kappa_cor: FloatArray, twist: FloatArray, ds: float, s0: float
) -> Centreline:
    """Integrate a framed curve from per-sample curvatures (1/mm) and twist rate (rad/mm).

    ``kappa_sag`` > 0 bends the caudal tangent anteriorly (kyphosis), < 0 posteriorly (lordosis);
    ``kappa_cor`` > 0 bends it to the right (scoliosis); ``twist`` rotates the frame about the tangent.
    """
    m = len(kappa_sag)
    t = [0.0, 0.0, -1.0]
    n = [0.0, 1.0, 0.0]
    b = [1.0, 0.0, 0.0]
    p = [0.0, 0.0, 0.0]
    cs = np.empty((m, 3))
    ts = np.empty((m, 3))
    ns = np.empty((m, 3))
    bs = np.empty((m, 3))
    ks = np.clip(kappa_sag, -MAX_CURVATURE, MAX_CURVATURE).tolist()
    kc = np.clip(kappa_cor, -MAX_CURVATURE, MAX_CURVATURE).tolist()
    tw = np.asarray(twist).tolist()
    for i in range(m):
        cs[i], ts[i], ns[i], bs[i] = p, t, n, b
        t, n = _rotate(t, n, ks[i] * ds)
        t, b = _rotate(t, b, kc[i] * ds)
        n, b = _rotate(n, b, tw[i] * ds)
        p = [p[k] + t[k] * ds for k in range(3)]
    s = s0 + ds * np.arange(m, dtype=np.float64)
    return Centreline(s, cs, ts, ns, bs)


def rotation_between(u: FloatArray, v: FloatArray) -> FloatArray:
    """Rotation matrix taking unit vector ``u`` onto unit vector ``v`` (Rodrigues)."""
    u = u / np.linalg.norm(u)
    v = v / np.linalg.norm(v)
    axis = np.cross(u, v)
    sin = float(np.linalg.norm(axis))
    cos = float(np.dot(u, v))
    if sin < 1e-12:
        return np.eye(3) if cos > 0 else -np.eye(3)
    k = axis / sin
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + sin * kx + (1 - cos) * (kx @ kx)


def small_rotation(rx_deg: float, ry_deg: float, rz_deg: float) -> FloatArray:
    """Rotation about the world x (L-R), y (A-P) and z (S-I) axes, in that order."""
    ax, ay, az = (math.radians(v) for v in (rx_deg, ry_deg, rz_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def transform(cl: Centreline, rot: FloatArray, shift: FloatArray) -> Centreline:
    """Rigidly move a centreline: x -> rot @ x + shift."""
    return Centreline(cl.s, cl.c @ rot.T + shift, cl.t @ rot.T, cl.n @ rot.T, cl.b @ rot.T)
