"""Overlap metrics on analytic phantoms: boxes with known shifts and spheres with known offsets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.metrics import confusion, dice, jaccard, precision, recall, soft_dice, volume_mm3

ANISO_MM = (0.5, 0.5, 3.0)


def box(shape, lo, hi):
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


def sphere(shape, centre_mm, radius_mm, spacing_mm):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing_mm, strict=True)], indexing="ij")
    d2 = sum((g - c) ** 2 for g, c in zip(grids, centre_mm, strict=True))
    return d2 <= radius_mm**2


@pytest.mark.parametrize("shift", [0, 1, 3, 7])
def test_dice_of_shifted_box_is_exact(shift):
    ref = box((40, 30, 10), (5, 5, 2), (25, 20, 8))  # 20 x 15 x 6 voxels
    pred = box((40, 30, 10), (5 + shift, 5, 2), (25 + shift, 20, 8))
    expected = (20 - shift) / 20
    assert dice(pred, ref) == pytest.approx(expected, abs=1e-12)
    assert jaccard(pred, ref) == pytest.approx(expected / (2 - expected), abs=1e-12)


def test_confusion_precision_recall_counts():
    ref = box((10, 10, 4), (0, 0, 0), (4, 5, 4))  # 80 voxels
    pred = box((10, 10, 4), (2, 0, 0), (8, 5, 4))  # 120 voxels, 40 shared
    c = confusion(pred, ref)
    assert (c.tp, c.fp, c.fn) == (40, 80, 40)
    assert precision(pred, ref) == pytest.approx(40 / 120)
    assert recall(pred, ref) == pytest.approx(40 / 80)
    assert dice(pred, ref) == pytest.approx(80 / 200)


def test_label_values_count_as_foreground():
    ref = np.zeros((5, 5, 5), dtype=np.uint8)
    ref[1:3] = 7
    assert dice(ref.astype(np.int16) * 3, ref) == 1.0


@pytest.mark.parametrize("offset_mm,axis", [(3.0, 0), (6.0, 0), (6.0, 2), (12.0, 2)])
def test_dice_of_offset_spheres_matches_lens_formula(offset_mm, axis):
    """Two spheres of radius R whose centres are d apart: Dice = (4R + d)(2R - d)^2 / (16 R^3)."""
    radius = 15.0
    shape = (110, 110, 24)
    centre = np.array([27.5, 27.5, 33.0])
    moved = centre.copy()
    moved[axis] += offset_mm
    ref = sphere(shape, centre, radius, ANISO_MM)
    pred = sphere(shape, moved, radius, ANISO_MM)
    expected = (4 * radius + offset_mm) * (2 * radius - offset_mm) ** 2 / (16 * radius**3)
    # 3 mm slices discretise a 30 mm sphere coarsely: allow 2 % of Dice
    assert dice(pred, ref) == pytest.approx(expected, abs=0.02)


def test_volume_uses_spacing():
    m = box((20, 20, 6), (0, 0, 0), (10, 4, 3))  # 120 voxels
    assert volume_mm3(m, ANISO_MM) == pytest.approx(120 * 0.75)
    assert volume_mm3(m, (1.0, 1.0, 1.0)) == pytest.approx(120)
    ball = sphere((110, 110, 24), (27.5, 27.5, 33.0), 15.0, ANISO_MM)
    assert volume_mm3(ball, ANISO_MM) == pytest.approx(4 / 3 * math.pi * 15.0**3, rel=0.02)


def test_volume_rejects_bad_spacing():
    m = np.ones((3, 3, 3), bool)
    for bad in [(1.0, 1.0), (1.0, 0.0, 1.0), (1.0, -1.0, 1.0), (1.0, float("nan"), 1.0)]:
        with pytest.raises(ValueError, match="spacing"):
            volume_mm3(m, bad)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differs from reference shape"):
        dice(np.ones((4, 4, 4)), np.ones((4, 4, 5)))


def test_soft_dice():
    ref = box((10, 10, 10), (0, 0, 0), (5, 10, 10))
    assert soft_dice(ref.astype(float), ref) == pytest.approx(1.0)
    assert soft_dice(ref * 0.5, ref) == pytest.approx(2 * 0.5 / 1.5)
    rng = np.random.default_rng(0)
    pred = rng.random((10, 10, 10)) > 0.5
    assert soft_dice(pred.astype(float), ref) == pytest.approx(dice(pred, ref))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        soft_dice(ref * 2.0, ref)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        soft_dice(np.full((10, 10, 10), np.nan), ref)


def test_works_in_2d():
    ref = box((10, 10), (0, 0), (4, 4))
    pred = box((10, 10), (2, 0), (6, 4))
    assert dice(pred, ref) == pytest.approx(0.5)
