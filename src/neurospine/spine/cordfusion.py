"""The spinal cord of the spine mask, taken from the cord model (``cord_softseg``).

The phase-1 spine network has a cord class but leaves real cords as canal or background, so the cord (60) of the
``seg-spine`` mask comes from the project's cord specialist instead (docs/decisions/spine-cord-from-cord-model.md):
its binary cord mask is written over background, canal and the network's own cord only (never over bone or
disc); the network's cord voxels the cord model does not confirm become canal; cord voxels whose nearest
vertebral body is L3 or lower, or the sacrum, are dropped (below the conus the cord model traces the cauda
equina; the convention of :mod:`neurospine.cord.conus`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.io import Volume
from neurospine.labels import VERTEBRA_NAMES, Structure
from neurospine.models.card import ModelCard

log = logging.getLogger(__name__)

CORD_MODEL = "cord_softseg"
#: smallest cord (mm^3) the fusion writes (the cord pipeline's own "no cord found" limit)
MIN_CORD_MM3 = 30.0
#: margin (mm) around the network's canal where the cord model looks (the cord may lie outside a canal it missed)
SEARCH_MARGIN_MM = 25.0
#: the search stops this far (mm) below the top of the highest body at L3 or lower (the cauda equina lies below)
CONUS_MARGIN_MM = 10.0
#: spine-mask values the cord may be written over
_REPLACEABLE = (0, int(Structure.CANAL), int(Structure.CORD))


@dataclass(frozen=True)
class CordFusion:
    """What the fusion did: cord voxels written, dropped below the conus, and the cord model's version."""

    written_voxels: int
    below_conus_voxels: int
    model_version: str

    def as_dict(self, voxel_mm3: float) -> dict[str, float | str]:
        return {
            "model": f"{CORD_MODEL} {self.model_version}",
            "cord_mm3": round(self.written_voxels * voxel_mm3, 1),
            "dropped_below_conus_mm3": round(self.below_conus_voxels * voxel_mm3, 1),
        }


def _low_levels(body_levels: npt.NDArray[np.integer]) -> list[int]:
    """Level ids in ``body_levels`` at L3 or lower (the sacrum included)."""
    from neurospine.cord.conus import below_conus

    return [int(v) for v in np.unique(body_levels) if v and below_conus(VERTEBRA_NAMES.get(int(v), ""))]


def search_box(
    semantic: npt.NDArray[np.uint8], body_levels: npt.NDArray[np.integer], affine: npt.NDArray[np.float64]
) -> tuple[slice, slice, slice] | None:
    """Where the cord model looks (input-grid slices): the spine network's canal and cord (any label when it
    found neither) grown by :data:`SEARCH_MARGIN_MM`, cut along the input axis nearest to superior-inferior
    :data:`CONUS_MARGIN_MM` below the top of the highest body at L3 or lower (or the sacrum). ``None``: nothing
    labelled, or nothing left above the conus."""
    where = np.isin(semantic, (int(Structure.CANAL), int(Structure.CORD)))
    if not where.any():
        where = semantic > 0
    if not where.any():
        return None
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    box = []
    for axis in range(3):
        idx = np.nonzero(where.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        m = int(np.ceil(SEARCH_MARGIN_MM / spacing[axis]))
        box.append([max(0, int(idx[0]) - m), min(semantic.shape[axis], int(idx[-1]) + m + 1)])
    low = np.isin(body_levels, _low_levels(body_levels)) | (semantic == int(Structure.SACRUM))
    if low.any():
        k = int(np.argmax(np.abs(affine[2, :3])))  # the input axis nearest to superior-inferior
        idx = np.nonzero(low.any(axis=tuple(a for a in range(3) if a != k)))[0]
        m = int(np.ceil(CONUS_MARGIN_MM / spacing[k]))
        if affine[2, k] > 0:  # index grows superiorly: keep what lies above the low bodies' top
            box[k][0] = max(box[k][0], int(idx[-1]) - m)
        else:
            box[k][1] = min(box[k][1], int(idx[0]) + m + 1)
    if any(hi - lo < 2 for lo, hi in box):
        return None
    return (slice(*box[0]), slice(*box[1]), slice(*box[2]))


def cord_mask(vol: Volume, box: tuple[slice, slice, slice], card: ModelCard, session: Any) -> npt.NDArray[np.bool_]:
    """The binary cord mask of the cord model (``card``, ONNX ``session``) inside ``box`` of ``vol``, on ``vol``'s
    grid."""
    from neurospine.cord.segment import SegmentOptions, onnx_predictor, segment_volume

    start = np.array([b.start for b in box], dtype=np.float64)
    affine = np.array(vol.affine, dtype=np.float64)
    affine[:3, 3] = affine[:3, 3] + affine[:3, :3] @ start
    sub = Volume(np.ascontiguousarray(np.asarray(vol.data)[box]), affine, vol.source)
    seg = segment_volume(sub, onnx_predictor(session), SegmentOptions.from_card(card))
    out = np.zeros(vol.shape, dtype=bool)
    out[box] = np.asarray(seg.cord_mask) > 0
    return out


def _world(affine: npt.NDArray[np.float64], idx: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
    """World coordinates (mm) of voxel indices (N, 3)."""
    return idx @ affine[:3, :3].T + affine[:3, 3]


def below_conus_voxels(
    cord: npt.NDArray[np.bool_],
    body_levels: npt.NDArray[np.integer],
    sacrum: npt.NDArray[np.bool_],
    affine: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    """Cord voxels whose nearest vertebral-body centroid (world mm) is L3 or lower, or the sacrum's centroid.

    ``body_levels``: vertebral bodies by level id (unnamed bodies >= 300 count as no level); ``sacrum``: the
    sacrum voxels. Without a named body or sacrum nothing is dropped."""
    centres: list[npt.NDArray[np.float64]] = []
    low: list[bool] = []
    below = set(_low_levels(body_levels))
    for lid in (int(v) for v in np.unique(body_levels) if v):
        if lid not in VERTEBRA_NAMES:
            continue
        centres.append(_world(affine, np.argwhere(body_levels == lid)).mean(axis=0))
        low.append(lid in below)
    if sacrum.any():
        centres.append(_world(affine, np.argwhere(sacrum)).mean(axis=0))
        low.append(True)
    out = np.zeros(cord.shape, dtype=bool)
    if not centres or not any(low) or not cord.any():
        return out
    idx = np.argwhere(cord)
    pts = _world(affine, idx)
    best = np.full(len(idx), np.inf)
    drop = np.zeros(len(idx), dtype=bool)
    for centre, is_low in zip(centres, low, strict=True):  # one centre at a time: no (N, centres, 3) array
        d = np.sum((pts - centre) ** 2, axis=1)
        nearer = d < best
        best[nearer] = d[nearer]
        drop[nearer] = is_low
    out[tuple(idx[drop].T)] = True
    return out


def fuse_cord(
    semantic: npt.NDArray[np.uint8],
    cord: npt.NDArray[np.bool_],
    body_levels: npt.NDArray[np.integer],
    affine: npt.NDArray[np.float64],
    voxel_mm3: float,
) -> tuple[npt.NDArray[np.uint8], int, int]:
    """``semantic`` (SPINEPS values, input grid) with the cord model's ``cord`` written as 60 (see the module).

    Returns the new mask, the cord voxels written and the cord voxels dropped below the conus."""
    out = semantic.copy()
    low = below_conus_voxels(cord, body_levels, semantic == int(Structure.SACRUM), affine)
    keep = cord & ~low & np.isin(semantic, _REPLACEABLE)
    if keep.sum() * voxel_mm3 < MIN_CORD_MM3:
        return out, 0, int((cord & low).sum())
    out[(out == int(Structure.CORD)) & ~keep] = int(Structure.CANAL)
    out[keep] = int(Structure.CORD)
    return out, int(keep.sum()), int((cord & low).sum())
