"""benchmarks.spine_posterior_prior: the posterior/body ratio within the midline slab, and the offset choice."""

from __future__ import annotations

import numpy as np
from benchmarks.spine_posterior_prior import choose, posterior_body_ratio


def test_ratio_counts_only_the_midline_slab() -> None:
    lab = np.zeros((10, 10, 60), dtype=np.uint8)  # PIR, 1 mm left-right
    lab[2:6, 2:8, 20:40] = 49  # body, midline at 29.5
    lab[7:9, 2:8, 25:35] = 41  # arcus, inside the slab: 120 voxels against 480
    assert posterior_body_ratio(lab, 1.0) == 0.25
    lab[7:9, 2:8, 55:60] = 43  # a costal process 25-30 mm from the midline: outside the 20 mm slab
    assert posterior_body_ratio(lab, 1.0) == 0.25
    assert posterior_body_ratio(np.zeros_like(lab), 1.0) is None


def test_choice_is_nearest_on_a_log_scale_with_ties_to_zero() -> None:
    assert choose({0.0: 0.40, -1.0: 0.20, -2.0: 0.10}, prior=0.2) == -1.0
    assert choose({0.0: 0.202, -1.0: 0.199}, prior=0.2) == 0.0  # within the tie margin
    assert choose({0.0: 0.8, -1.0: 0.5}, prior=0.1) == -1.0  # never reached: the most negative candidate
