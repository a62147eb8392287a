"""The cord must lie in the spinal canal: check the cord model's mask against the spine model's bone, and
re-detect the cord in the spine model's canal when it landed in bone (docs/decisions/cord-in-canal.md).

The cord model's coarse detection pass picks the heaviest cord-like component of the whole slice. On lumbar
scans, which it never trained on, that component can be a pattern inside a vertebral body. The spine network's
semantic labels (SPINEPS values, same grid) say where bone and canal are; this module uses them only to check
and, when needed, to place the windows of a second pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neurospine.cord.crop import Predictor
from neurospine.cord.segment import CordSegmentation, SegmentOptions, segment_volume
from neurospine.io import Volume
from neurospine.labels import Structure

log = logging.getLogger(__name__)

#: share of the cord mask the spine network labels as bone or disc from which the cord counts as misplaced
MAX_BONE_SHARE = 0.25
#: spine-network values the cord can never lie in
BONE_VALUES: tuple[int, ...] = (
    int(Structure.SACRUM),
    int(Structure.ARCUS),
    int(Structure.SPINOUS),
    int(Structure.COSTAL_L),
    int(Structure.COSTAL_R),
    int(Structure.SUP_ARTICULAR_L),
    int(Structure.SUP_ARTICULAR_R),
    int(Structure.INF_ARTICULAR_L),
    int(Structure.INF_ARTICULAR_R),
    int(Structure.CORPUS),
    int(Structure.CORPUS_INNER),
    int(Structure.ENDPLATE),
    int(Structure.DISC),
)
CANAL_VALUES: tuple[int, ...] = (int(Structure.CANAL), int(Structure.CORD))


def bone_share(cord: npt.NDArray[np.generic], semantic: npt.NDArray[np.integer]) -> float:
    """Share of the cord mask's voxels that ``semantic`` (same grid) labels as bone or disc (0 without cord)."""
    mask = np.asarray(cord) > 0
    n = int(mask.sum())
    return float(np.isin(np.asarray(semantic)[mask], BONE_VALUES).sum()) / n if n else 0.0


@dataclass(frozen=True)
class CanalCheck:
    """The cord after the check: ``segmentation`` (``None``: no cord left), whether it was re-detected in the
    canal, and the bone share before and after."""

    segmentation: CordSegmentation | None
    redetected: bool
    share_before: float
    share_after: float | None = None

    @property
    def fired(self) -> bool:
        return self.share_before >= MAX_BONE_SHARE

    def warning(self) -> str | None:
        """One line for the user when the check changed anything, else ``None``."""
        if not self.fired:
            return None
        before = f"{100 * self.share_before:.0f} % of the cord model's first cord lay in bone"
        if self.segmentation is None:
            after = "" if self.share_after is None else f" ({100 * self.share_after:.0f} % after)"
            return f"{before}; re-detected in the spine model's canal it was still misplaced{after}: no cord kept"
        return (
            f"{before} (the spine model's vertebrae); the cord was re-detected in the spine model's canal "
            f"({100 * (self.share_after or 0.0):.0f} % in bone now); check the QC image"
        )


def ensure_in_canal(
    image: Volume,
    predict: Predictor,
    options: SegmentOptions,
    seg: CordSegmentation,
    semantic: npt.NDArray[np.integer],
) -> CanalCheck:
    """``seg`` if under :data:`MAX_BONE_SHARE` of its cord lies in the spine network's bone (``semantic``, SPINEPS
    values on ``image``'s grid); otherwise the cord segmented again with its windows centred on the network's
    canal, kept only if it holds cord and passes the same test."""
    before = bone_share(seg.cord_mask, semantic)
    if before < MAX_BONE_SHARE:
        return CanalCheck(seg, False, before)
    canal = np.isin(np.asarray(semantic), CANAL_VALUES)
    if not canal.any():
        log.info("cord: %.0f %% of the cord lies in bone and the spine model found no canal", 100 * before)
        return CanalCheck(None, False, before)
    again = segment_volume(image, predict, options, canal_guide=canal)
    after = bone_share(again.cord_mask, semantic)
    log.info("cord in bone: %.0f %% -> %.0f %% after re-detection in the canal", 100 * before, 100 * after)
    if again.empty or after >= MAX_BONE_SHARE:
        return CanalCheck(None, True, before, after)
    return CanalCheck(again, True, before, after)
