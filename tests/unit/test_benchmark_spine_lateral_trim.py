"""Lateral trim of vertebral bodies (benchmarks.spine_lateral_trim)."""

from __future__ import annotations

import numpy as np
from benchmarks.spine_lateral_trim import lateral_axis, trim_lateral_bodies


def _body() -> np.ndarray:
    body = np.zeros((20, 20, 9), np.int16)
    body[5:15, 5:15, 2:7] = 20  # full cross-sections on slices 2-6
    body[9:11, 9:11, 1] = 20  # a 4-voxel sliver on slice 1 (4 % of 100)
    body[8:12, 8:12, 7] = 20  # a 16-voxel sliver on slice 7
    body[5:15, 5:15, 4] = 0
    body[9:10, 9:10, 4] = 20  # a thin middle slice stays (between kept slices)
    return body


def test_trims_only_lateral_slivers_below_the_fraction() -> None:
    body = _body()
    sem = np.where(body > 0, 49, 0).astype(np.uint8)
    vert = body.copy()
    removed = trim_lateral_bodies(body, [sem, vert], axis=2, fraction=0.1)
    assert removed == 4  # slice 1 only: slice 7 holds 16 % of the largest area
    assert not body[:, :, 1].any() and body[:, :, 7].any() and body[:, :, 4].any()
    assert np.array_equal(sem > 0, body > 0) and np.array_equal(vert, body)
    assert trim_lateral_bodies(body, [], axis=2, fraction=0.2) == 16  # now slice 7 goes too


def test_zero_fraction_and_other_labels_untouched() -> None:
    body = _body()
    before = body.copy()
    assert trim_lateral_bodies(body, [], axis=2, fraction=0.0) == 0
    assert np.array_equal(body, before)
    two = np.zeros((4, 4, 5), np.int16)
    two[:, :, 1:4] = 21
    two[0, 0, 0] = 21
    two[:, :, 4] = 22
    trim_lateral_bodies(two, [], axis=2, fraction=0.5)
    assert two[0, 0, 0] == 0 and (two[:, :, 4] == 22).all()


def test_lateral_axis_from_the_affine() -> None:
    assert lateral_axis(np.eye(4)) == 0
    pir = np.array([[0, 0, -1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]], dtype=float)
    assert lateral_axis(pir) == 2
