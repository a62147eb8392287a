"""Axis-aligned render grids (RAS world, voxel centres) and fast canonical-coordinate fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neurospine.synth.spine_shape import Centreline

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Grid:
    """``data[i, j, k]`` sits at world ``origin + (i, j, k) * spacing`` (axes R, A, S)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def affine(self) -> npt.NDArray[np.float64]:
        aff = np.eye(4)
        aff[:3, :3] = np.diag(self.spacing)
        aff[:3, 3] = self.origin
        return aff

    def axis_coords(self, axis: int) -> npt.NDArray[np.float64]:
        return self.origin[axis] + self.spacing[axis] * np.arange(self.shape[axis], dtype=np.float64)

    def block(self, lo: npt.ArrayLike, hi: npt.ArrayLike) -> tuple[slice, slice, slice] | None:
        """Index slices covering the world box ``[lo, hi]`` (``None`` when it misses the grid)."""
        lo_a = np.asarray(lo, dtype=np.float64)
        hi_a = np.asarray(hi, dtype=np.float64)
        out = []
        for ax in range(3):
            i0 = int(np.floor((lo_a[ax] - self.origin[ax]) / self.spacing[ax]))
            i1 = int(np.ceil((hi_a[ax] - self.origin[ax]) / self.spacing[ax])) + 1
            i0, i1 = max(i0, 0), min(i1, self.shape[ax])
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return out[0], out[1], out[2]


def _upsample_axis(arr: F32, axis: int, factor: int, n_out: int) -> F32:
    """Linear interpolation from samples at every ``factor``-th index to all ``n_out`` indices.

    Needs ``arr.shape[axis] >= ceil(n_out / factor) + 1``; works by broadcasting (no gathers).
    """
    if factor == 1:
        sl = [slice(None)] * arr.ndim
        sl[axis] = slice(0, n_out)
        return arr[tuple(sl)]
    n_q = -(-n_out // factor)
    lo = [slice(None)] * arr.ndim
    hi = [slice(None)] * arr.ndim
    lo[axis] = slice(0, n_q)
    hi[axis] = slice(1, n_q + 1)
    c0 = np.expand_dims(arr[tuple(lo)], axis + 1)
    c1 = np.expand_dims(arr[tuple(hi)], axis + 1)
    wshape = [1] * (arr.ndim + 1)
    wshape[axis + 1] = factor
    w = (np.arange(factor, dtype=np.float32) / np.float32(factor)).reshape(wshape)
    out = c0 + (c1 - c0) * w
    shape = list(arr.shape)
    shape[axis] = n_q * factor
    out = out.reshape(shape)
    sl = [slice(None)] * arr.ndim
    sl[axis] = slice(0, n_out)
    return out[tuple(sl)]


def canonical_fields(grid: Grid, cl: Centreline, step_mm: float = 4.0) -> tuple[F32, F32, F32]:
    """Canonical ``s, a, l`` at every voxel: exact on a coarse lattice, trilinear in between.

    The fields are smooth (the curvature radius is > 100 mm), so a 4 mm lattice is accurate to a few
    hundredths of a millimetre while costing 1/64 of a dense computation.
    """
    factors = [max(1, round(step_mm / sp)) for sp in grid.spacing]
    n_coarse = [(n - 1) // f + 2 for n, f in zip(grid.shape, factors, strict=True)]
    axes = [grid.origin[i] + grid.spacing[i] * factors[i] * np.arange(n_coarse[i]) for i in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    s, a, l = cl.canonical(pts)  # noqa: E741
    out = []
    for field in (s, a, l):
        arr = field.reshape(n_coarse).astype(np.float32)
        # upsample the axis with the smallest factor last (keeps intermediate arrays small)
        for ax in np.argsort(factors)[::-1]:
            arr = _upsample_axis(arr, int(ax), factors[int(ax)], grid.shape[int(ax)])
        out.append(np.ascontiguousarray(arr))
    return out[0], out[1], out[2]
