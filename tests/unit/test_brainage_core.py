"""Brain-age core maths: pinball loss, monotone head, numpy MLP gradients, conformal coverage."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.brainage import mlp
from neurospine.brainage import quantiles as qmod


def test_pinball_loss_hand_values():
    # y=10, q=8: under-prediction by 2 -> tau*2 ; y=10, q=13: over by 3 -> (1-tau)*3
    assert qmod.pinball_loss(10.0, 8.0, 0.9) == pytest.approx(1.8)
    assert qmod.pinball_loss(10.0, 8.0, 0.1) == pytest.approx(0.2)
    assert qmod.pinball_loss(10.0, 13.0, 0.9) == pytest.approx(0.3)
    assert qmod.pinball_loss(10.0, 13.0, 0.25) == pytest.approx(2.25)
    assert qmod.pinball_loss(5.0, 5.0, 0.3) == pytest.approx(0.0)
    # median pinball = half absolute error
    y, q = np.array([1.0, 4.0, -2.0]), np.array([0.0, 6.0, -2.5])
    assert qmod.pinball_loss(y, q, 0.5).mean() == pytest.approx(0.5 * np.abs(y - q).mean())


def test_monotone_head_is_monotone_and_gradient_matches():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 3, size=(7, len(qmod.TAU_GRID)))
    q = qmod.monotone_head(raw)
    assert (np.diff(q, axis=1) > 0).all()
    w = rng.normal(size=q.shape)
    g = qmod.monotone_head_backward(raw, w)
    eps = 1e-6
    for i, j in [(0, 0), (3, 5), (6, len(qmod.TAU_GRID) - 1), (2, 1)]:
        r2 = raw.copy()
        r2[i, j] += eps
        num = ((qmod.monotone_head(r2) - q) * w).sum() / eps
        assert g[i, j] == pytest.approx(num, rel=1e-4, abs=1e-6)


def test_mlp_gradient_check():
    rng = np.random.default_rng(1)
    p = mlp.init_params(6, (9, 5), len(qmod.TAU_GRID), rng)
    for k in p:  # make the head non-trivial
        p[k] = p[k] + rng.normal(0, 0.3, size=p[k].shape)
    x = rng.normal(size=(11, 6))
    y = rng.normal(size=11)
    masks = mlp.dropout_masks(p, len(x), 0.3, rng)

    def loss(params):
        q, _ = mlp.forward(params, x, masks)
        # smooth surrogate so finite differences are exact: weighted sum of quantiles + pinball
        return mlp.composite_pinball(q, y)[0]

    q, cache = mlp.forward(p, x, masks)
    _, gq = mlp.composite_pinball(q, y)
    grads = mlp.backward(p, cache, gq)
    eps = 1e-6
    for k in p:
        flat = p[k].reshape(-1)
        for idx in rng.choice(flat.size, size=min(6, flat.size), replace=False):
            old = flat[idx]
            flat[idx] = old + eps
            lp = loss(p)
            flat[idx] = old - eps
            lm = loss(p)
            flat[idx] = old
            num = (lp - lm) / (2 * eps)
            assert grads[k].reshape(-1)[idx] == pytest.approx(num, rel=1e-3, abs=1e-7), k


def test_adam_decreases_loss():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(0, 0.5, 200)
    p = mlp.init_params(3, (16,), len(qmod.TAU_GRID), rng)
    opt = mlp.Adam(lr=1e-2)
    ones = mlp.dropout_masks(p, len(x), 0.0, None)
    first = mlp.composite_pinball(mlp.forward(p, x, ones)[0], y)[0]
    for _ in range(200):
        q, c = mlp.forward(p, x, ones)
        opt.step(p, mlp.backward(p, c, mlp.composite_pinball(q, y)[1]))
    last = mlp.composite_pinball(mlp.forward(p, x, ones)[0], y)[0]
    assert last < 0.5 * first


def test_pooled_mixture_of_identical_passes_recovers_quantiles():
    z = np.array([qmod.TAU_GRID]) * 10.0  # quantile function q(tau) = 10 tau (uniform on [0, 10])
    pred = qmod.Predictive.from_passes(np.repeat(z[None], 5, axis=0))
    assert pred.median[0] == pytest.approx(5.0, abs=0.2)
    assert pred.sd[0] == pytest.approx(10 / np.sqrt(12), rel=0.05)
    lo, hi = pred.raw_interval(0.8)
    assert lo[0] == pytest.approx(1.0, abs=0.2) and hi[0] == pytest.approx(9.0, abs=0.2)


def test_conformal_coverage_on_synthetic_data():
    """Deliberately over-confident predictive quantiles: conformal intervals reach nominal coverage."""
    rng = np.random.default_rng(3)

    def make(n):
        mu = rng.uniform(20, 80, n)
        y = mu + rng.normal(0, 5.0, n)
        # predictive says sd 2 (too narrow)
        from statistics import NormalDist

        z = np.array([NormalDist().inv_cdf(float(t)) for t in qmod.STORE_LEVELS])
        qs = mu[:, None] + 2.0 * z[None, :]
        return y, qmod.Predictive(mu, np.full(n, 2.0), qs)

    y_cal, p_cal = make(400)
    table = qmod.ConformalTable(y_cal, p_cal.quantiles, p_cal.sd)
    y_new, p_new = make(4000)
    for cov in (0.5, 0.8, 0.95):
        lo_raw, hi_raw = p_new.raw_interval(cov)
        raw = np.mean((y_new >= lo_raw) & (y_new <= hi_raw))
        lo, hi = table.interval(p_new, cov)
        got = np.mean((y_new >= lo) & (y_new <= hi))
        assert raw < cov - 0.15  # the raw intervals really were too narrow
        assert cov - 0.03 <= got <= cov + 0.04


def test_small_calibration_sets_fall_back_to_normal_theory_with_nominal_coverage():
    """12 calibration subjects cannot give a conformal 95 % interval; the fallback still covers ~95 %."""
    from statistics import NormalDist

    rng = np.random.default_rng(5)
    z = np.array([NormalDist().inv_cdf(float(t)) for t in qmod.STORE_LEVELS])

    def make(n):
        mu = rng.uniform(20, 80, n)
        y = mu + rng.normal(0, 5.0, n)
        return y, qmod.Predictive(mu, np.full(n, 2.0), mu[:, None] + 2.0 * z[None, :])

    y_new, p_new = make(2000)
    covered, widths = [], []
    for _ in range(200):
        y_cal, p_cal = make(12)
        table = qmod.ConformalTable(y_cal, p_cal.quantiles, p_cal.sd)
        assert table.method(0.95) == "normal-theory"
        assert table.method(0.8) == "conformal"
        lo, hi = table.interval(p_new, 0.95)
        covered.append(np.mean((y_new >= lo) & (y_new <= hi)))
        widths.append(np.mean(hi - lo))
    assert 0.93 <= np.mean(covered) <= 0.97
    # the true 95 % interval is 2 * 1.96 * 5 = 19.6 wide; the old worst-case fallback was far wider
    assert np.median(widths) < 26.0
    with pytest.raises(ValueError, match="conformal"):
        table.correction(0.95)
