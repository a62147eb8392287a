"""The cord must lie in the spinal canal: check the cord model's mask against the spine model's bone, and
detect the cord again in the spine model's canal when it landed in bone, outside the canal, or was not found at
all (docs/decisions/cord-in-canal.md and its amendments).

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
from neurospine.cord.segment import MIN_CORD_MM3, CordSegmentation, SegmentOptions, segment_volume
from neurospine.io import Volume
from neurospine.labels import Structure

log = logging.getLogger(__name__)

#: share of the cord mask the spine network labels as bone or disc from which the cord counts as misplaced
MAX_BONE_SHARE = 0.25
#: a cord with less than this share in the spine network's canal (and not in bone) is sought again in the canal
MIN_CANAL_SHARE = 0.5
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
    int(Structure.ENDPLATE_SUP),
    int(Structure.ENDPLATE_INF),
    int(Structure.ENDPLATE),
    int(Structure.DISC),
)
CANAL_VALUES: tuple[int, ...] = (int(Structure.CANAL), int(Structure.CORD))


def _share(cord: npt.NDArray[np.generic], semantic: npt.NDArray[np.integer], values: tuple[int, ...]) -> float | None:
    """Share of the cord mask's voxels that ``semantic`` (same grid) labels with one of ``values`` (``None``
    without cord)."""
    mask = np.asarray(cord) > 0
    n = int(mask.sum())
    return float(np.isin(np.asarray(semantic)[mask], values).sum()) / n if n else None


def bone_share(cord: npt.NDArray[np.generic], semantic: npt.NDArray[np.integer]) -> float:
    """Share of the cord mask's voxels that ``semantic`` (same grid) labels as bone or disc (0 without cord)."""
    return _share(cord, semantic, BONE_VALUES) or 0.0


def canal_share(cord: npt.NDArray[np.generic], semantic: npt.NDArray[np.integer]) -> float | None:
    """Share of the cord mask's voxels that ``semantic`` labels canal or cord (``None`` without cord)."""
    return _share(cord, semantic, CANAL_VALUES)


def not_found_reason(seg: CordSegmentation, voxel_mm3: float) -> str | None:
    """Why ``seg`` holds no cord (``None``: it does): under :data:`MIN_CORD_MM3` of cord, or a cord that
    :func:`segment_volume` rejected as no cord (too short, or failing a cord test: ``extra["rejected"]``;
    docs/decisions/cord-min-length.md, cord-head-midline.md)."""
    cord_mm3 = float(np.count_nonzero(seg.cord_mask)) * voxel_mm3
    if cord_mm3 < MIN_CORD_MM3:
        return f"cord volume {cord_mm3:.0f} mm3 < {MIN_CORD_MM3:.0f} mm3"
    return str(seg.extra.get("rejected") or "") or None


def found(seg: CordSegmentation, voxel_mm3: float) -> bool:
    """Whether ``seg`` holds a cord (:func:`not_found_reason`)."""
    return not_found_reason(seg, voxel_mm3) is None


@dataclass(frozen=True)
class CanalCheck:
    """The cord after the check: ``segmentation`` (``None``: a cord in bone, none kept), whether it was sought
    again in the canal (``redetected``) and whether that second cord was kept (``second_kept``), why it was sought
    (the first pass had no cord, or one rejected as no cord: ``missing``, with ``rejected`` saying why; under
    :data:`MIN_CANAL_SHARE` of it in the canal: ``outside``; else bone), and the bone share of the first and
    second cord."""

    segmentation: CordSegmentation | None
    redetected: bool
    share_before: float
    share_after: float | None = None
    missing: bool = False
    #: share of the kept cord that the spine network labels canal or cord (``None``: no cord kept)
    share_in_canal: float | None = None
    outside: bool = False
    second_kept: bool = False
    #: the first pass found a cord but it was no cord (too short, or rejected by a cord test): why, else ""
    rejected: str = ""

    @property
    def fired(self) -> bool:
        return self.missing or self.outside or self.share_before >= MAX_BONE_SHARE

    @property
    def recovered(self) -> bool:
        """The first pass found no cord and the second, in the canal, found one."""
        return self.missing and self.second_kept

    def as_dict(self) -> dict[str, float | bool | str | None]:
        """The record of the check for a result's ``extra`` (shares rounded to 4 decimals)."""

        def r4(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "share_before": r4(self.share_before),
            "first_pass_empty": self.missing,
            "first_outside_canal": self.outside,
            "second_kept": self.second_kept,
            "redetected_in_canal": self.redetected,
            "share_in_canal": r4(self.share_in_canal),
            "share_after": r4(self.share_after),
            "first_rejected": self.rejected,
        }

    def warning(self) -> str | None:
        """One line for the user when the check changed anything, else ``None``."""
        if self.recovered:
            first = f"rejected its first cord ({self.rejected})" if self.rejected else "found no cord"
            return (
                f"the cord model's own detection {first}; it was found in windows centred on the spine model's "
                f"canal ({100 * (self.share_after or 0.0):.0f} % in bone); check the QC image"
            )
        if self.outside and self.second_kept:
            return (
                f"less than {100 * MIN_CANAL_SHARE:.0f} % of the cord model's first cord lay in the spine model's "
                f"canal; it was found again in windows centred on the canal ({100 * (self.share_in_canal or 0.0):.0f}"
                " % in the canal now); check the QC image"
            )
        if self.missing or self.outside or not self.fired:
            return None
        before = f"{100 * self.share_before:.0f} % of the cord model's first cord lay in bone"
        if self.segmentation is None and not self.redetected:
            return f"{before} and the spine model found no canal to search again: no cord kept"
        if self.segmentation is None:
            return (
                f"{before}; sought again in the spine model's canal it was still misplaced "
                f"({100 * (self.share_after or 0.0):.0f} % in bone): no cord kept"
            )
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
    """``seg`` if it holds cord, under :data:`MAX_BONE_SHARE` of it lies in the spine network's bone and at least
    :data:`MIN_CANAL_SHARE` in its canal (``semantic``, SPINEPS values on ``image``'s grid). Otherwise the cord is
    segmented again with its windows centred on the network's canal:

    - a first cord in bone is replaced by the second if that holds cord and passes the bone test, else dropped
      (``segmentation=None``);
    - a first pass without cord is replaced by the second if that holds cord and passes the bone test, else kept
      (the caller reports no cord as before);
    - a first cord mostly outside the canal (but not in bone) is replaced by the second only if that holds cord,
      passes the bone test and lies mostly in the canal; else the first stays (the network may have found only
      part of the canal)."""
    before = bone_share(seg.cord_mask, semantic)
    missing = not found(seg, image.voxel_volume_mm3)
    # a cord the first pass found but rejected (too short, or failing a cord test) counts as none
    rejected = str(seg.extra.get("rejected") or "") if missing else ""
    in_canal = canal_share(seg.cord_mask, semantic)
    in_bone = not missing and before >= MAX_BONE_SHARE
    outside = not missing and not in_bone and (in_canal or 0.0) < MIN_CANAL_SHARE
    if not (missing or in_bone or outside):
        return CanalCheck(seg, False, before, share_in_canal=in_canal)
    # what stands when the second pass gives nothing better: no cord for one in bone, else the first pass
    fallback, fallback_canal = (None, None) if in_bone else (seg, in_canal)
    canal = np.isin(np.asarray(semantic), CANAL_VALUES)
    if not canal.any() or options.window_mm <= 0:  # nothing to centre on, or no windows to move
        why = "empty" if missing else "outside the canal" if outside else "in bone"
        log.info("cord: first pass %s and the spine model found no canal to search", why)
        return CanalCheck(fallback, False, before, None, missing, fallback_canal, outside, rejected=rejected)
    again = segment_volume(image, predict, options, canal_guide=canal)
    after = bone_share(again.cord_mask, semantic)
    again_canal = canal_share(again.cord_mask, semantic)
    log.info(
        "cord sought again in the spine model's canal (first pass %s): %.0f %% in bone, %s in the canal",
        "empty" if missing else "outside the canal" if outside else f"{100 * before:.0f} % in bone",
        100 * after,
        "none" if again_canal is None else f"{100 * again_canal:.0f} %",
    )
    good = found(again, image.voxel_volume_mm3) and after < MAX_BONE_SHARE
    if outside:
        good = good and (again_canal or 0.0) >= MIN_CANAL_SHARE
    if not good:
        return CanalCheck(fallback, True, before, after, missing, fallback_canal, outside, rejected=rejected)
    return CanalCheck(again, True, before, after, missing, again_canal, outside, second_kept=True, rejected=rejected)
