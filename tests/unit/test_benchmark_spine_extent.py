"""The spine benchmark's split of a body's error into left-right width and sagittal outline."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.spine import extent_scores


def _box(shape: tuple[int, int, int], lo: tuple[int, int, int], hi: tuple[int, int, int]) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return m


def test_wider_prediction_with_the_same_outline() -> None:
    ref = _box((20, 20, 30), (5, 5, 10), (15, 15, 20))  # 10 slices wide
    pred = _box((20, 20, 30), (5, 5, 7), (15, 15, 23))  # 3 more slices each side, same outline
    e = extent_scores(pred, ref, lateral_mm=2.0)
    assert e["width_excess_mm"] == pytest.approx(12.0)
    assert e["central_dice"] == pytest.approx(1.0)
    assert e["volume_ratio"] == pytest.approx(1.6)


def test_outline_error_shows_in_the_central_half() -> None:
    ref = _box((20, 20, 30), (4, 4, 10), (16, 16, 20))  # 12 x 12 outline
    pred = _box((20, 20, 30), (4, 4, 10), (16, 10, 20))  # half of it
    e = extent_scores(pred, ref, lateral_mm=1.0)
    assert e["width_excess_mm"] == 0.0
    assert e["central_dice"] == pytest.approx(2 * 72 / (144 + 72))


def test_empty_mask_is_refused() -> None:
    ref = _box((5, 5, 5), (1, 1, 1), (3, 3, 3))
    with pytest.raises(ValueError):
        extent_scores(np.zeros_like(ref), ref, lateral_mm=1.0)
