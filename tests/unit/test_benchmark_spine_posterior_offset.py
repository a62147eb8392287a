"""Posterior-offset fit on CT renderings (benchmarks.spine_posterior_offset): scoring and choice."""

from __future__ import annotations

import numpy as np
from benchmarks.spine_posterior_offset import choose, posterior_scores


def test_posterior_scores_count_only_the_labelled_vertebrae_rows() -> None:
    ref = np.zeros((10, 30, 10), dtype=np.uint8)
    ref[2:5, 10:20, 2:8] = 49
    ref[6:8, 10:20, 3:7] = 41
    pred = np.zeros_like(ref)
    pred[6:8, 10:20, 3:7] = 41  # exact arcus
    pred[6:8, 0:5, 3:7] = 41  # an unlabelled vertebra above the labelled rows: not scored
    dice, ratio = posterior_scores(pred, ref)
    # arcus 1.0; the seven values absent from both count 0 (the mean over the eight values)
    assert abs(dice - 1.0 / 8) < 1e-9 and ratio == 1.0
    pred[6:8, 10:20, 7:9] = 41  # over-drawn inside the rows
    dice2, ratio2 = posterior_scores(pred, ref)
    assert dice2 < dice and ratio2 == 1.5


def test_choose_prefers_the_offset_nearest_zero_within_the_tie() -> None:
    assert choose({0.0: 0.5, -0.5: 0.5005, -1.0: 0.49}) == 0.0
    assert choose({0.0: 0.5, -0.5: 0.52, -1.0: 0.49}) == -0.5
