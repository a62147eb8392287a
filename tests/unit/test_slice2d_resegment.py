"""IBSI re-segmentation of radiomics regions and the off-column disc filter, against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.slice2d.instances import build_instances, discs_on_column
from neurospine.slice2d.radiomics import (
    DEFAULT_OUTLIER_SIGMA,
    Binning,
    first_order,
    image_binning,
    region_features,
    resegment_outliers,
)

# ten -1s, ten +1s and one 21: mean 1, deviations -2 (x10), 0 (x10), 20 -> m2 = (40 + 400) / 21,
# sd = 4.577, 3 sd = 13.73: the 21 (deviation 20) is an outlier, every other value (|dev| <= 2) stays.
X = np.array([-1.0] * 10 + [1.0] * 10 + [21.0])


def test_resegment_drops_values_beyond_3_sd() -> None:
    kept = resegment_outliers(X, 3.0)
    assert sorted(kept.tolist()) == [-1.0] * 10 + [1.0] * 10
    # a bound of 5 sd (22.9) keeps the 21
    assert resegment_outliers(X, 5.0).size == 21
    # bounds are inclusive: [-1, 1] has mean 0, sd 1, so 1 sd keeps both
    assert resegment_outliers(np.array([-1.0, 1.0]), 1.0).tolist() == [-1.0, 1.0]
    assert resegment_outliers(np.full(12, 4.0), 3.0).size == 12  # constant: sd 0, nothing dropped
    assert resegment_outliers(np.array([]), 3.0).size == 0
    with pytest.raises(ValueError):
        resegment_outliers(X, 0.0)


def test_first_order_with_and_without_resegmentation() -> None:
    bins = Binning(origin=-2.0, width=1.0)
    off = first_order(X, bins, outlier_sigma=None)
    assert off["n_pixels"] == 21 and off["n_outliers"] == 0
    assert off["mean"] == pytest.approx(1.0)
    assert off["variance"] == pytest.approx(440.0 / 21.0)
    # m3 = (10 * -8 + 8000) / 21
    assert off["skewness"] == pytest.approx((7920.0 / 21.0) / (440.0 / 21.0) ** 1.5)
    assert off["maximum"] == 21.0 and off["range"] == 22.0

    on = first_order(X, bins, outlier_sigma=3.0)
    # kept: ten -1s and ten 1s -> mean 0, variance 1, symmetric, m4 = 1 -> excess kurtosis -2
    assert on["n_pixels"] == 21 and on["n_outliers"] == 1
    assert on["mean"] == pytest.approx(0.0)
    assert on["variance"] == pytest.approx(1.0) and on["sd"] == pytest.approx(1.0)
    assert on["skewness"] == pytest.approx(0.0)
    assert on["kurtosis"] == pytest.approx(-2.0)
    assert on["median"] == pytest.approx(0.0)
    assert on["minimum"] == -1.0 and on["maximum"] == 1.0 and on["range"] == 2.0
    assert on["energy"] == pytest.approx(20.0) and on["rms"] == pytest.approx(1.0)
    assert on["mad"] == pytest.approx(1.0)
    assert on["mean_positive"] == pytest.approx(1.0)
    # bins from origin -2, width 1: -1 -> bin 2, 1 -> bin 4; two equal bins
    assert on["entropy"] == pytest.approx(1.0) and on["uniformity"] == pytest.approx(0.5)
    # default binning is the whole input's (before re-segmentation), identical to passing it explicitly
    assert first_order(X, outlier_sigma=3.0)["entropy"] == pytest.approx(
        first_order(X, image_binning(X), outlier_sigma=3.0)["entropy"]
    )


def test_region_features_default_is_3_sd() -> None:
    assert DEFAULT_OUTLIER_SIGMA == 3.0
    img = np.zeros((5, 6))
    img[0, :5] = -1.0
    img[1, :5] = 1.0
    img[2, :5] = -1.0
    img[3, :5] = 1.0
    img[4, 0] = 21.0  # the region: rows 0-3 cols 0-4 and pixel (4, 0) = X
    mask = np.zeros((5, 6), bool)
    mask[:4, :5] = True
    mask[4, 0] = True
    d = region_features(img, mask)
    assert d["n_pixels"] == 21 and d["n_outliers"] == 1 and d["mean"] == pytest.approx(0.0)
    off = region_features(img, mask, outlier_sigma=None)
    assert off["n_outliers"] == 0 and off["mean"] == pytest.approx(1.0)
    empty = region_features(img, np.zeros_like(mask))
    assert empty["n_pixels"] == 0 and empty["n_outliers"] == 0 and math.isnan(empty["mean"])


def _column(blob_cols: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Three 20 x 31 bodies (cols 20-50) with two discs between them and a disc-class blob behind them."""
    lab = np.zeros((100, 90), np.uint8)
    for r0 in (10, 38, 66):
        lab[r0 : r0 + 20, 20:51] = 1
    lab[31:37, 22:49] = 2  # disc between bodies 1 and 2 (1-px gaps to both)
    lab[59:65, 22:49] = 2
    lab[40:52, blob_cols[0] : blob_cols[1]] = 2  # a blob level with body 2
    probs = np.stack([(lab == k).astype(np.float32) for k in range(3)])
    return lab, probs


def test_off_column_disc_blob_is_dropped() -> None:
    # blob at cols 53-58: 3 px behind the bodies (kept by the 6 mm proximity rule); its centroid is
    # 20.5 px off the column axis (col 35), more than 0.5 x the body depth (30 px between pixel centres)
    lab, probs = _column((53, 59))
    kept = build_instances(lab, probs, (1.0, 1.0))
    assert len(kept.bodies) == 3
    assert [round(d.centroid_rc[0]) for d in kept.discs] == [34, 62]
    assert not (kept.label_map[40:52, 53:59] > 0).any()
    unfiltered = build_instances(lab, probs, (1.0, 1.0), filter_off_column=False)
    assert (unfiltered.label_map[40:52, 53:59] >= 100).all()  # without the filter the blob is a "disc"


def test_discs_on_column_threshold_and_tilt() -> None:
    body = [np.zeros((100, 90), bool) for _ in range(2)]
    body[0][10:30, 20:51] = True
    body[1][40:60, 20:51] = True

    def disc(c0: int) -> np.ndarray:
        m = np.zeros((100, 90), bool)
        m[32:38, c0 : c0 + 3] = True  # centroid col c0 + 1
        return m

    # depth 30 (pixel centres 20..50), axis at col 35: offsets 14 and 15 kept, 16 dropped (either side)
    assert discs_on_column([disc(48), disc(49), disc(50), disc(18)], body, (1.0, 1.0)) == [True, True, False, False]
    # anisotropic pixels: columns 0.5 mm -> depth 15 mm, offset 16 px = 8 mm > 7.5 mm dropped, 14 px kept
    assert discs_on_column([disc(48), disc(50)], body, (1.0, 0.5)) == [True, False]
    # a tilted column (second body shifted 20 columns back): axis (30, 20) rows/cols from (19.5, 35);
    # depth across it (19 * 20 + 30 * 30) / 36.06 = 35.5. A disc centred on the axis (col 45) is kept; at
    # col 23 its offset is (15 * 20 + 12 * 30) / 36.06 = 18.3 > 17.7: dropped
    tilted = [body[0], np.roll(body[1], 20, axis=1)]
    assert discs_on_column([disc(44), disc(22)], tilted, (1.0, 1.0)) == [True, False]
    # fewer than two bodies: no axis, nothing dropped
    assert discs_on_column([disc(80)], body[:1], (1.0, 1.0)) == [True]


def test_cli_rejects_negative_outlier_sigma(tmp_path, capsys) -> None:
    from PIL import Image

    from neurospine.cli.main import main

    img = tmp_path / "x.png"
    Image.fromarray(np.full((64, 64), 120, dtype=np.uint8)).save(img)
    code = main(["slice2d", str(img), "--out", str(tmp_path / "o"), "--outlier-sigma", "-1"])
    assert code == 2
    assert "outlier-sigma" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
