"""Radiomics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.slice2d.radiomics import discretise_fbn, first_order, region_features


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


def test_fbn_bins_and_entropy() -> None:
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 4.0])
    bins = discretise_fbn(x, 4)
    # floor(4 * x / 4) + 1 = x + 1, and the maximum (4) lands in bin 4
    assert bins.tolist() == [1, 1, 2, 2, 3, 3, 3, 4]
    f = first_order(x, n_bins=4)
    p = np.array([2, 2, 3, 1]) / 8
    assert f["entropy"] == pytest.approx(float(-(p * np.log2(p)).sum()))
    assert f["uniformity"] == pytest.approx(float((p**2).sum()))


def test_mean_positive_and_constant_region() -> None:
    f = first_order(np.array([-100.0, -50.0, 20.0, 40.0]))
    assert f["mean_positive"] == pytest.approx(30.0)
    c = first_order(np.full(10, 7.0))
    assert c["skewness"] == 0.0 and c["kurtosis"] == 0.0 and c["entropy"] == 0.0 and c["uniformity"] == 1.0


def test_region_features_uses_mask_only() -> None:
    img = np.arange(16, dtype=float).reshape(4, 4)
    mask = np.zeros((4, 4), bool)
    mask[1, 1:3] = True  # values 5, 6
    f = region_features(img, mask)
    assert f["n_pixels"] == 2 and f["mean"] == pytest.approx(5.5)
    with pytest.raises(ValueError):
        region_features(img, mask[:3])
    empty = region_features(img, np.zeros((4, 4), bool))
    assert empty["n_pixels"] == 0 and math.isnan(empty["mean"])
