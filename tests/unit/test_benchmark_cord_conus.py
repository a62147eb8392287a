"""benchmarks.cord_conus: reference level names, coverage above L1 and cord at L3 or lower."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.cord_conus import cord_at_l3_or_lower_mm, coverage_above_l1, level_names, reference_extents

from tests.conftest import make_affine


def test_level_names_follow_each_reference_protocol():
    assert level_names("vb2", 7) == ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert level_names("vb3", 5)[0] == "L1"
    assert level_names("vb1", 9) == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert level_names("vb1", 6)[0] == "L1"  # counted up from the lowest body, S1
    assert level_names("ivd", 5)[1] == "L2-L3"


def test_reference_extents_name_structures_from_the_top_in_world_space():
    labels = np.zeros((30, 4, 4), dtype=np.uint8)
    labels[2:6] = 7  # id order says nothing: the superior-most structure is named first
    labels[10:14] = 3
    labels[20:25] = 5
    ext = reference_extents(labels, make_affine((1.0, 1.0, 1.0), "IPL"), "vb3")
    assert list(ext) == ["L1", "L2", "L3"]
    assert ext["L1"][1] > ext["L2"][1] > ext["L3"][1]
    assert ext["L1"][1] - ext["L1"][0] == pytest.approx(3.0)


def test_coverage_counts_rows_between_the_field_top_margin_and_l1():
    rows = set(range(0, 21))  # cord from 0 to 20 mm
    # rows 1..30 lie above L1 (top 0) and at least 10 mm below the field top (40)
    assert coverage_above_l1(rows, 40.0, 0.0) == pytest.approx(20 / 30)
    assert coverage_above_l1(set(range(-5, 41)), 40.0, 0.0) == 1.0
    assert coverage_above_l1(rows, 5.0, 0.0) is None  # no rows above L1 inside the field
    assert cord_at_l3_or_lower_mm({-3, -2, 0, 5}, -2.0) == 2
