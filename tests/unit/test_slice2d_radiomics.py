"""Radiomics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.slice2d.radiomics import Binning, discretise_fbs, first_order, image_binning, region_features


def test_first_order_hand_values() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    f = first_order(x)
    # mean 4; deviations -3,-2,-1,0,6; m2 = (9+4+1+0+36)/5 = 10; m3 = (-27-8-1+0+216)/5 = 36
    # m4 = (81+16+1+0+1296)/5 = 278.8
    assert f["mean"] == pytest.approx(4.0)
    assert f["variance"] == pytest.approx(10.0)
    assert f["sd"] == pytest.approx(math.sqrt(10.0))
    assert f["skewness"] == pytest.approx(36.0 / 10.0**1.5)
    assert f["kurtosis"] == pytest.approx(278.8 / 100.0 - 3.0)
    assert f["median"] == pytest.approx(3.0)
    assert f["minimum"] == 1.0 and f["maximum"] == 10.0 and f["range"] == 9.0
    # numpy linear percentiles: p10 at rank 0.4 -> 1.4; p90 at rank 3.6 -> 4 + 0.6*6 = 7.6; p25=2, p75=4
    assert f["p10"] == pytest.approx(1.4)
    assert f["p90"] == pytest.approx(7.6)
    assert f["iqr"] == pytest.approx(2.0)
    assert f["mad"] == pytest.approx((3 + 2 + 1 + 0 + 6) / 5)
    assert f["energy"] == pytest.approx(1 + 4 + 9 + 16 + 100)
    assert f["rms"] == pytest.approx(math.sqrt(130 / 5))
    assert f["mean_positive"] == pytest.approx(4.0)
    # rmad: values in [1.4, 7.6] are 2,3,4 -> mean 3 -> mean |dev| = 2/3
    assert f["rmad"] == pytest.approx(2.0 / 3.0)


def test_fbs_bins_and_entropy() -> None:
    x = np.array([0.0, 0.4, 1.0, 1.9, 2.0, 2.5, 2.9, 4.0])
    bw = Binning(origin=0.0, width=1.0)
    # floor((x - 0) / 1) + 1; no upper bin limit (4.0 opens bin 5)
    assert discretise_fbs(x, bw).tolist() == [1, 1, 2, 2, 3, 3, 3, 5]
    f = first_order(x, bw)
    p = np.array([2, 2, 3, 1]) / 8  # occupied bins only
    assert f["entropy"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert f["uniformity"] == pytest.approx(float((p**2).sum()))
    # below the origin: bins <= 0, still counted; width 2 merges pairs of unit bins
    assert discretise_fbs(np.array([-0.5, -2.0, 3.9]), Binning(0.0, 2.0)).tolist() == [0, 0, 2]


def test_image_binning_is_the_image_robust_range() -> None:
    img = np.arange(1000, dtype=float)  # percentiles 0.5 / 99.5 at ranks 4.995 / 994.005
    b = image_binning(img, n_bins=64)
    assert b.origin == pytest.approx(4.995)
    assert b.width == pytest.approx((994.005 - 4.995) / 64)
    assert image_binning(np.full((3, 3), 5.0)) == Binning(5.0, 1.0)  # constant image: one bin


def test_entropy_follows_the_image_scale_not_the_region_range() -> None:
    # one extra extreme pixel changes only its own bin (region-range binning would re-bin every pixel)
    img = np.concatenate([np.linspace(0.0, 100.0, 1001), [0.0] * 10])
    bw = image_binning(img, n_bins=10)
    core = np.array([40.0, 41.0, 42.0, 55.0, 56.0])
    with_edge = np.append(core, 95.0)
    bins_core = discretise_fbs(core, bw)
    bins_edge = discretise_fbs(with_edge, bw)
    assert bins_edge[:-1].tolist() == bins_core.tolist()
    # bins of width ~10 from ~0: core -> 3 in one bin, 2 in another; with the edge pixel a third bin of 1
    p = np.array([3, 2, 1]) / 6
    assert first_order(with_edge, bw)["entropy"] == pytest.approx(float(-(p * np.log2(p)).sum()))


def test_mean_positive_and_constant_region() -> None:
    f = first_order(np.array([-100.0, -50.0, 20.0, 40.0]))
    assert f["mean_positive"] == pytest.approx(30.0)
    c = first_order(np.full(10, 7.0))  # own binning of a constant array: one bin
    assert c["skewness"] == 0.0 and c["kurtosis"] == 0.0 and c["entropy"] == 0.0 and c["uniformity"] == 1.0


def test_region_features_uses_mask_only() -> None:
    img = np.arange(16, dtype=float).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[1, 1:3] = True  # values 5, 6
    f = region_features(img, mask)
    assert f["n_pixels"] == 2 and f["mean"] == pytest.approx(5.5)
    # default bins come from the whole image (0..15: percentiles 0.075 / 14.925, width 0.232): 5 and 6 apart
    assert f["entropy"] == pytest.approx(1.0) and f["uniformity"] == pytest.approx(0.5)
    # coarse bins of the same image put 5 and 6 together
    g = region_features(img, mask, Binning(0.0, 8.0))
    assert g["entropy"] == 0.0 and g["uniformity"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        region_features(img, mask[:3])
    empty = region_features(img, np.zeros((4, 4), bool))
    assert empty["n_pixels"] == 0 and math.isnan(empty["mean"])
