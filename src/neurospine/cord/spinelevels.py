"""Where the cord's vertebral levels come from: a given mask, the whole-spine model, or nowhere.

``levels_from_mask`` handles ``--levels``: a cord-by-level mask (no disc or endplate ids, and most of
its labelled voxels on the cord: :func:`neurospine.cord.levels.is_cord_by_level`) is used as it is;
a ``seg-vert`` mask (whole vertebrae beside the cord, even when their arches touch it) is projected
along the cord like the estimate below, from the part of each vertebra in front of the cord (its body).

``estimate_levels`` runs the whole-spine pipeline (``neurospine.spine.api.segment``) in-process on the
same image when its input check accepts the image (sagittal or near-isotropic, enough field of view),
and turns the named vertebral bodies and discs into a cord-by-level mask with
:func:`neurospine.cord.autolevels.paint_cord_levels`. It never raises for an image the spine model
cannot read: the result says ``source="none"`` and carries a warning naming the ``--levels`` fix.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from neurospine.cord.autolevels import BODY_MIN_ANTERIOR_MM, LevelSpan, paint_cord_levels
from neurospine.cord.levels import classify_level_mask, level_name, vertebra_ids
from neurospine.cord.morphometry import PRESENT_THRESHOLD
from neurospine.errors import InputError, NeuroSpineError
from neurospine.io import Volume
from neurospine.labels import DISC_OFFSET, ENDPLATE_OFFSET

if TYPE_CHECKING:
    from neurospine.spine.api import SpineSegmentation

log = logging.getLogger(__name__)

LevelsSource = Literal["mask", "estimated", "none"]

LEVELS_FIX = (
    "give --levels VERT_MASK (the seg-vert output of `neurospine spine` on the sagittal series of the "
    "exam, or a cord-by-level mask) for per-level CSA"
)


@dataclass
class LevelEstimate:
    """A painted cord-by-level mask (``None``: none, or use the given mask as is) and its provenance."""

    mask: npt.NDArray[np.int16] | None
    source: LevelsSource
    anchor: str = ""  # spine naming anchor: "C2", "S1", "S1+C2", "positional", "none"; "" when not estimated
    confidence: float | None = None
    spans: list[LevelSpan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    models: dict[str, str] = field(default_factory=dict)  # model name -> version, when the spine model ran
    median_body_depth_mm: float | None = None  # of the bodies the spine model found (cervical: < 20 mm)
    from_discs: bool = False  # named from the discs in front of the cord (the spine model named nothing)
    naming_method: str = ""  # spine.naming.Naming.method: how a positional naming was made

    @property
    def positional(self) -> bool:
        return self.source == "estimated" and self.anchor == "positional"


def _none(
    reason: str,
    t0: float,
    anchor: str = "",
    confidence: float | None = None,
    models: dict[str, str] | None = None,
) -> LevelEstimate:
    return LevelEstimate(
        None,
        "none",
        anchor,
        confidence,
        warnings=[f"no vertebral levels: {reason}; {LEVELS_FIX}"],
        seconds=time.perf_counter() - t0,
        models=dict(models or {}),
    )


def levels_from_mask(
    level_mask: npt.NDArray[np.generic], cord_soft: npt.NDArray[np.floating], image: Volume
) -> LevelEstimate:
    """``--levels``: a painted cord-by-level mask for a seg-vert mask, ``mask=None`` to use it as given."""
    raw = np.asarray(level_mask)
    cord = np.asarray(cord_soft, dtype=np.float32)
    ids = vertebra_ids(raw)
    by_level, why = classify_level_mask(raw, cord >= PRESENT_THRESHOLD, spacing_mm=image.spacing_mm)
    if by_level:
        log.info("level mask used as a cord-by-level mask (%s)", why)
        return LevelEstimate(None, "mask")  # cord-by-level mask: its own labels name the slices
    log.info("level mask projected along the cord as a seg-vert mask (%s)", why)
    discs = np.where((raw > DISC_OFFSET) & (raw < ENDPLATE_OFFSET), raw, 0).astype(np.int16)
    mask, spans = paint_cord_levels(image.with_data(cord), ids, discs, min_anterior_mm=BODY_MIN_ANTERIOR_MM)
    if not np.any(mask):
        log.warning("no vertebral body of the level mask lies in front of the cord: slice-wise vote used")
        return LevelEstimate(None, "mask")
    return LevelEstimate(mask, "mask", spans=spans)


@dataclass(frozen=True)
class SpineReading:
    """The whole-spine pipeline run on the cord's image: its segmentation, or why there is none."""

    seg: SpineSegmentation | None
    reason: str = ""
    seconds: float = 0.0


def read_spine(image: Volume, *, threads: int = 2) -> SpineReading:
    """Run the whole-spine pipeline on ``image`` when its input check accepts it; never raises."""
    from neurospine.spine.api import segment
    from neurospine.spine.preprocess import check_input

    t0 = time.perf_counter()
    try:
        check_input(image)
    except InputError as e:
        return SpineReading(None, f"the spine model cannot read this image ({e.problem})", time.perf_counter() - t0)
    try:
        seg = segment(image, threads=threads, cord=False)  # levels need bodies and discs, not the fused cord
    except NeuroSpineError as e:
        return SpineReading(None, f"the spine model failed ({e})", time.perf_counter() - t0)
    return SpineReading(seg, "", time.perf_counter() - t0)


def estimate_levels(
    image: Volume, cord_soft: npt.NDArray[np.floating], *, threads: int = 2, reading: SpineReading | None = None
) -> LevelEstimate:
    """Cord-by-level mask on ``image``'s grid from the whole-spine model (see the module docstring); ``reading``:
    the spine pipeline already run on ``image`` (:func:`read_spine`)."""
    from neurospine.spine.api import SEMANTIC_MODEL

    if reading is None:
        reading = read_spine(image, threads=threads)
    t0 = time.perf_counter() - reading.seconds  # the spine model's time counts in the estimate's seconds
    if reading.seg is None:
        return _none(reading.reason, t0)
    seg = reading.seg
    naming = seg.naming
    anchor, conf = str(naming.anchor), float(naming.confidence)
    models = dict(seg.models) or {SEMANTIC_MODEL: seg.model_version}
    if not any(naming.levels):
        reason = f"the spine model named no vertebra in this image (naming: {anchor})"
        return _none(reason, t0, anchor, conf, models)
    vert = np.asarray(seg.seg_vert_input)
    discs = np.where((vert > DISC_OFFSET) & (vert < ENDPLATE_OFFSET), vert, 0).astype(np.int16)
    mask, spans = paint_cord_levels(image.with_data(np.asarray(cord_soft, dtype=np.float32)), seg.body_input, discs)
    if not np.any(mask):
        return _none("no cord slice lies opposite a named vertebra", t0, anchor, conf, models)
    names = " ".join(level_name(s.level) for s in spans if s.level)
    warnings = [
        f"vertebral levels estimated from the whole-spine model ({names}; naming anchor {anchor}, "
        f"naming confidence {conf:.2f}); give --levels VERT_MASK to use your own"
    ]
    warnings += [f"spine naming: {flag}" for flag in naming.flags]
    if anchor == "positional":
        warnings.append(
            "the spine naming used no anchor (C2 or the sacrum; see the spine naming note for why): level names "
            "are positional and may be shifted; check the QC image or give --levels VERT_MASK"
        )
    log.info("cord levels estimated from the spine model: %s (anchor %s, %.2f)", names, anchor, conf)
    depths = [v.depth_mm for v in seg.instances.vertebrae]
    depth = float(np.median(depths)) if depths else None
    return LevelEstimate(
        mask,
        "estimated",
        anchor,
        conf,
        spans,
        warnings,
        time.perf_counter() - t0,
        models,
        depth,
        naming_method=naming.method,
    )
