"""Image formation and corruption: texture, partial volume, bias field, noise, ghosting, wrap-around."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.synth.grid import _upsample_axis

F32 = npt.NDArray[np.float32]


def smooth_field(shape: tuple[int, int, int], step: tuple[int, int, int], rng: np.random.Generator) -> F32:
    """A smooth random field N(0, 1) at control points every ``step`` voxels, trilinear in between."""
    n_ctrl = [(n - 1) // f + 2 for n, f in zip(shape, step, strict=True)]
    arr = rng.standard_normal(n_ctrl, dtype=np.float32)
    for ax in range(3):
        arr = _upsample_axis(arr, ax, step[ax], shape[ax])
    return arr


def texture(shape: tuple[int, int, int], rng: np.random.Generator) -> F32:
    """Spatially correlated texture, a random mix of ~2-voxel and ~5-voxel grain (about unit variance)."""
    w_fine, w_coarse = rng.uniform(0.3, 1.0, 2)
    norm = float(np.hypot(w_fine, w_coarse))
    out = smooth_field(shape, (2, 2, 2), rng)
    out *= np.float32(1.6 * w_fine / norm)
    coarse = smooth_field(shape, (5, 5, 5), rng)
    coarse *= np.float32(1.5 * w_coarse / norm)
    out += coarse
    return out


def coil_profile(shape: tuple[int, int, int], spacing_mm: float, rng: np.random.Generator) -> F32:
    """Posterior surface-coil sensitivity: signal decays with distance from the back (axis 1 = anterior)."""
    decay_mm = float(rng.uniform(80.0, 300.0))
    depth = np.arange(shape[1], dtype=np.float32) * np.float32(spacing_mm)
    prof = np.exp(-depth / np.float32(decay_mm))
    prof /= prof.mean()
    return prof.reshape(1, -1, 1).astype(np.float32)


def bias_field(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], strength: float, rng: np.random.Generator
) -> F32:
    """Multiplicative smooth bias (exp of a coarse random field with control points ~60 mm apart)."""
    step = tuple(max(2, round(60.0 / sp)) for sp in spacing)
    field = smooth_field(shape, (step[0], step[1], step[2]), rng)
    field *= np.float32(strength)
    return np.exp(field, out=field)


def blur(img: F32, sigma_vox: tuple[float, float, float]) -> F32:
    if max(sigma_vox) < 0.15:
        return img
    return ndimage.gaussian_filter(img, sigma=sigma_vox, truncate=2.5).astype(np.float32, copy=False)


def rician(img: F32, sigma: float, rng: np.random.Generator) -> F32:
    """Magnitude of a complex signal with Gaussian noise in both channels."""
    n1 = rng.standard_normal(img.shape, dtype=np.float32)
    n1 *= np.float32(sigma)
    n1 += img
    n2 = rng.standard_normal(img.shape, dtype=np.float32)
    n2 *= np.float32(sigma)
    np.square(n1, out=n1)
    np.square(n2, out=n2)
    n1 += n2
    return np.sqrt(n1, out=n1)


def ghosting(img: F32, axis: int, rng: np.random.Generator) -> F32:
    """Motion-like ghosts: faint copies shifted along the phase-encoding axis."""
    n = img.shape[axis]
    out = img.copy()
    for _ in range(int(rng.integers(1, 3))):
        shift = int(rng.integers(n // 8, n // 3 + 1))
        out += np.float32(rng.uniform(0.03, 0.12)) * np.roll(img, shift, axis=axis)
    return out


def wrap_around(img: F32, axis: int, rng: np.random.Generator) -> F32:
    """Aliasing: the signal from one end of the phase-encoding axis folds onto the other end."""
    n = img.shape[axis]
    band = int(rng.integers(max(2, n // 12), max(3, n // 5)))
    out = img.copy()
    src = [slice(None)] * 3
    dst = [slice(None)] * 3
    src[axis] = slice(n - band, n)
    dst[axis] = slice(0, band)
    out[tuple(dst)] += img[tuple(src)] * np.float32(rng.uniform(0.4, 0.9))
    return out


def gamma(img: F32, rng: np.random.Generator, sd: float = 0.25) -> F32:
    """Random gamma on an image normalised to [0, 1] (contrast curve variation)."""
    g = float(np.exp(rng.normal(0.0, sd)))
    lo = float(img.min())
    hi = float(img.max())
    if hi - lo < 1e-6:
        return img
    x = (img - lo) / (hi - lo)
    return np.power(np.clip(x, 0.0, 1.0), g, dtype=np.float32)
