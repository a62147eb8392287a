"""MCCQR brain-age model on tabular features: fit, predict, recalibrate, save/load (numpy only).

Fit: the rows are split at random (by subject: one row per subject) into TRAIN, VAL (early stopping on
the composite pinball loss with dropout off) and CAL (split-conformal calibration, never used to fit
weights or choose the epoch). Volume-like columns (:func:`volume_mask`) are log-transformed first
(``log(max(v, 1))``; format 3), so that head size and site effects on volumes are additive. Feature
z-scoring (mean/sd of TRAIN) and the age z-scoring are stored in the model. A normative model of every
(transformed) feature against age (:mod:`harmonise`) is fitted on all the rows given and stored, so that
``recalibrate`` can remove a new site's feature offsets without removing age effects. A kernel ridge
regressor (:mod:`kernel_ridge`, fitted on TRAIN + VAL) is stored next to the network (format 3).
Prediction: log transform -> site feature offset subtracted (when present) -> ``passes`` MC-dropout
forward passes -> mixture predictive distribution (:class:`quantiles.Predictive`) -> the whole
distribution shifted so that its median becomes ``(1 - w) * network median + w * kernel ridge`` (``w`` =
``kernel_weight``) -> conformal intervals (the CAL table is computed on the blended distribution); a site
output recalibration (``offset + scale * age``) is applied when present. Site adaptation itself lives
in :mod:`recalibration`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.brainage import mlp
from neurospine.brainage import quantiles as qmod
from neurospine.brainage.features import FeatureTable, ages_of, candidate_features
from neurospine.brainage.harmonise import NormativeModel
from neurospine.brainage.kernel_ridge import KernelRidge
from neurospine.errors import InputError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
FORMAT_VERSION = 3
#: versions :meth:`BrainAgeModel.load` reads (1: no normative model, no feature harmonisation;
#: 2: no log-volumes, no kernel ridge member)
READABLE_VERSIONS = (1, 2, 3)
DEFAULT_PASSES = 100
MIN_FIT_ROWS = 60


@dataclass(frozen=True)
class FitConfig:
    hidden: tuple[int, ...] = (128, 64)
    dropout: float = 0.2
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch: int = 64
    max_epochs: int = 600
    patience: int = 60
    val_fraction: float = 0.15
    cal_fraction: float = 0.15
    seed: int = 0
    #: weight subjects by the inverse density of their age (10-year bins, capped at 5x) so that rare ages
    #: (usually the old) are not shrunk towards the mean
    age_balance: bool = False
    #: log-transform volume-like columns (:func:`volume_mask`) before everything else
    log_volumes: bool = True
    #: weight of the kernel ridge median in the blended median (0: network only, no kernel ridge stored)
    kernel_weight: float = 0.5
    kernel_lambda: float = 0.1
    kernel_gamma: float = 0.5


@dataclass
class BrainAgeModel:
    features: list[str]
    x_mean: FloatArray
    x_sd: FloatArray
    y_mean: float
    y_sd: float
    params: mlp.Params
    dropout: float
    conformal: qmod.ConformalTable
    offset: float = 0.0
    scale: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)
    #: feature ~ age model of the training population (None for format-1 models)
    normative: NormativeModel | None = None
    #: per-feature site offset subtracted from every input row (set by feature harmonisation)
    feature_offset: FloatArray | None = None
    #: columns that are log-transformed (``log(max(v, 1))``) on input (None for format-1/2 models)
    log_mask: npt.NDArray[np.bool_] | None = None
    #: kernel ridge member on the z-scored features and its weight in the blended median
    kernel: KernelRidge | None = None
    kernel_weight: float = 0.0

    # ------------------------------------------------------------ prediction
    def model_space(self, x: FloatArray) -> FloatArray:
        """Input features as the model sees them before the site offset (log-volumes where set)."""
        return log_transform(x, self.log_mask)

    def standardised(self, x: FloatArray) -> FloatArray:
        """z-scored model-space features with the site feature offset (when present) removed."""
        xm = self.model_space(x)
        if self.feature_offset is not None:
            xm = xm - self.feature_offset
        z: FloatArray = (xm - self.x_mean) / self.x_sd
        return z

    def quantile_passes(self, x: FloatArray, passes: int, seed: int = 0) -> FloatArray:
        """(T, n, K) network quantiles in years (after the feature offset, before the output recalibration;
        without the kernel ridge blend)."""
        z = self.standardised(x)
        rng = np.random.default_rng(seed)
        out = np.empty((passes, len(x), len(qmod.TAU_GRID)))
        for t in range(passes):
            q, _ = mlp.forward(self.params, z, mlp.dropout_masks(self.params, len(x), self.dropout, rng))
            out[t] = q * self.y_sd + self.y_mean
        return out

    def predictive(
        self, x: FloatArray, passes: int = DEFAULT_PASSES, seed: int = 0, recalibrated: bool = True
    ) -> qmod.Predictive:
        pred = qmod.Predictive.from_passes(self.quantile_passes(x, passes, seed))
        if self.kernel is not None and self.kernel_weight > 0:
            shift = self.kernel_weight * (self.kernel.predict(self.standardised(x)) - pred.median)
            pred = qmod.Predictive(pred.median + shift, pred.sd, pred.quantiles + shift[:, None])
        return pred.affine(self.offset, self.scale) if recalibrated else pred

    def predict_table(
        self, table: FeatureTable, *, age_column: str = "age", passes: int = DEFAULT_PASSES
    ) -> list[dict[str, Any]]:
        """One row per subject: id, age_pred, sd, lo95, hi95, gap, gap_z, age, p_accelerated (+ lo/hi 50, 80)."""
        x = table.matrix(self.features)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            ids = [table.ids[i] for i in np.flatnonzero(bad)[:5]]
            raise InputError(
                table.path,
                f"{int(bad.sum())} row(s) have empty or non-numeric features (e.g. {ids})",
                "fill in or remove those rows",
            )
        pred = self.predictive(x, passes)
        age = table.column(age_column) if table.has(age_column) else np.full(len(x), np.nan)
        intervals = {c: self.conformal.interval(pred, c) for c in (0.5, 0.8, 0.95)}
        p_acc = 1.0 - pred.cdf(np.nan_to_num(age))
        rows = []
        for i, sid in enumerate(table.ids):
            gap = pred.median[i] - age[i]
            row: dict[str, Any] = {
                "id": sid,
                "age_pred": pred.median[i],
                "sd": pred.sd[i],
                "lo95": intervals[0.95][0][i],
                "hi95": intervals[0.95][1][i],
                "gap": gap,
                "gap_z": gap / max(pred.sd[i], 1e-6),
                "age": age[i],
                "p_accelerated": p_acc[i] if np.isfinite(age[i]) else np.nan,
                "lo50": intervals[0.5][0][i],
                "hi50": intervals[0.5][1][i],
                "lo80": intervals[0.8][0][i],
                "hi80": intervals[0.8][1][i],
            }
            rows.append(row)
        return rows

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``<stem>.npz`` (everything needed to predict) atomically; returns its path."""
        from neurospine.io import atomic_path

        p = npz_path(path)
        arrays: dict[str, Any] = {f"param_{k}": v for k, v in self.params.items()}
        arrays.update(
            format_version=np.array(FORMAT_VERSION),
            features=np.array(self.features, dtype=str),
            x_mean=self.x_mean,
            x_sd=self.x_sd,
            y_mean=np.array(self.y_mean),
            y_sd=np.array(self.y_sd),
            dropout=np.array(self.dropout),
            tau_grid=qmod.TAU_GRID,
            store_levels=qmod.STORE_LEVELS,
            cal_ages=self.conformal.ages,
            cal_quantiles=self.conformal.quantiles,
            cal_sd=self.conformal.sd,
            offset=np.array(self.offset),
            scale=np.array(self.scale),
            meta_json=np.array(json.dumps(self.meta, default=float)),
        )
        if self.normative is not None:
            arrays.update(
                norm_knots=self.normative.knots_years,
                norm_coef=self.normative.coef,
                norm_sd=self.normative.resid_sd,
            )
        if self.feature_offset is not None:
            arrays.update(feature_offset=self.feature_offset)
        if self.log_mask is not None:
            arrays.update(log_mask=self.log_mask)
        if self.kernel is not None:
            arrays.update(
                kernel_support=self.kernel.support,
                kernel_alpha=self.kernel.alpha,
                kernel_gamma=np.array(self.kernel.gamma),
                kernel_y_mean=np.array(self.kernel.y_mean),
                kernel_weight=np.array(self.kernel_weight),
            )
        with atomic_path(p) as tmp:
            with tmp.open("wb") as fh:
                np.savez_compressed(fh, **arrays)
        return p

    @classmethod
    def load(cls, path: str | Path) -> BrainAgeModel:
        p = npz_path(path)
        if not p.is_file():
            raise InputError(p, "model file not found", "give the .npz written by `neurospine brainage fit`")
        try:
            z = np.load(p, allow_pickle=False)
            if int(z["format_version"]) not in READABLE_VERSIONS:
                raise InputError(
                    p,
                    f"model format {int(z['format_version'])} is not supported",
                    "refit the model with this version of neurospine",
                )
            if not np.allclose(z["tau_grid"], qmod.TAU_GRID) or not np.allclose(z["store_levels"], qmod.STORE_LEVELS):
                raise InputError(p, "model was written with a different quantile grid", "refit the model")
            params = {k[len("param_") :]: z[k] for k in z.files if k.startswith("param_")}
            norm = NormativeModel(z["norm_knots"], z["norm_coef"], z["norm_sd"]) if "norm_coef" in z.files else None
            kernel = (
                KernelRidge(z["kernel_support"], z["kernel_alpha"], float(z["kernel_gamma"]), float(z["kernel_y_mean"]))
                if "kernel_support" in z.files
                else None
            )
            return cls(
                features=[str(f) for f in z["features"]],
                x_mean=z["x_mean"],
                x_sd=z["x_sd"],
                y_mean=float(z["y_mean"]),
                y_sd=float(z["y_sd"]),
                params=params,
                dropout=float(z["dropout"]),
                conformal=qmod.ConformalTable(z["cal_ages"], z["cal_quantiles"], z["cal_sd"]),
                offset=float(z["offset"]),
                scale=float(z["scale"]),
                meta=json.loads(str(z["meta_json"])),
                normative=norm,
                feature_offset=z["feature_offset"] if "feature_offset" in z.files else None,
                log_mask=z["log_mask"].astype(bool) if "log_mask" in z.files else None,
                kernel=kernel,
                kernel_weight=float(z["kernel_weight"]) if kernel is not None else 0.0,
            )
        except (OSError, KeyError, ValueError) as e:
            raise InputError(
                p, f"not a neurospine brain-age model ({e})", "give the .npz written by `neurospine brainage fit`"
            ) from e


def volume_mask(features: list[str], x: FloatArray) -> npt.NDArray[np.bool_]:
    """Columns treated as volumes (log-transformed): the name is not a thickness (``*_thickness``), a
    ratio (``*-to-*``) or a defect count (``*Holes``), and the training values are >= 0 with median > 1."""
    by_name = np.array(
        [not (f.endswith("_thickness") or "-to-" in f or f.endswith("Holes")) for f in features], dtype=bool
    )
    by_value = (x >= 0).all(axis=0) & (np.median(x, axis=0) > 1.0)
    out: npt.NDArray[np.bool_] = by_name & by_value
    return out


def log_transform(x: FloatArray, mask: npt.NDArray[np.bool_] | None) -> FloatArray:
    """``log(max(v, 1))`` in the ``mask`` columns (a copy; ``x`` itself when ``mask`` is None)."""
    if mask is None or not mask.any():
        return x
    out = np.array(x, dtype=np.float64, copy=True)
    out[:, mask] = np.log(np.maximum(out[:, mask], 1.0))
    return out


def npz_path(path: str | Path) -> Path:
    p = Path(path)
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")


# ---------------------------------------------------------------- fitting


def split_rows(n: int, cfg: FitConfig) -> dict[str, npt.NDArray[np.intp]]:
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(n)
    n_cal, n_val = round(n * cfg.cal_fraction), round(n * cfg.val_fraction)
    return {
        "cal": np.sort(perm[:n_cal]),
        "val": np.sort(perm[n_cal : n_cal + n_val]),
        "train": np.sort(perm[n_cal + n_val :]),
    }


def fit_arrays(
    x: FloatArray, y: FloatArray, features: list[str], cfg: FitConfig | None = None, passes: int = DEFAULT_PASSES
) -> BrainAgeModel:
    """Fit on a feature matrix ``x`` (n, d) and ages ``y`` (n,), one row per subject."""
    cfg = cfg or FitConfig()
    if len(x) < MIN_FIT_ROWS:
        raise InputError(None, f"only {len(x)} subjects to fit on", f"give at least {MIN_FIT_ROWS} labelled subjects")
    split = split_rows(len(x), cfg)
    tr, va, ca = split["train"], split["val"], split["cal"]
    log_mask = volume_mask(features, x[tr]) if cfg.log_volumes else None
    x_raw, x = x, log_transform(x, log_mask)
    x_mean = x[tr].mean(axis=0)
    x_sd = x[tr].std(axis=0)
    x_sd = np.where(x_sd > 0, x_sd, 1.0)
    y_mean, y_sd = float(y[tr].mean()), float(max(y[tr].std(), 1e-6))
    z = (x - x_mean) / x_sd
    yz = (y - y_mean) / y_sd
    rng = np.random.default_rng(cfg.seed + 1)
    params = mlp.init_params(x.shape[1], cfg.hidden, len(qmod.TAU_GRID), rng)
    opt = mlp.Adam(lr=cfg.lr, weight_decay=cfg.weight_decay)
    best = (np.inf, 0, {k: v.copy() for k, v in params.items()})
    ones_val = mlp.dropout_masks(params, len(va), 0.0, None)
    history = []
    weights = age_weights(y[tr]) if cfg.age_balance else np.ones(len(tr))
    w_of = np.zeros(len(x))
    w_of[tr] = weights
    for epoch in range(cfg.max_epochs):
        perm = rng.permutation(tr)
        for b in range(0, len(perm), cfg.batch):
            idx = perm[b : b + cfg.batch]
            masks = mlp.dropout_masks(params, len(idx), cfg.dropout, rng)
            q, cache = mlp.forward(params, z[idx], masks)
            _, gq = mlp.composite_pinball(q, yz[idx])
            gq *= w_of[idx][:, None]
            opt.step(params, mlp.backward(params, cache, gq))
        qv, _ = mlp.forward(params, z[va], ones_val)
        vloss, _ = mlp.composite_pinball(qv, yz[va])
        history.append(vloss)
        if vloss < best[0] - 1e-5:
            best = (vloss, epoch, {k: v.copy() for k, v in params.items()})
        elif epoch - best[1] >= cfg.patience:
            break
    log.info("fit: %d epochs, best val pinball %.4f (z units) at epoch %d", len(history), best[0], best[1])
    model = BrainAgeModel(
        features=list(features),
        x_mean=x_mean,
        x_sd=x_sd,
        y_mean=y_mean,
        y_sd=y_sd,
        params=best[2],
        dropout=cfg.dropout,
        conformal=qmod.ConformalTable(np.zeros(0), np.zeros((0, len(qmod.STORE_LEVELS))), np.zeros(0)),
        normative=NormativeModel.fit(x, y),
        log_mask=log_mask,
    )
    if cfg.kernel_weight > 0:
        fit_rows = np.concatenate([tr, va])
        model.kernel = KernelRidge.fit(z[fit_rows], y[fit_rows], cfg.kernel_lambda, cfg.kernel_gamma)
        model.kernel_weight = cfg.kernel_weight
    pc = model.predictive(x_raw[ca], passes, seed=cfg.seed + 2)
    model.conformal = qmod.ConformalTable(y[ca].astype(np.float64), pc.quantiles, pc.sd)
    model.meta = {
        "config": asdict(cfg),
        "n_train": len(tr),
        "n_val": len(va),
        "n_cal": len(ca),
        "epochs": len(history),
        "best_epoch": best[1],
        "best_val_pinball_years": best[0] * y_sd,
        "calibration_split": f"random {cfg.cal_fraction:.0%} of subjects (seed {cfg.seed})",
        "n_log_features": int(log_mask.sum()) if log_mask is not None else 0,
    }
    return model


def age_weights(age: FloatArray, bin_years: float = 10.0, cap: float = 5.0) -> FloatArray:
    """Inverse-density weights of ages (histogram with ``bin_years`` bins), capped, mean 1."""
    b = np.floor(age / bin_years).astype(int)
    _, inv, counts = np.unique(b, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inv].astype(np.float64)
    w = np.minimum(w / np.median(w), cap)
    out: FloatArray = w / w.mean()
    return out


def fit_table(
    table: FeatureTable, *, age_column: str = "age", features: list[str] | None = None, cfg: FitConfig | None = None
) -> BrainAgeModel:
    """Fit on a table; features default to every numeric non-identifier column that is mostly non-zero."""
    y = ages_of(table, age_column)
    feats = features or candidate_features(table, age_column)
    if not feats:
        raise InputError(table.path, "no numeric feature columns found", "give a table of FreeSurfer measures")
    x = table.matrix(feats)
    keep = np.isfinite(x).all(axis=1)
    if not keep.all():
        log.warning("%s: dropping %d rows with missing features", table.path, int((~keep).sum()))
    return fit_arrays(x[keep], y[keep], feats, cfg)
