"""Raw-T1w preprocessing for the brain-age CNN (no registration): RAS, 2 mm, intensity, fixed crop.

Steps: reorient to RAS (exact axis permutation); resample to 2 mm isotropic if the spacing differs
(linear); find the head as the largest connected component of the smoothed, thresholded image;
divide intensities by the median head intensity and clip to [0, 3]; crop/pad to :data:`CROP_SHAPE`
around the head centre in L-R and A-P and downwards from the top of the head in S-I (the vertex is the
most reliable landmark on raw scans whose field of view runs into the neck).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.errors import InputError
from neurospine.io import Volume, reorient, resample_to_spacing

SPACING_MM: tuple[float, float, float] = (2.0, 2.0, 2.0)
#: network input (R, A, S) voxels at 2 mm: 160 x 192 x 176 mm
CROP_SHAPE: tuple[int, int, int] = (80, 96, 88)
#: the S-I crop centre sits ``CROP_SHAPE[2] // 2 - TOP_MARGIN_VOX`` voxels below the topmost head voxel, for
#: every requested crop size (larger crops, used for shift augmentation in training, share the centre); the
#: network input therefore ends one voxel (2 mm of scalp) below the vertex
TOP_MARGIN_VOX = -1

F32 = npt.NDArray[np.float32]


def head_mask(x: npt.NDArray[np.floating]) -> npt.NDArray[np.bool_]:
    """Largest connected component of the smoothed image above 25 % of its 99.5th percentile."""
    p = float(np.percentile(x, 99.5))
    if p <= 0:
        return np.zeros(x.shape, dtype=bool)
    s = ndimage.gaussian_filter(np.clip(x / p, 0, 1).astype(np.float32), 2.0)
    lab, n = ndimage.label(s > 0.25)
    if n == 0:
        return np.zeros(x.shape, dtype=bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    mask: npt.NDArray[np.bool_] = lab == int(sizes.argmax())
    return mask


def crop_centre(mask: npt.NDArray[np.bool_]) -> tuple[int, int, int]:
    """Centre voxel of the crop: head bounding-box centre in R and A, vertex-anchored in S."""
    idx = np.argwhere(mask)
    lo, hi = idx.min(axis=0), idx.max(axis=0)
    c_r = round(float(lo[0] + hi[0]) / 2)
    c_a = round(float(lo[1] + hi[1]) / 2)
    c_s = int(hi[2]) + TOP_MARGIN_VOX - CROP_SHAPE[2] // 2  # independent of ``crop``: one shared centre
    return c_r, c_a, c_s


def crop_at(x: npt.NDArray[np.floating], centre: tuple[int, int, int], shape: tuple[int, int, int]) -> F32:
    """Crop ``shape`` voxels around ``centre`` with zero padding outside the image."""
    out = np.zeros(shape, dtype=np.float32)
    src, dst = [], []
    for ax in range(3):
        start = centre[ax] - shape[ax] // 2
        s0, s1 = max(start, 0), min(start + shape[ax], x.shape[ax])
        if s1 <= s0:
            return out
        src.append(slice(s0, s1))
        dst.append(slice(s0 - start, s1 - start))
    out[tuple(dst)] = x[tuple(src)]
    return out


def preprocess_t1(vol: Volume, shape: tuple[int, int, int] = CROP_SHAPE) -> F32:
    """Network input ``shape`` (RAS, 2 mm, normalised) from a raw T1w volume."""
    ras, _ = reorient(vol, "RAS")
    if not np.allclose(ras.spacing_mm, SPACING_MM, atol=0.05):
        ras = resample_to_spacing(ras, SPACING_MM, order=1)
    x = np.asarray(ras.data, dtype=np.float32)
    mask = head_mask(x)
    if mask.sum() < 1000:
        raise InputError(
            vol.source,
            "no head found in the image (too small or empty after thresholding)",
            "give a whole-head T1-weighted MRI",
        )
    med = float(np.median(x[mask]))
    if med <= 0:
        raise InputError(
            vol.source, "image intensities are not positive inside the head", "give a magnitude T1-weighted image"
        )
    x = np.clip(x / med, 0.0, 3.0)
    return crop_at(x, crop_centre(mask), shape)
