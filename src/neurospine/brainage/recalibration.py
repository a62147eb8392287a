"""Adapting a fitted brain-age model to a new site from a few labelled local controls (numpy only).

Two optional steps, then a conformal step:

1. *feature harmonisation* (needs the model's normative feature ~ age model, see :mod:`harmonise`): the
   empirical-Bayes-shrunk mean residual of the local controls per feature is the site's feature offset
   (in the model's feature space, i.e. on log-volumes for format-3 models), subtracted from every subject
   of the site before prediction (by the network and the kernel ridge member alike);
2. *output map* ``age = a + b * prediction`` fitted on the local controls (``offset``: b = 1;
   ``linear``: least squares, b clipped to [0.5, 2]);
3. the conformal table is rebuilt from the local controls with *cross-fitted* predictions: each local
   subject is predicted with a feature offset and an output map estimated without it (leave-one-out up
   to :data:`MAX_LOO` subjects, else :data:`CV_FOLDS`-fold).

Modes: ``none`` (intervals only), ``offset``, ``linear``, ``features+offset``, ``features+linear`` and
``auto``, which picks the mode with the lowest cross-fitted MAE on the *local* subjects (ties go to the
simpler mode, in that order); no other subject is looked at.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.features import FeatureTable, ages_of
from neurospine.brainage.harmonise import site_offset
from neurospine.brainage.model import DEFAULT_PASSES, BrainAgeModel
from neurospine.errors import InputError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
MIN_RECAL_ROWS = 10
MAX_LOO = 40
CV_FOLDS = 10
OUTPUT_MODES = ("none", "offset", "linear")
MODES = (*OUTPUT_MODES, "features+offset", "features+linear")


def _linear_map(m: FloatArray, y: FloatArray, mode: str) -> tuple[float, float]:
    if mode == "none":
        return 0.0, 1.0
    if mode == "offset":
        return float(np.mean(y - m)), 1.0
    b = float(np.cov(m, y, bias=True)[0, 1] / max(np.var(m), 1e-9))
    b = float(np.clip(b, 0.5, 2.0))
    return float(np.mean(y) - b * np.mean(m)), b


def _folds(n: int) -> list[npt.NDArray[np.intp]]:
    if n <= MAX_LOO:
        return [np.array([i]) for i in range(n)]
    return np.array_split(np.random.default_rng(0).permutation(n), CV_FOLDS)


def _cross_fitted(
    base: BrainAgeModel, x: FloatArray, y: FloatArray, modes: list[str], passes: int
) -> dict[str, qmod.Predictive]:
    """Per mode, the predictive of every local subject from a harmonisation and map fitted without it."""
    n = len(y)
    raw = base.predictive(x, passes, recalibrated=False)
    out_q = {m: np.empty_like(raw.quantiles) for m in modes}
    out_sd = {m: np.empty(n) for m in modes}
    out_med = {m: np.empty(n) for m in modes}
    need_features = any(m.startswith("features+") for m in modes)
    for held in _folds(n):
        others = np.setdiff1d(np.arange(n), held)
        harm = None
        if need_features and base.normative is not None:
            off = site_offset(base.normative, base.model_space(x[others]), y[others]).offset
            harm = replace(base, feature_offset=off).predictive(x, passes, recalibrated=False)
        for m in modes:
            p = harm if m.startswith("features+") else raw
            assert p is not None
            a, b = _linear_map(p.median[others], y[others], m.split("+")[-1])
            out_q[m][held] = a + b * p.quantiles[held]
            out_sd[m][held] = b * p.sd[held]
            out_med[m][held] = a + b * p.median[held]
    return {m: qmod.Predictive(out_med[m], out_sd[m], out_q[m]) for m in modes}


def recalibrate_arrays(
    model: BrainAgeModel, x: FloatArray, y: FloatArray, *, mode: str = "auto", passes: int = DEFAULT_PASSES
) -> BrainAgeModel:
    """Adapt ``model`` to a new site from local labelled controls ``x`` (n, d), ``y`` (n,); see module doc."""
    n = len(y)
    if n < MIN_RECAL_ROWS:
        raise InputError(
            None,
            f"only {n} local subjects for recalibration",
            f"give at least {MIN_RECAL_ROWS} (a few dozen is better) labelled local controls",
        )
    if mode != "auto" and mode not in MODES:
        raise InputError(None, f"unknown recalibration mode '{mode}'", f"use one of auto, {', '.join(MODES)}")
    # always start from the population model (a recalibrated model may be recalibrated again)
    base = replace(model, offset=0.0, scale=1.0, feature_offset=None)
    if mode.startswith("features+") and base.normative is None:
        raise InputError(
            None,
            "this model has no normative feature model, so feature harmonisation is not possible",
            "refit it with this version of neurospine (`neurospine brainage fit`) or use --mode offset/linear",
        )
    if mode == "auto":
        candidates = list(MODES) if base.normative is not None else list(OUTPUT_MODES)
    else:
        candidates = [mode]
    cross = _cross_fitted(base, x, y, candidates, passes)
    loo_mae = {m: float(np.abs(cross[m].median - y).mean()) for m in candidates}
    chosen = min(candidates, key=lambda m: (round(loo_mae[m], 6), candidates.index(m)))
    harm_info: dict[str, Any] | None = None
    feature_offset = None
    pred = base.predictive(x, passes, recalibrated=False)
    if chosen.startswith("features+"):
        assert base.normative is not None
        so = site_offset(base.normative, base.model_space(x), y)
        feature_offset = so.offset
        pred = replace(base, feature_offset=so.offset).predictive(x, passes, recalibrated=False)
        harm_info = {
            "shrinkage": so.shrinkage,
            "tau2_sd_units": so.tau2,
            "mean_abs_offset_sd_units": float(np.mean(np.abs(so.offset / base.normative.resid_sd))),
        }
    a, b = _linear_map(pred.median, y, chosen.split("+")[-1])
    meta = dict(model.meta)
    meta["recalibration"] = {
        "requested_mode": mode,
        "mode": chosen,
        "n_local": n,
        "offset": a,
        "scale": b,
        "feature_harmonisation": harm_info,
        "cross_fitted_local_mae_years": loo_mae,
        "calibration_split": "local subjects, cross-fitted (leave-one-out up to 40) harmonisation and site map",
    }
    log.info("recalibration: mode %s (cross-fitted local MAE %s)", chosen, {k: round(v, 2) for k, v in loo_mae.items()})
    c = cross[chosen]
    return replace(
        base,
        conformal=qmod.ConformalTable(y.astype(np.float64), c.quantiles, c.sd),
        offset=a,
        scale=b,
        feature_offset=feature_offset,
        meta=meta,
    )


def recalibrate_table(
    model: BrainAgeModel,
    table: FeatureTable,
    *,
    age_column: str = "age",
    mode: str = "auto",
    passes: int = DEFAULT_PASSES,
) -> BrainAgeModel:
    y = ages_of(table, age_column)
    x = table.matrix(model.features)
    keep = np.isfinite(x).all(axis=1)
    if not keep.all():
        bad = np.flatnonzero(~keep)
        log.warning(
            "%s: %d row(s) left out of the recalibration for empty or non-numeric features (e.g. %s)",
            table.path,
            len(bad),
            ", ".join(table.ids[i] for i in bad[:5]),
        )
    return recalibrate_arrays(model, x[keep], y[keep], mode=mode, passes=passes)
