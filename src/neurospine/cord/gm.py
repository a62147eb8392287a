"""Grey matter inside the cord on axial T2*w (model ``cord_gm``): patches centred on the cord, mapped back.

Each axial slice with cord is resampled to a ``PATCH`` x ``PATCH`` patch at ``SPACING_MM`` in-plane spacing,
centred on the cord mask's centroid (a 16 mm field: the whole cord and a rim of CSF). The model gives a grey-matter
probability on the patch; it is interpolated back onto the slice's own pixels and kept inside the cord mask, so
the output lies on the input grid voxel for voxel. Training (``neurospine.cord.gm_training``) samples its patches
with :func:`patch_coords`, the same geometry plus augmentation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.cord.crop import normalize_patch
from neurospine.io import Volume, reorient

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float32]
Predictor = Callable[[FloatArray], FloatArray]

PATCH = 64
SPACING_MM = 0.25
#: in-plane spacing above which a slice cannot show the grey matter's shape (the training scans: 0.42-0.70 mm)
MAX_INPLANE_MM = 0.9
#: slices thicker than this are refused (training: 2.5-5 mm; errsm_30's 7.5 mm T2*w is read, see cord_gm.md)
MAX_THICKNESS_MM = 10.0


def patch_coords(
    centre_vox: tuple[float, float],
    spacing_mm: tuple[float, float],
    *,
    patch_spacing_mm: float = SPACING_MM,
    size: int = PATCH,
    angle_rad: float = 0.0,
    flip: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Voxel coordinates (i, j) of a patch's pixels in a slice: patch pixel (u, v) lies at
    ``centre + R(angle) (g_u, g_v) / spacing`` with ``g = (k - (size - 1) / 2) * patch_spacing_mm``."""
    g = (np.arange(size, dtype=np.float64) - (size - 1) / 2.0) * patch_spacing_mm
    gu, gv = np.meshgrid(-g if flip else g, g, indexing="ij")
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    x = c * gu - s * gv
    y = s * gu + c * gv
    return (
        (centre_vox[0] + x / spacing_mm[0]).astype(np.float32),
        (centre_vox[1] + y / spacing_mm[1]).astype(np.float32),
    )


def applicable(image: Volume) -> str | None:
    """Why the grey-matter model cannot read ``image`` (None when it can): it needs axial slices (the thick
    axis superior-inferior) with fine in-plane pixels."""
    ras, _ = reorient(image, "RAS")
    sx, sy, sz = ras.spacing_mm
    if sz < max(sx, sy) * 1.5 or sz > MAX_THICKNESS_MM:
        return f"not an axial 2D acquisition (slices {sz:.2f} mm for {sx:.2f} x {sy:.2f} mm pixels)"
    if max(sx, sy) > MAX_INPLANE_MM:
        return f"in-plane spacing {sx:.2f} x {sy:.2f} mm is coarser than {MAX_INPLANE_MM} mm"
    return None


def segment_gm(image: Volume, cord_mask: npt.NDArray[np.bool_], predict: Predictor) -> FloatArray:
    """Grey-matter probability on the input grid (0 outside the cord mask)."""
    ras, record = reorient(image, "RAS")
    cord, _ = reorient(image.with_data(cord_mask.astype(np.uint8)), "RAS")
    data = np.asarray(ras.data, dtype=np.float32)
    inside = np.asarray(cord.data) > 0
    sx, sy = ras.spacing_mm[0], ras.spacing_mm[1]
    out = np.zeros(data.shape, dtype=np.float32)
    ks = [int(k) for k in np.flatnonzero(inside.any(axis=(0, 1)))]
    if not ks:
        return np.asarray(record.undo(out), dtype=np.float32)
    patches, centres = [], []
    for k in ks:
        ii, jj = np.nonzero(inside[:, :, k])
        centre = (float(ii.mean()), float(jj.mean()))
        ci, cj = patch_coords(centre, (sx, sy))
        patch = ndimage.map_coordinates(data[:, :, k], [ci, cj], order=1, mode="nearest")
        patches.append(normalize_patch(patch)[None])
        centres.append(centre)
    probs: list[FloatArray] = []
    for start in range(0, len(patches), 16):
        probs.extend(predict(np.stack(patches[start : start + 16]).astype(np.float32))[:, 0])
    for k, centre, prob in zip(ks, centres, probs, strict=True):
        ii, jj = np.nonzero(inside[:, :, k])
        # slice pixel -> patch pixel: the inverse of patch_coords (no rotation, no flip)
        u = (ii - centre[0]) * sx / SPACING_MM + (PATCH - 1) / 2.0
        v = (jj - centre[1]) * sy / SPACING_MM + (PATCH - 1) / 2.0
        out[ii, jj, k] = ndimage.map_coordinates(prob, [u, v], order=1, mode="constant", cval=0.0)
    return np.asarray(record.undo(out), dtype=np.float32)


MODEL_NAME = "cord_gm"
#: grey-matter probability at or above which a cord voxel is grey matter
THRESHOLD = 0.5


def grey_matter_mask(
    image: Volume, cord_mask: npt.NDArray[np.bool_], *, threads: int = 2, predictor: Predictor | None = None
) -> tuple[npt.NDArray[np.uint8] | None, str | None, dict[str, str]]:
    """The binary grey matter inside ``cord_mask`` on the input grid, or None with the reason the model cannot
    read this image; also the model used (name -> version)."""
    reason = applicable(image)
    if reason is not None:
        return None, f"no grey matter: {reason} (the grey-matter model reads axial T2*w with fine pixels)", {}
    models: dict[str, str] = {}
    if predictor is None:
        from neurospine.cord.segment import onnx_predictor
        from neurospine.inference.onnx import onnx_session
        from neurospine.models import load_card

        card = load_card(MODEL_NAME, task="cord")
        predictor = onnx_predictor(onnx_session(card, threads=threads))
        models[card.name] = card.version
    prob = segment_gm(image, cord_mask, predictor)
    return ((prob >= THRESHOLD) & cord_mask).astype(np.uint8), None, models


#: on T2*w the grey matter is brighter than the white matter (challenge and errsm_30 scans: 1.10-1.15 by the
#: masks this model gives); below this ratio the image does not show the contrast the model was trained on
MIN_GM_WM_RATIO = 1.03


def gm_wm_ratio(image: npt.NDArray[np.floating], gm: npt.NDArray[np.bool_], cord: npt.NDArray[np.bool_]) -> float:
    """Mean intensity of the grey matter over that of the rest of the cord (nan when either is empty)."""
    wm = cord & ~gm
    if not gm.any() or not wm.any():
        return float("nan")
    return float(np.nanmean(image[gm])) / max(float(np.nanmean(image[wm])), 1e-6)
