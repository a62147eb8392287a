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
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.cord.crop import normalize_patch, predict_batched
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
    return _unreadable(reorient(image, "RAS")[0].spacing_mm)


def _unreadable(ras_spacing_mm: tuple[float, float, float]) -> str | None:
    sx, sy, sz = ras_spacing_mm
    if sz < max(sx, sy) * 1.5 or sz > MAX_THICKNESS_MM:
        return f"not an axial 2D acquisition (slices {sz:.2f} mm for {sx:.2f} x {sy:.2f} mm pixels)"
    if max(sx, sy) > MAX_INPLANE_MM:
        return f"in-plane spacing {sx:.2f} x {sy:.2f} mm is coarser than {MAX_INPLANE_MM} mm"
    return None


def gm_probability(
    data: FloatArray, inside: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], predict: Predictor
) -> FloatArray:
    """Grey-matter probability on a RAS grid (axial slices along the last axis), 0 outside ``inside`` (the cord)."""
    sx, sy = spacing_mm
    out = np.zeros(data.shape, dtype=np.float32)
    slices, patches = [], []
    for k in np.flatnonzero(inside.any(axis=(0, 1))).tolist():
        ii, jj = np.nonzero(inside[:, :, k])
        centre = (float(ii.mean()), float(jj.mean()))
        ci, cj = patch_coords(centre, (sx, sy))
        patches.append(normalize_patch(ndimage.map_coordinates(data[:, :, k], [ci, cj], order=1, mode="nearest")))
        slices.append((k, ii, jj, centre))
    for (k, ii, jj, centre), prob in zip(slices, predict_batched(predict, patches), strict=True):
        # slice pixel -> patch pixel: the inverse of patch_coords (no rotation, no flip)
        u = (ii - centre[0]) * sx / SPACING_MM + (PATCH - 1) / 2.0
        v = (jj - centre[1]) * sy / SPACING_MM + (PATCH - 1) / 2.0
        out[ii, jj, k] = ndimage.map_coordinates(prob[0], [u, v], order=1, mode="constant", cval=0.0)
    return out


MODEL_NAME = "cord_gm"
#: grey-matter probability at or above which a cord voxel is grey matter
THRESHOLD = 0.5
#: on T2*w the grey matter is brighter than the white matter (challenge and errsm_30 scans: 1.10-1.15 by the
#: masks this model gives); below this ratio the image does not show the contrast the model was trained on
MIN_GM_WM_RATIO = 1.03


@dataclass(frozen=True)
class GreyMatter:
    """The grey matter of one image: ``mask`` on the input grid (None when the model cannot read the image, with
    the reason in ``note``), ``check`` (what to look at: no GM found, or not the T2*w contrast), the GM/WM
    intensity ratio and the model used."""

    mask: npt.NDArray[np.uint8] | None
    note: str | None = None
    check: str | None = None
    gm_wm_ratio: float = float("nan")
    models: dict[str, str] = field(default_factory=dict)


def grey_matter(
    image: Volume, cord_mask: npt.NDArray[np.bool_], *, threads: int = 2, predictor: Predictor | None = None
) -> GreyMatter:
    """The binary grey matter inside ``cord_mask`` (input grid), checked for the T2*w contrast it was trained on."""
    ras, record = reorient(image, "RAS")
    reason = _unreadable(ras.spacing_mm)
    if reason is not None:
        return GreyMatter(None, f"no grey matter: {reason} (the grey-matter model reads axial T2*w with fine pixels)")
    models: dict[str, str] = {}
    if predictor is None:
        from neurospine.cord.segment import onnx_predictor
        from neurospine.inference.onnx import onnx_session
        from neurospine.models import load_card

        card = load_card(MODEL_NAME, task="cord")
        predictor = onnx_predictor(onnx_session(card, threads=threads))
        models[card.name] = card.version
    data = np.asarray(ras.data, dtype=np.float32)
    inside = np.asarray(reorient(image.with_data(cord_mask.astype(np.uint8)), "RAS")[0].data) > 0
    gm = (gm_probability(data, inside, (ras.spacing_mm[0], ras.spacing_mm[1]), predictor) >= THRESHOLD) & inside
    ratio = gm_wm_ratio(data, gm, inside)
    check = None
    if not gm.any():
        check = "no grey matter found inside the cord (gm_area_mm2 is 0); check the QC picture"
    elif np.isfinite(ratio) and ratio < MIN_GM_WM_RATIO:
        check = (
            f"the grey matter found is not brighter than the white matter (intensity ratio {ratio:.2f}, T2*w: "
            "1.10-1.15): the grey-matter model expects T2*w contrast; check the QC picture"
        )
    return GreyMatter(np.asarray(record.undo(gm.astype(np.uint8)), dtype=np.uint8), None, check, ratio, models)


def gm_wm_ratio(image: npt.NDArray[np.floating], gm: npt.NDArray[np.bool_], cord: npt.NDArray[np.bool_]) -> float:
    """Mean intensity of the grey matter over that of the rest of the cord (nan when either is empty)."""
    wm = cord & ~gm
    if not gm.any() or not wm.any():
        return float("nan")
    return float(np.nanmean(image[gm])) / max(float(np.nanmean(image[wm])), 1e-6)
