"""Feature-level site harmonisation: normative model, empirical-Bayes offsets, recalibration modes."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.brainage.harmonise import NormativeModel, site_offset
from neurospine.brainage.model import BrainAgeModel, FitConfig, fit_arrays
from neurospine.brainage.recalibration import recalibrate_arrays
from neurospine.errors import InputError

FAST = FitConfig(hidden=(32,), max_epochs=200, patience=30, seed=0)


def synthetic(
    n: int, rng: np.random.Generator, shift: np.ndarray | None = None, ages: tuple[float, float] = (10, 80)
) -> tuple[np.ndarray, np.ndarray]:
    """20 features that change with age (linear and U-shaped) plus noise; ``shift`` adds a site offset."""
    age = rng.uniform(ages[0], ages[1], n)
    slopes = np.linspace(-1.0, 1.0, 20)
    x = np.outer((age - 45) / 20, slopes) + 0.3 * np.outer(((age - 45) / 20) ** 2, np.ones(20))
    x = x + rng.normal(0, 0.3, size=x.shape)
    if shift is not None:
        x = x + shift
    return x, age


def test_normative_model_keeps_age_effects_and_finds_site_offsets():
    rng = np.random.default_rng(0)
    x, age = synthetic(600, rng)
    norm = NormativeModel.fit(x, age)
    assert np.all(norm.resid_sd < 0.4)  # the age curve is captured, only the noise is left
    shift = rng.normal(0, 1.0, 20)
    # local controls of a narrow *old* age range: age effects must not leak into the offset
    xl, al = synthetic(20, rng, shift, ages=(65, 80))
    so = site_offset(norm, xl, al)
    assert 0.8 < so.shrinkage <= 1.0
    assert np.abs(so.offset - shift).max() < 0.35
    # no site effect (again only old controls): offsets shrink towards zero
    x0, a0 = synthetic(20, rng, ages=(65, 80))
    so0 = site_offset(norm, x0, a0)
    assert so0.shrinkage < 0.5 and np.abs(so0.offset).mean() < 0.1


def test_feature_harmonisation_beats_output_offset_and_auto_picks_it(tmp_path):
    rng = np.random.default_rng(1)
    x, age = synthetic(500, rng)
    model = fit_arrays(x, age, [f"f{i}" for i in range(20)], FAST)
    assert model.normative is not None
    # a site whose features are shifted feature by feature (not a pure age offset)
    shift = rng.normal(0, 0.8, 20)
    xs, ages = synthetic(220, rng, shift)
    loc, rest = slice(0, 20), slice(20, None)
    raw = np.abs(model.predictive(xs[rest], 30).median - ages[rest]).mean()
    out = recalibrate_arrays(model, xs[loc], ages[loc], mode="offset", passes=30)
    feat = recalibrate_arrays(model, xs[loc], ages[loc], mode="features+offset", passes=30)
    mae_out = np.abs(out.predictive(xs[rest], 30).median - ages[rest]).mean()
    mae_feat = np.abs(feat.predictive(xs[rest], 30).median - ages[rest]).mean()
    assert mae_feat < mae_out - 1.0 and mae_feat < raw - 1.0
    auto = recalibrate_arrays(model, xs[loc], ages[loc], mode="auto", passes=30)
    info = auto.meta["recalibration"]
    assert info["mode"].startswith("features+") and set(info["cross_fitted_local_mae_years"]) == {
        "none",
        "offset",
        "linear",
        "features+offset",
        "features+linear",
    }
    assert auto.conformal.n == 20
    # the harmonised model survives save/load and predicts the same
    again = BrainAgeModel.load(auto.save(tmp_path / "site"))
    assert again.feature_offset is not None and again.normative is not None
    np.testing.assert_allclose(again.predictive(xs[rest], 10).median, auto.predictive(xs[rest], 10).median)
    # recalibrating a recalibrated model starts from the population model (the site offset is not stacked)
    twice = recalibrate_arrays(auto, xs[loc], ages[loc], mode="features+offset", passes=30)
    np.testing.assert_allclose(twice.feature_offset, feat.feature_offset)


def test_format1_model_has_no_feature_mode(tmp_path):
    rng = np.random.default_rng(2)
    x, age = synthetic(120, rng)
    model = fit_arrays(x, age, [f"f{i}" for i in range(20)], FitConfig(hidden=(8,), max_epochs=5))
    model.normative = None  # what a format-1 file loads as
    with pytest.raises(InputError, match="normative"):
        recalibrate_arrays(model, x[:20], age[:20], mode="features+offset", passes=5)
    auto = recalibrate_arrays(model, x[:20], age[:20], mode="auto", passes=5)
    assert auto.meta["recalibration"]["mode"] in ("none", "offset", "linear")
