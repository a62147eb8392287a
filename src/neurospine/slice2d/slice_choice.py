"""Automatic choice of the sagittal slice of a 3D volume: the one showing the most vertebral bodies.

Candidates are the slices within ``SEARCH_MM`` of the volume's left-right centre, every
``STEP_MM``. Each is segmented; the score is ``(number of bodies, total body area)``, compared in that
order. If no candidate shows a body, the mid-sagittal slice is used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

SEARCH_MM = 15.0
STEP_MM = 2.0


@dataclass(frozen=True)
class SliceChoice:
    index: int
    how: str
    scores: dict[int, tuple[int, float]]


def candidate_slices(
    n_slices: int, spacing_lr_mm: float, search_mm: float = SEARCH_MM, step_mm: float = STEP_MM
) -> list[int]:
    mid = (n_slices - 1) // 2
    step = max(1, int(np.rint(step_mm / spacing_lr_mm)))
    reach = int(np.rint(search_mm / spacing_lr_mm))
    n = reach // step
    idx = sorted({int(np.clip(mid + step * k, 0, n_slices - 1)) for k in range(-n, n + 1)})
    return idx


def choose_slice(n_slices: int, spacing_lr_mm: float, score_fn: Callable[[int], tuple[int, float]]) -> SliceChoice:
    """Pick the best candidate by ``score_fn(index) -> (n_bodies, body_area_mm2)``."""
    mid = (n_slices - 1) // 2
    scores = {k: score_fn(k) for k in candidate_slices(n_slices, spacing_lr_mm)}
    best = max(scores, key=lambda k: (scores[k][0], scores[k][1], -abs(k - mid)))
    if scores[best][0] == 0:
        return SliceChoice(mid, "mid-sagittal (no body found on any candidate)", scores)
    return SliceChoice(best, f"most bodies ({scores[best][0]}) among {len(scores)} candidate slices", scores)
