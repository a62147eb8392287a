"""benchmarks.cord_head: where a cord lies relative to the head."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.cord_head import misplaced

from tests.conftest import make_affine


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
