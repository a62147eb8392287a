"""The spinal cord of the spine mask, taken from the cord model (``cord_softseg``).

The phase-1 spine network has a cord class but leaves real cords as canal or background, so the cord (60) of the
``seg-spine`` mask comes from the project's cord specialist instead (docs/decisions/spine-cord-from-cord-model.md):

- the cord model runs in a box around the network's canal (:func:`search_box`; head to foot the whole field of
  view, since the network may find the canal only in part), on the whole image when the network found neither
  canal nor vertebral body;
- its binary cord is written over background, canal and the network's own cord only (never over bone or disc);
- the network's own cord voxels always become canal: the cord label comes from the cord model or not at all;
- below the conus the cord model traces the cauda equina, so when the levels are anchored (named from the sacrum
  or C2, not positionally) cord voxels whose nearest vertebral body is L3 or lower, or the sacrum, are dropped
  (the convention of :mod:`neurospine.cord.conus`). With positional names the rule is not applied: a guessed
  "L3" may be a thoracic body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.cord.incanal import CANAL_VALUES, ensure_in_canal, not_found_reason
from neurospine.cord.segment import MIN_CORD_MM3, CordSegmentation
from neurospine.io import Volume
from neurospine.labels import VERTEBRA_NAMES, Structure
from neurospine.models.card import ModelCard
from neurospine.spine.centres import label_centres

log = logging.getLogger(__name__)

CORD_MODEL = "cord_softseg"
#: margin (mm) across the cord around the network's canal where the cord model looks (head to foot: the whole view)
SEARCH_MARGIN_MM = 25.0
#: the search stops this far (mm) below the top of the highest body at L3 or lower (the cauda equina lies below)
CONUS_MARGIN_MM = 10.0
#: spine-mask values the cord may be written over
_REPLACEABLE = (0, int(Structure.CANAL), int(Structure.CORD))

Box = tuple[slice, slice, slice]


@dataclass(frozen=True)
class CordFusion:
    """What the fusion did: whether the cord model ran, cord voxels written, dropped below the conus, the model,
    and what the cord-in-canal check did (``None``: nothing)."""

    ran: bool
    written_voxels: int
    below_conus_voxels: int
    model_version: str
    canal_note: str | None = None

    def as_dict(self, voxel_mm3: float) -> dict[str, float | str | bool | None]:
        return {
            "model": f"{CORD_MODEL} {self.model_version}",
            "ran": self.ran,
            "cord_mm3": round(self.written_voxels * voxel_mm3, 1),
            "dropped_below_conus_mm3": round(self.below_conus_voxels * voxel_mm3, 1),
            "canal_check": self.canal_note,
        }


def superior_axis(affine: npt.NDArray[np.float64]) -> tuple[int, bool]:
    """The voxel axis nearest to superior-inferior (by direction, not by spacing) and whether its index grows
    superiorly."""
    lin = np.asarray(affine, dtype=np.float64)[:3, :3]
    direction = lin / np.linalg.norm(lin, axis=0)
    k = int(np.argmax(np.abs(direction[2])))
    return k, bool(direction[2, k] > 0)


def _low_levels(body_levels: npt.NDArray[np.integer]) -> list[int]:
    """Level ids in ``body_levels`` at L3 or lower (the sacrum included)."""
    from neurospine.cord.conus import below_conus

    return [int(v) for v in np.unique(body_levels) if v and below_conus(VERTEBRA_NAMES.get(int(v), ""))]


def search_box(
    semantic: npt.NDArray[np.uint8],
    body_levels: npt.NDArray[np.integer],
    affine: npt.NDArray[np.float64],
    *,
    use_levels: bool = True,
) -> Box | None:
    """Where the cord model looks (input-grid slices): the spine network's canal and cord grown by
    :data:`SEARCH_MARGIN_MM` in the two axes across the cord (along the input axis nearest to superior-inferior
    the whole field of view: the network may find the canal only in part); without them every label so grown when
    the network found a vertebral body, else the whole field of view (on small cervical crops it may label no body
    at all while the cord model still sees the cord); with ``use_levels`` (anchored names) cut along the
    superior-inferior axis :data:`CONUS_MARGIN_MM` below the top of the highest body at L3 or lower (or the
    sacrum). ``None``: nothing left to search (below the conus, or a box under 2 voxels thick)."""
    where = np.isin(semantic, CANAL_VALUES)
    if not where.any() and (semantic == int(Structure.CORPUS)).any():
        where = semantic > 0
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    box = [[0, size] for size in semantic.shape]
    k, grows_up = superior_axis(affine)
    for axis in range(3) if where.any() else ():
        if axis == k:  # the cord runs on past a canal the network found only in part: never cut head to foot
            continue
        idx = np.nonzero(where.any(axis=tuple(a for a in range(3) if a != axis)))[0]
        m = int(np.ceil(SEARCH_MARGIN_MM / spacing[axis]))
        box[axis] = [max(0, int(idx[0]) - m), min(semantic.shape[axis], int(idx[-1]) + m + 1)]
    low = np.isin(body_levels, _low_levels(body_levels)) | (semantic == int(Structure.SACRUM))
    if use_levels and low.any():
        idx = np.nonzero(low.any(axis=tuple(a for a in range(3) if a != k)))[0]
        m = int(np.ceil(CONUS_MARGIN_MM / spacing[k]))
        if grows_up:  # keep what lies above the low bodies' top
            box[k][0] = max(box[k][0], int(idx[-1]) - m)
        else:
            box[k][1] = min(box[k][1], int(idx[0]) + m + 1)
    if any(hi - lo < 2 for lo, hi in box):
        return None
    return (slice(*box[0]), slice(*box[1]), slice(*box[2]))


def sub_volume(vol: Volume, box: Box) -> Volume:
    """The part of ``vol`` inside ``box``, with its own affine (same world positions)."""
    start = np.array([b.start for b in box], dtype=np.float64)
    affine = np.array(vol.affine, dtype=np.float64)
    affine[:3, 3] = affine[:3, 3] + affine[:3, :3] @ start
    return Volume(np.ascontiguousarray(np.asarray(vol.data)[box]), affine, vol.source)


def cord_mask(
    sub: Volume, card: ModelCard, session: Any, semantic: npt.NDArray[np.uint8] | None = None
) -> tuple[npt.NDArray[np.bool_], str | None]:
    """The binary cord mask of the cord model (``card``, ONNX ``session``) on ``sub`` (the search box's part of the
    image), and what the cord-in-canal check did (``None``: nothing). With the network's ``semantic`` labels on
    ``sub``'s grid, a cord that lands in the network's bone, or no cord at all, is sought again in its canal
    (:func:`neurospine.cord.incanal.ensure_in_canal`)."""
    from neurospine.cord.segment import SegmentOptions, onnx_predictor, segment_volume  # tests patch onnx_predictor

    predict, opt = onnx_predictor(session), SegmentOptions.from_card(card)
    seg = segment_volume(sub, predict, opt)
    if semantic is None:
        kept: CordSegmentation | None = seg
        note = None
    else:
        check = ensure_in_canal(sub, predict, opt, seg, semantic)
        kept, note = check.segmentation, check.warning()
    if kept is None:
        return np.zeros(sub.shape, dtype=bool), note
    why = not_found_reason(kept, sub.voxel_volume_mm3)
    if why is not None:  # what `neurospine cord` would refuse is not written either
        refused = f"the cord model's cord was not kept ({why})"
        return np.zeros(sub.shape, dtype=bool), refused if note is None else f"{note}; {refused}"
    return np.asarray(kept.cord_mask) > 0, note


def body_centres(
    body_levels: npt.NDArray[np.integer], sacrum: npt.NDArray[np.bool_], affine: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """World centroids (mm) of the bodies in ``body_levels`` and of the ``sacrum``, and which of them lie below the
    conus (a body at L3 or lower, the sacrum; unnamed bodies, >= 300, never)."""
    ids = [int(v) for v in np.unique(body_levels) if v]
    lin, origin = np.asarray(affine)[:3, :3], np.asarray(affine)[:3, 3]
    centres = [lin @ np.asarray(c) + origin for c in label_centres(body_levels, ids)]
    low_ids = set(_low_levels(body_levels))
    low = [i in low_ids for i in ids]
    if sacrum.any():
        centres.append(lin @ label_centres(sacrum.astype(np.uint8), [1])[0] + origin)
        low.append(True)
    return np.asarray(centres, dtype=np.float64).reshape(-1, 3), np.asarray(low, dtype=bool)


def below_conus_voxels(
    cord: npt.NDArray[np.bool_],
    affine: npt.NDArray[np.float64],
    centres: npt.NDArray[np.float64],
    low: npt.NDArray[np.bool_],
) -> npt.NDArray[np.bool_]:
    """Cord voxels (grid of ``affine``) whose nearest centre (:func:`body_centres`) is one below the conus."""
    out = np.zeros(cord.shape, dtype=bool)
    if not cord.any() or not low.any():
        return out
    idx = np.argwhere(cord)
    pts = idx @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
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
    affine: npt.NDArray[np.float64],
    voxel_mm3: float,
    centres: npt.NDArray[np.float64],
    low: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.uint8], int, int]:
    """``semantic`` (SPINEPS values; the network's cord already turned to canal) with the cord model's ``cord``
    (same grid, ``affine``) written as 60 over background and canal, except below the conus (``centres``/``low``
    from :func:`body_centres`; empty: no level rule). Returns the mask, cord voxels written and dropped."""
    out = semantic.copy()
    below = below_conus_voxels(cord, affine, centres, low)
    keep = cord & ~below & np.isin(semantic, _REPLACEABLE)
    dropped = int((cord & below).sum())
    if keep.sum() * voxel_mm3 < MIN_CORD_MM3:
        return out, 0, dropped
    out[keep] = int(Structure.CORD)
    return out, int(keep.sum()), dropped


def fuse(
    vol: Volume,
    semantic: npt.NDArray[np.uint8],
    body_levels: npt.NDArray[np.integer],
    card: ModelCard,
    session: Callable[[], Any],
    *,
    use_levels: bool,
) -> tuple[npt.NDArray[np.uint8], CordFusion]:
    """The whole fusion on the input grid: the network's cord to canal, the search box, the cord model in it
    (``session`` makes its ONNX session), and its cord written there (see the module). ``use_levels``: the level
    names are anchored, so the conus rule may use them."""
    out = semantic.copy()
    out[out == int(Structure.CORD)] = int(Structure.CANAL)
    box = search_box(out, body_levels, np.asarray(vol.affine), use_levels=use_levels)
    if box is None:  # below the conus, or too thin a box
        log.info("cord model not run: nothing left to search above the conus")
        return out, CordFusion(False, 0, 0, card.version)
    log.debug("cord model search box %s of %s", box, vol.shape)
    sub = sub_volume(vol, box)
    cord, note = cord_mask(sub, card, session(), out[box])
    if use_levels:
        centres, low = body_centres(body_levels, out == int(Structure.SACRUM), np.asarray(vol.affine))
    else:
        centres, low = np.zeros((0, 3)), np.zeros(0, dtype=bool)
    fused, written, dropped = fuse_cord(out[box], cord, sub.affine, vol.voxel_volume_mm3, centres, low)
    out[box] = fused
    log.debug("cord model: %d voxels written, %d below the conus", written, dropped)
    return out, CordFusion(True, written, dropped, card.version, note)
