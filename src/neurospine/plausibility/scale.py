"""Pixel size from the anatomy: vertebral bodies seen from the side are about 33 mm deep.

A lateral radiograph (or a sagittal slice saved as a picture) often carries no pixel size, and ``slice2d``
then assumes one. The adult vertebral body depth (anterior-posterior) from T10 to L5 is about 28-38 mm,
so the median depth of the detected bodies, measured in pixels, gives the pixel size to within about
+-15 % for an adult column (more for children, for cervical bodies, about 15-18 mm deep, and on radiographs,
which magnify the spine by about 1.1-1.2). A given or assumed pixel size more than 30 % away from this
estimate is reported. ``benchmarks/plausibility.py`` measures the estimate on sagittal MR/CT slices whose
pixel size is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: adult vertebral body depth (mm) seen from the side, T10-L5 (about 28-38)
TYPICAL_BODY_DEPTH_MM = 33.0
#: a pixel size further than this (relative) from the anatomical estimate is reported
SCALE_DISAGREEMENT = 0.30
#: bodies needed for an estimate
MIN_BODIES = 2


def anatomical_pixel_mm(body_rows: Iterable[Mapping[str, Any]], pixel_mm_used: float) -> float | None:
    """Pixel size (mm) implied by the median depth (``ap_width_mm``) of the body rows of the heights table,
    measured with ``pixel_mm_used``; None with fewer than :data:`MIN_BODIES` measurable bodies."""
    depths = sorted(
        float(r["ap_width_mm"])
        for r in body_rows
        if r.get("kind") == "body"
        and isinstance(r.get("ap_width_mm"), float)
        and math.isfinite(r["ap_width_mm"])
        and r["ap_width_mm"] > 0
    )
    if len(depths) < MIN_BODIES:
        return None
    mid = len(depths) // 2
    median = depths[mid] if len(depths) % 2 else 0.5 * (depths[mid - 1] + depths[mid])
    return pixel_mm_used * TYPICAL_BODY_DEPTH_MM / median


def scale_warning(estimate_mm: float | None, used_mm: float, *, given: bool) -> str | None:
    """The warning when ``used_mm`` (given with --pixel-mm or stored: ``given``; else assumed) is more than
    :data:`SCALE_DISAGREEMENT` away from the anatomical ``estimate_mm``."""
    if estimate_mm is None or estimate_mm <= 0:
        return None
    off = used_mm / estimate_mm - 1.0
    if abs(off) <= SCALE_DISAGREEMENT:
        return None
    body = (
        f"the vertebral bodies suggest a pixel size of {estimate_mm:.3f} mm (taken {TYPICAL_BODY_DEPTH_MM:.0f} mm "
        f"deep, adult T10-L5); the {'given' if given else 'assumed'} {used_mm:.3f} mm is {100 * off:+.0f} % off"
    )
    if given:
        return f"{body}: check the pixel size (--pixel-mm)"
    return f"{body}: heights are uncertain; give --pixel-mm (try {estimate_mm:.3f}) if you know the scale"


#: pixel sizes (mm) tried by :func:`self_consistent_pixel_mm`: lateral radiographs of the trunk, about 0.1-0.5
SCALE_GRID_MM = (0.12, 0.15, 0.18, 0.21, 0.25, 0.3, 0.36, 0.43, 0.5)


def self_consistent_pixel_mm(
    body_rows_at: Callable[[float], list[dict[str, Any]]], grid: Iterable[float] = SCALE_GRID_MM
) -> float | None:
    """The pixel size at which the anatomy agrees with itself.

    The 2D model expects bodies of adult size in mm, so the depth it finds follows the pixel size it is given:
    one run cannot tell the scale. ``body_rows_at(pixel_mm)`` runs the model at a trial pixel size and
    returns the heights-table rows; the answer is the trial whose anatomical estimate
    (:func:`anatomical_pixel_mm`) is closest to the trial itself, refined to that estimate (None when no
    trial finds :data:`MIN_BODIES` bodies)."""
    best: tuple[float, float] | None = None
    for s in grid:
        est = anatomical_pixel_mm(body_rows_at(float(s)), float(s))
        if est is None:
            continue
        gap = abs(math.log(est / s))
        if best is None or gap < best[0]:
            best = (gap, est)
    return None if best is None else best[1]
