"""Slab input of the cord model: weights, averaging, and where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.cord.crop import slab_average, slab_weights
from neurospine.cord.segment import SegmentOptions, segment_volume
from neurospine.io import Volume
from tests.unit.test_cord_pipeline import cylinder_image, threshold_predictor


@pytest.mark.parametrize(
    ("spacing_mm", "slab_mm", "expected"),
    [
        (1.0, 3.0, [1 / 3, 1 / 3, 1 / 3]),  # three whole slices
        (0.5, 3.0, [0.25 / 3, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.5 / 3, 0.25 / 3]),  # half slices at the ends
        (2.0, 3.0, [1 / 6, 2 / 3, 1 / 6]),  # the neighbours cover 0.5 mm of the 3 mm each
        (3.0, 3.0, [1.0]),  # already that thick: untouched
        (5.0, 3.0, [1.0]),
    ],
)
def test_slab_weights_are_the_slice_overlaps(spacing_mm, slab_mm, expected):
    w = slab_weights(spacing_mm, slab_mm)
    np.testing.assert_allclose(w, expected, atol=1e-6)
    assert w.sum() == pytest.approx(1.0)


def test_slab_weights_reject_zero_spacing():
    with pytest.raises(ValueError, match="spacing"):
        slab_weights(0.0, 3.0)


def test_slab_average_preserves_constant_and_linear_profiles_and_thick_data():
    z = np.arange(20, dtype=np.float32)
    data = np.broadcast_to(z, (4, 5, 20)).copy()
    out = slab_average(data, 1.0, 3.0)
    # a linear profile along z is unchanged away from the edges (symmetric weights)
    np.testing.assert_allclose(out[:, :, 2:-2], data[:, :, 2:-2], atol=1e-5)
    # the edge slice is replicated beyond the volume: (0 + 0 + 1) / 3
    assert out[0, 0, 0] == pytest.approx(1.0 / 3.0)
    np.testing.assert_array_equal(slab_average(data, 3.0, 3.0), data)


def test_slab_reduces_noise_and_keeps_the_cylinder_area():
    vol, truth = cylinder_image("RAS", (0.8, 0.8, 0.8), (30, 30, 40), seed=3)
    noisy = np.asarray(vol.data) + np.random.default_rng(1).normal(0.0, 30.0, vol.data.shape).astype(np.float32)
    img = Volume(noisy, vol.affine, "noisy.nii.gz")
    errs = {}
    for slab in (0.0, 3.0):
        soft = segment_volume(img, threshold_predictor, SegmentOptions(slab_mm=slab)).cord_soft
        area = np.asarray(soft, dtype=np.float64).sum(axis=(0, 1))[5:-5]
        ref = truth.sum(axis=(0, 1))[5:-5].astype(np.float64)
        errs[slab] = float(np.abs(area / ref - 1.0).mean())
    assert errs[3.0] < errs[0.0]
    assert errs[3.0] < 0.15


def _pieces_after_bridge(gap_slices: int, slice_mm: float) -> int:
    from scipy import ndimage

    from neurospine.cord.segment import _bridge_slices

    mask = np.zeros((3, 3, 30 + gap_slices), dtype=bool)
    mask[1, 1, :10] = True
    mask[1, 1, 10 + gap_slices :] = True
    return int(ndimage.label(_bridge_slices(mask, slice_mm))[1])


@pytest.mark.parametrize(
    ("slice_mm", "bridged", "kept_apart"),
    [(1.0, 2, 3), (0.5, 6, 7), (1.5, 2, 3), (7.5, 2, 3)],  # gaps (slices) up to about CANAL_GAP_MM
)
def test_canal_gaps_up_to_the_documented_length_are_bridged(slice_mm, bridged, kept_apart):
    assert _pieces_after_bridge(1, slice_mm) == 1
    assert _pieces_after_bridge(bridged, slice_mm) == 1
    assert _pieces_after_bridge(kept_apart, slice_mm) == 2


def test_detection_follows_the_canal_below_the_cord():
    from neurospine.cord.crop import _centres_from_canal

    zd, h, w = 6, 20, 20
    cord = np.zeros((zd, h, w), dtype=bool)
    canal = np.zeros((zd, h, w), dtype=np.float32)
    for d in range(zd):
        col = 5 + 2 * d  # the canal drifts along the columns
        canal[d, 8:12, col - 2 : col + 2] = 1.0
        if d < 3:  # cord only in the upper three detection slices
            cord[d, 9:11, col - 1 : col + 1] = True
    ks = np.arange(zd) * 3
    found = np.zeros(ks[-1] + 1, dtype=bool)
    found[ks[:3]] = True
    centres = np.full((ks[-1] + 1, 2), np.nan)
    _centres_from_canal(canal >= 0.5, canal, cord, ks, found, centres, (1.0, 1.0))
    for d in range(3, zd):
        assert centres[ks[d]] == pytest.approx((9.5, 5 + 2 * d - 0.5))
    assert np.isnan(centres[ks[:3], 0]).all()  # cord slices are left to the cord
    # a canal that does not touch the kept cord is not followed
    centres2 = np.full_like(centres, np.nan)
    _centres_from_canal(canal >= 0.5, canal, np.zeros_like(cord), ks, found, centres2, (1.0, 1.0))
    assert np.isnan(centres2).all()
