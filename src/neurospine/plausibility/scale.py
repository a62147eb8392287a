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
#: bodies a trial pixel size must show to count in :func:`self_consistent_pixel_mm` (a column, not a blob)
MIN_COLUMN_BODIES = 3


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


#: the long side of a lateral spine radiograph covers 150 mm (a spot view of three vertebrae) to 430 mm (a 17-inch
#: film): the pixel sizes tried on a radiograph lie in that field of view divided by its long side in pixels
RADIOGRAPH_FOV_MM = (150.0, 430.0)
RADIOGRAPH_GRID_MM = tuple(round(0.1 * 1.2**i, 4) for i in range(11))
#: on MR/CT sections: in-plane pixels of about 0.25-4 mm (steps of x1.26)
SECTION_GRID_MM = tuple(round(0.25 * 1.26**i, 4) for i in range(13))


def radiograph_grid_mm(long_side_px: int, step: float = 1.15) -> tuple[float, ...]:
    """Trial pixel sizes (mm) for a radiograph whose long side is ``long_side_px`` (see :data:`RADIOGRAPH_FOV_MM`)."""
    lo, hi = (fov / max(long_side_px, 1) for fov in RADIOGRAPH_FOV_MM)
    n = math.floor(math.log(hi / lo) / math.log(step)) + 1
    return tuple(round(lo * step**i, 5) for i in range(n)) + ((round(hi, 5),) if lo * step ** (n - 1) < hi else ())


def self_consistent_pixel_mm(
    body_rows_at: Callable[[float], list[dict[str, Any]]], grid: Iterable[float] = RADIOGRAPH_GRID_MM
) -> float | None:
    """The pixel size at which the anatomy agrees with itself.

    The 2D model expects bodies of adult size in mm, so the depth it finds follows the pixel size it is given:
    one run cannot tell the scale. ``body_rows_at(pixel_mm)`` runs the model at a trial pixel size and
    returns the heights-table rows; the answer is the trial, among those showing at least
    :data:`MIN_COLUMN_BODIES` bodies, whose anatomical estimate (:func:`anatomical_pixel_mm`) is closest to the
    trial itself, refined to that estimate (None when no trial shows a column)."""
    best: tuple[float, float] | None = None
    for s in grid:
        rows = body_rows_at(float(s))
        if sum(1 for r in rows if r.get("kind") == "body") < MIN_COLUMN_BODIES:
            continue  # too coarse or too fine a trial to show a column: no evidence either way
        est = anatomical_pixel_mm(rows, float(s))
        if est is None:
            continue
        gap = abs(math.log(est / s))
        if best is None or gap < best[0]:
            best = (gap, est)
    return None if best is None else best[1]
