"""benchmarks.cord_head: Otsu's threshold and where a cord lies relative to the head."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.cord_head import misplaced, otsu_threshold

from tests.conftest import make_affine


def test_otsu_splits_two_populations():
    values = np.concatenate([np.full(500, 10.0), np.full(300, 100.0)])
    assert 10.0 < otsu_threshold(values) < 100.0


def test_a_cord_off_the_midline_or_high_in_the_field_is_misplaced():
    image = np.zeros((40, 40, 60), dtype=np.float32)
    image[10:30, 5:35, :] = 100.0  # the head: left-right middle at voxel 19.5
    aff = make_affine((1.0, 1.0, 1.0), "RAS")
    cord = np.zeros(image.shape, dtype=bool)
    cord[19:21, 20:22, 0:20] = True  # midline, low in the field
    ok = misplaced(image, cord, aff)
    assert not ok["misplaced"] and ok["lr_offset_mm"] == pytest.approx(0.0)
    high = np.roll(cord, 35, axis=2)  # lowest voxel above the middle of the field
    assert misplaced(image, high, aff)["lowest_in_upper_half"] and misplaced(image, high, aff)["misplaced"]
    lateral = np.roll(cord, 17, axis=0)
    assert misplaced(image, lateral, aff)["lr_offset_mm"] == pytest.approx(17.0)
    assert misplaced(image, lateral, aff)["misplaced"]
