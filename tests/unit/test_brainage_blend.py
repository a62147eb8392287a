"""Feature model format 3: log-volumes, kernel ridge member, blended median, save/load, site harmonisation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurospine.brainage.kernel_ridge import KernelRidge, rbf_kernel
from neurospine.brainage.model import BrainAgeModel, FitConfig, fit_arrays, log_transform, volume_mask
from neurospine.brainage.recalibration import recalibrate_arrays

FAST = FitConfig(hidden=(16,), max_epochs=80, patience=15, seed=0)
NAMES = ["lh_G_front_sup_thickness", "Left-Hippocampus", "eTIV", "BrainSegVol-to-eTIV", "SurfaceHoles", "score"]


def volume_table(n: int, rng: np.random.Generator, site_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Columns named like NAMES: thickness and hippocampus fall with age; ``site_factor`` scales the
    volumes (a multiplicative site effect)."""
    age = rng.uniform(20, 80, n)
    thick = 2.8 - 0.01 * (age - 20) + rng.normal(0, 0.05, n)
    hippo = site_factor * (4500 - 15 * (age - 20)) * rng.lognormal(0, 0.03, n)
    etiv = site_factor * 1.5e6 * rng.lognormal(0, 0.05, n)
    ratio = 0.75 - 0.002 * (age - 20) + rng.normal(0, 0.01, n)
    holes = rng.poisson(40, n).astype(float)
    score = rng.normal(0, 1, n)  # negative values: never log-transformed
    return np.stack([thick, hippo, etiv, ratio, holes, score], axis=1), age


def test_volume_mask_uses_names_and_values():
    x, _ = volume_table(50, np.random.default_rng(0))
    assert volume_mask(NAMES, x).tolist() == [False, True, True, False, False, False]
    out = log_transform(x, volume_mask(NAMES, x))
    np.testing.assert_allclose(out[:, 1], np.log(x[:, 1]))
    np.testing.assert_array_equal(out[:, 0], x[:, 0])
    zero = np.array([[0.0, -5.0]])  # below 1 -> log(1) = 0, never NaN
    np.testing.assert_array_equal(log_transform(zero, np.array([True, True])), [[0.0, 0.0]])
    assert log_transform(x, None) is x


def test_kernel_ridge_interpolates_a_smooth_function_and_chunks_agree(monkeypatch):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 3))
    y = 40 + 10 * np.sin(z[:, 0]) + 5 * z[:, 1]
    kr = KernelRidge.fit(z, y, lam=0.01, gamma=0.5)
    zt = rng.normal(size=(100, 3))
    yt = 40 + 10 * np.sin(zt[:, 0]) + 5 * zt[:, 1]
    assert np.abs(kr.predict(zt) - yt).mean() < 0.2 * np.abs(yt - yt.mean()).mean()
    full = kr.predict(zt)
    monkeypatch.setattr("neurospine.brainage.kernel_ridge.CHUNK_ROWS", 7)
    np.testing.assert_allclose(kr.predict(zt), full)
    k = rbf_kernel(z[:4], z[:4], 0.5)
    np.testing.assert_allclose(np.diag(k), 1.0)
    with pytest.raises(ValueError):
        KernelRidge.fit(z, y, lam=0.0, gamma=0.5)


def test_blend_weight_moves_the_median_between_members_and_save_load_keeps_it(tmp_path):
    rng = np.random.default_rng(2)
    x, age = volume_table(300, rng)
    model = fit_arrays(x, age, NAMES, FAST)
    assert model.kernel is not None and model.kernel_weight == 0.5
    assert model.log_mask is not None and model.log_mask.tolist() == volume_mask(NAMES, x).tolist()
    xt, _ = volume_table(40, rng)
    net = replace(model, kernel_weight=0.0).predictive(xt, 20)
    kr = model.kernel.predict(model.standardised(xt))
    blend = model.predictive(xt, 20)
    np.testing.assert_allclose(blend.median, 0.5 * net.median + 0.5 * kr)
    np.testing.assert_allclose(blend.sd, net.sd)  # the spread is the network's; only the centre moves
    only_kr = replace(model, kernel_weight=1.0).predictive(xt, 20)
    np.testing.assert_allclose(only_kr.median, kr)
    again = BrainAgeModel.load(model.save(tmp_path / "m"))
    assert again.kernel is not None and again.kernel_weight == 0.5
    np.testing.assert_array_equal(again.log_mask, model.log_mask)
    np.testing.assert_allclose(again.predictive(xt, 20).quantiles, blend.quantiles)


def test_network_only_config_stores_no_kernel_and_no_log(tmp_path):
    rng = np.random.default_rng(3)
    x, age = volume_table(150, rng)
    model = fit_arrays(x, age, NAMES, replace(FAST, kernel_weight=0.0, log_volumes=False))
    assert model.kernel is None and model.log_mask is None
    again = BrainAgeModel.load(model.save(tmp_path / "m"))
    assert again.kernel is None and again.log_mask is None


def test_multiplicative_site_effect_on_volumes_is_removed_in_log_space():
    rng = np.random.default_rng(4)
    x, age = volume_table(500, rng)
    model = fit_arrays(x, age, NAMES, FAST)
    xs, ages = volume_table(220, rng, site_factor=1.25)  # a scanner that inflates every volume by 25 %
    loc, rest = slice(0, 20), slice(20, None)
    rec = recalibrate_arrays(model, xs[loc], ages[loc], mode="features+offset", passes=20)
    assert rec.feature_offset is not None
    mask = model.log_mask
    assert mask is not None
    # the offset of the log-volumes is close to log(1.25); other columns are left nearly alone
    np.testing.assert_allclose(rec.feature_offset[mask], np.log(1.25), atol=0.06)
    raw = np.abs(model.predictive(xs[rest], 20).median - ages[rest]).mean()
    fixed = np.abs(rec.predictive(xs[rest], 20).median - ages[rest]).mean()
    assert fixed < raw - 1.0


def test_shipped_model_is_the_blended_log_volume_model(shared_data):
    from neurospine.brainage.api import load_model
    from neurospine.brainage.datasets import load_pooled
    from neurospine.models.registry import load_card, shipped_dir

    if not (shipped_dir() / "brainage_features.json").is_file():
        pytest.skip("brainage_features not shipped in this checkout")
    model = load_model()  # sha256-verified against the card
    assert load_card("brainage_features").version == "0.3.0"
    assert model.kernel is not None and 0 < model.kernel_weight < 1
    assert model.log_mask is not None and "eTIV" in np.array(model.features)[model.log_mask]
    data = load_pooled(shared_data / "brain_features")
    rows = np.arange(0, len(data.age), 80)
    err = np.abs(model.predictive(data.x[rows], 20).median - data.age[rows])
    assert err.mean() < 0.5 * np.abs(data.age[rows] - data.age.mean()).mean()
