"""Calibrated confidence of the cord's estimated vertebral levels.

The pipeline knows, when it names the cord slices, which situation it is in (groups fixed before scoring in
``docs/decisions/cord-level-confidence.md``, revisions 2 and 3): the spine model's naming was anchored on C2 or the
sacrum and confident, anchored but doubtful (transitional signs), positional (no anchor) by one of four methods
(top vertebra taken as C2 in a field of view that ends above the lumbar spine, the same in one that reaches it, top
from the body-depth profile, lowest taken as L5), or the spine model named nothing and the discs in front of the
cord were counted from the top. The printed ``levels_confidence`` is the share of cord slices named right in that
group on fresh synthetic calibration scans (``benchmarks/cord_levels.py``, even seeds; odd seeds check it); the
spine model's own naming confidence stays available as ``levels_naming_confidence``.
"""

from __future__ import annotations

from neurospine.spine.naming import CONFIDENT

#: group -> share of cord slices named right on the calibration scans (benchmarks/results/cord_levels.md);
#: a group missing here keeps the raw naming confidence, capped at UNCALIBRATED_CAP
#: (run 4, seeds 84001-84078 with spine_semantic 0.16.0, 2026-12-05, 32 calibration scans: anchored 13 scans 0.933 right
#: -> 0.90; top-C2 9 scans 0.992 -> 0.95; depth-profile 7 scans 0.166 -> 0.15; top-C2 reaching the lumbar spine
#: (1 scan), lowest-L5 (1), anchored-doubt (1) and disc-fallback (0) keep their raw value capped at 0.5. Run 3 with
#: 0.16.0 gave 0.85 / 0.95 / 0.10, with 0.11.0 0.85 / 0.80 / 0.55, with 0.3.0 0.90 / 0.65 / 0.50.)
CALIBRATED: dict[str, float] = {"anchored": 0.9, "positional-top-c2": 0.95, "positional-depth-profile": 0.15}
UNCALIBRATED_CAP = 0.5
#: every anchor of ``spine.naming`` (the lumbosacral disc pattern, "last-disc", stands in for the sacrum)
ANCHORS = ("C2", "S1", "S1+C2", "last-disc", "last-disc+C2")


GROUPS = (
    "anchored",
    "anchored-doubt",
    "positional-top-c2",
    "positional-top-c2-lumbar",
    "positional-depth-profile",
    "positional-lowest-l5",
    "disc-fallback",
)


def level_group(
    source: str, anchor: str, naming_confidence: float | None, disc_fallback: bool, method: str = ""
) -> str:
    """The calibration group of an estimate (``"none"`` when levels were not estimated; ``method``: the spine
    naming's positional method, :attr:`neurospine.spine.naming.Naming.method`)."""
    if source != "estimated":
        return "none"
    if disc_fallback:
        return "disc-fallback"
    if anchor in ANCHORS:
        return "anchored" if (naming_confidence or 0.0) >= CONFIDENT else "anchored-doubt"
    return f"positional-{method}" if method else "positional-spine"


def calibrated_confidence(group: str, naming_confidence: float | None) -> float | None:
    """The confidence to print for ``group`` (None when no level was estimated)."""
    if group == "none" or naming_confidence is None:
        return None
    if group in CALIBRATED:
        return CALIBRATED[group]
    return min(float(naming_confidence), UNCALIBRATED_CAP)


def describe(group: str, confidence: float) -> str:
    """One line for the warnings: what ``confidence`` means for ``group``."""
    if group in CALIBRATED:
        what = f"the share of cord slices named right on calibration scans named the same way ({group})"
    else:
        what = (
            f"the naming's own value, at most {UNCALIBRATED_CAP}: too few calibration scans were named this way "
            f"({group})"
        )
    return f"levels_confidence {confidence:.2f}: {what}; below 0.9, check the level names on the QC image"
