"""Automatic choice of the sagittal slice of a 3D volume: the midline slice showing the most bodies.

1. Coarse pass: slices every ``COARSE_STEP_MM`` within ``SEARCH_MM`` of the volume's left-right centre
   are segmented. Vertebral bodies are left-right symmetric, so the body-area-weighted mean position of
   these slices estimates the midline.
2. Fine pass: the slices within ``FINE_MM`` of that midline (every ``FINE_STEP_MM``) are scored by their
   number of *regular* bodies (area between 0.4 and 1.8 times the slice's median body area) minus twice
   the number of irregular ones (pedicles or posterior elements taken for bodies, fragments, fused
   bodies: typical of parasagittal slices). The best score wins; ties go to the slice nearest the
   midline. If no slice shows a body, the mid-sagittal slice of the volume is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SEARCH_MM = 24.0
COARSE_STEP_MM = 4.0
FINE_MM = 4.0
FINE_STEP_MM = 2.0
REGULAR_RANGE = (0.4, 1.8)


@dataclass(frozen=True)
class SliceChoice:
    index: int
    how: str
    scores: dict[int, tuple[int, float]]


def candidate_slices(
    n_slices: int,
    spacing_lr_mm: float,
    search_mm: float = SEARCH_MM,
    step_mm: float = COARSE_STEP_MM,
    centre: float | None = None,
) -> list[int]:
    mid = (n_slices - 1) // 2 if centre is None else int(np.rint(centre))
    step = max(1, int(np.rint(step_mm / spacing_lr_mm)))
    reach = int(np.rint(search_mm / spacing_lr_mm))
    n = reach // step
    return sorted({int(np.clip(mid + step * k, 0, n_slices - 1)) for k in range(-n, n + 1)})


def body_score(areas_mm2: Sequence[float]) -> tuple[int, float]:
    """``(regular bodies - 2 x irregular bodies, total body area)`` for one candidate slice."""
    a = np.asarray(areas_mm2, dtype=float)
    if a.size == 0:
        return 0, 0.0
    med = float(np.median(a))
    regular = (a >= REGULAR_RANGE[0] * med) & (a <= REGULAR_RANGE[1] * med)
    return int(regular.sum()) - 2 * int((~regular).sum()), float(a.sum())


def choose_slice(n_slices: int, spacing_lr_mm: float, score_fn: Callable[[int], tuple[int, float]]) -> SliceChoice:
    """Pick the slice by ``score_fn(index) -> (score, body_area_mm2)`` (see module doc)."""
    mid = (n_slices - 1) // 2
    scores = {k: score_fn(k) for k in candidate_slices(n_slices, spacing_lr_mm)}
    total_area = sum(a for _, a in scores.values())
    if total_area <= 0:
        return SliceChoice(mid, "mid-sagittal (no body found on any candidate)", scores)
    centre = sum(k * a for k, (_, a) in scores.items()) / total_area
    for k in candidate_slices(n_slices, spacing_lr_mm, FINE_MM, FINE_STEP_MM, centre=centre):
        if k not in scores:
            scores[k] = score_fn(k)
    reach = FINE_MM / spacing_lr_mm + 0.5
    near = [k for k in scores if abs(k - centre) <= reach] or [int(np.rint(centre))]
    for k in near:
        if k not in scores:
            scores[k] = score_fn(k)
    best = max(scores[k][0] for k in near)
    if best <= 0:
        pick = min(near, key=lambda k: abs(k - centre))
        return SliceChoice(pick, "nearest the estimated midline (no regular bodies found)", scores)
    pick = min((k for k in near if scores[k][0] == best), key=lambda k: (abs(k - centre), abs(k - mid)))
    return SliceChoice(pick, f"midline estimate {centre:.1f}; most regular bodies (score {best})", scores)
