"""Train the shipped feature model ``brainage_features`` (numpy only; no torch needed).

Run: ``python -m neurospine.brainage.training_features [--data DIR] [--export DIR] [--variant regional]``.

``--variant regional`` fits ``brainage_features_regional``: the same recipe, data, split and seed on the
columns that are not whole-brain summary measures (:func:`features.regional_features`), the model
``predict`` and ``recalibrate`` fall back to when a table lacks those measures
(``docs/decisions/brainage-regional.md``).

A random 15 % of subjects (seed 0, stratified by dataset) is held out as TEST and never used; the model
is fitted on the other 85 % (which :func:`model.fit_arrays` splits again into train / validation for early
stopping / calibration for conformal intervals). The card reports TEST metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.datasets import DEFAULT_DIR, Pooled, load_pooled
from neurospine.brainage.evaluation import summarise
from neurospine.brainage.features import GLOBAL_MEASURES, regional_features
from neurospine.brainage.model import FORMAT_VERSION, BrainAgeModel, FitConfig, fit_arrays

log = logging.getLogger(__name__)
MODEL_NAME = "brainage_features"
TEST_FRACTION = 0.15


@dataclass(frozen=True)
class Variant:
    """One shipped feature model: its card name, version, columns kept and how to reproduce it."""

    name: str
    version: str
    task: str
    benchmark_json: str

    def columns(self, features: list[str]) -> list[str]:
        return regional_features(features) if self.name.endswith("_regional") else list(features)


VARIANTS: dict[str, Variant] = {
    "full": Variant(
        MODEL_NAME,
        "0.3.0",
        "brain age (years) from FreeSurfer Destrieux thickness + aseg volumes, with calibrated intervals",
        "benchmarks/results/brainage.json",
    ),
    "regional": Variant(
        f"{MODEL_NAME}_regional",
        "0.1.0",
        "brain age (years) from FreeSurfer Destrieux thickness + aseg structure volumes, without whole-brain "
        "measures (eTIV, BrainSegVol*, CortexVol, CerebralWhiteMatterVol, MaskVol, SurfaceHoles, ...), with "
        "calibrated intervals",
        "benchmarks/results/brainage_regional.json",
    ),
}


def heldout_split(dataset: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    test: list[int] = []
    for d in sorted(set(dataset.tolist())):
        idx = np.flatnonzero(dataset == d)
        test += rng.choice(idx, size=round(len(idx) * TEST_FRACTION), replace=False).tolist()
    te = np.array(sorted(test))
    tr = np.setdiff1d(np.arange(len(dataset)), te)
    return tr, te


def evaluate(model: BrainAgeModel, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """MAE, r, age-bias slope, pinball loss, coverage/width at 50/80/95 % on labelled data."""
    return summarise(y, model.predictive(x), model)


CARD_VERSION = VARIANTS["full"].version


def lodo_summary(benchmark_json: Path) -> dict[str, Any]:
    """Leave-one-dataset/site-out MAE (20 local controls) per held-out group from a brainage benchmark run."""
    res = json.loads(benchmark_json.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    # benchmarks/brainage.py writes features_cv/features_lodo; benchmarks/brainage_regional.py writes cv (per
    # candidate column set) and lodo of the chosen one
    cv_run = res.get("features_cv") or res.get("cv", {}).get(res.get("chosen", ""))
    if cv_run:
        cv = cv_run["mean_over_folds"]
        out["cv"] = {
            "protocol": f"{cv_run['repeats']}x{cv_run['folds']}-fold subject-wise CV, all pooled subjects",
            "mae_years": cv["mae_years"],
            "coverage_95": cv["coverage_95"],
        }
    out |= {
        "source": f"benchmarks/results/{benchmark_json.name} (commit {res.get('commit')}, {res.get('date_utc')})",
        "protocol": "model trained without the held-out group; 20 random local subjects recalibrate, the rest "
        "are evaluated; mean of 10 draws",
    }
    for r in res.get("features_lodo", res.get("lodo", [])):
        out[r["held_out"]] = {
            "n": r["n_test"],
            "mae_raw_years": r["mae_no_recalibration"],
            "mae_output_offset_years": r["mae_recal20_offset"],
            "mae_auto_years": r.get("mae_recal20_auto"),
            "coverage95_auto": r.get("coverage95_recal20_auto"),
            "mae_site_in_training_years": r.get("mae_site_in_training_4fold"),
        }
    return out


def describe(cfg: FitConfig) -> str:
    """The card's description of a model fitted with ``cfg``."""
    hidden = ", ".join(str(h) for h in cfg.hidden)
    text = (
        f"MC-dropout composite quantile regression (MCCQR): MLP ({hidden}) ReLU, dropout {cfg.dropout}, "
        f"{len(qmod.TAU_GRID)} monotone quantile outputs (cumulative softplus), pinball loss, Adam, early "
        "stopping on a validation pinball loss; 100 MC passes at prediction; split-conformal intervals "
        "(computed on the final, blended predictive distribution)."
    )
    if cfg.log_volumes:
        text += " Volume columns enter as log(max(v, 1)) (thickness, ratios and SurfaceHoles unchanged)."
    if cfg.kernel_weight > 0:
        text += (
            f" The median is blended: {1 - cfg.kernel_weight:g} x network + {cfg.kernel_weight:g} x RBF kernel "
            f"ridge (lambda {cfg.kernel_lambda:g}, gamma {cfg.kernel_gamma:g}/n_features, on the z-scored "
            "features of the network's train+validation subjects); the network's MC distribution is shifted "
            "to that median."
        )
    text += (
        " Feature z-scoring and a normative feature~age model of the training subjects (piecewise-linear in "
        "age, used by `recalibrate` to remove a new site's feature offsets) are stored in the .npz "
        f"(format {FORMAT_VERSION})."
    )
    return text


def write_card(
    folder: Path,
    npz: Path,
    *,
    features: list[str],
    metrics: dict[str, Any],
    cpu_minutes: float,
    meta: dict[str, Any],
    cfg: FitConfig,
    variant: Variant = VARIANTS["full"],
    benchmark_json: Path | None = None,
) -> Path:
    from neurospine.io import write_text_atomic
    from neurospine.models.card import ModelCard
    from neurospine.models.registry import sha256_of

    train_command = "neurospine train brainage-features"
    if variant.name != MODEL_NAME:
        train_command += f" --variant {next(k for k, v in VARIANTS.items() if v == variant)}"
    train_command += f" --benchmark-json {benchmark_json.as_posix() if benchmark_json else variant.benchmark_json}"
    notes = (
        "Trained partly on fcon1000, whose data are for NON-COMMERCIAL research use: the weights inherit "
        "that restriction. In-distribution only: a new scanner/site/FreeSurfer version shifts predictions "
        "by years; run `neurospine brainage recalibrate` with 20+ local labelled controls first (feature "
        "harmonisation + output map, chosen by leave-one-out on the controls). The kernel ridge member "
        "stores the z-scored features of its training subjects (and, implicitly, their ages) in the .npz: "
        "the file redistributes derived data of the training sets under their terms. "
    )
    if variant.name == MODEL_NAME:
        notes += (
            "0.3.0 vs 0.2.0: log-volumes and the kernel ridge blend (same data, split and seed; decision rule in "
            "docs/decisions/brainage_features_decision_0.3.0.md). "
        )
    else:
        dropped = [g for g in GLOBAL_MEASURES if g not in features]
        notes += (
            f"Reduced sibling of {MODEL_NAME} 0.3.0 (same recipe, data, split and seed) without the "
            f"{len(dropped)} whole-brain measures {', '.join(dropped)}: `neurospine brainage predict|recalibrate` "
            f"use it when a table lacks any of {MODEL_NAME}'s columns but has all of these; choice of columns "
            "by a rule written before scoring: docs/decisions/brainage-regional.md. "
        )
    card = ModelCard(
        name=variant.name,
        version=variant.version,
        task=variant.task,
        file=npz.name,
        sha256=sha256_of(npz),
        framework="numpy-npz",
        description=describe(cfg),
        inputs={
            "features": features,
            "n_features": len(features),
            "aliases": "*-Thalamus-Proper -> *-Thalamus and 5 Destrieux '&' -> '_and_' spellings accepted",
        },
        labels={"output": "age_pred (median), sd, conformal intervals, gap, gap_z, p_accelerated"},
        training_data=[
            {
                "name": "OpenNeuro ds000115, ds000222, ds003416, ds003469, ds003653, ds003826 (FreeSurfer tables via "
                "PCNtoolkit-demo)",
                "licence": "CC0",
            },
            {
                "name": "FCP/INDI 1000 Functional Connectomes (fcon1000), 23 sites",
                "licence": "FCP/INDI terms: attribution, NON-COMMERCIAL use only",
            },
        ],
        metrics=metrics,
        train_command=train_command,
        train_cpu_minutes=round(cpu_minutes, 2),
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        notes=notes + f"Fit details: {meta}",
    )
    return write_text_atomic(folder / f"{variant.name}.json", card.to_json())


def main(argv: list[str] | None = None) -> int:
    from neurospine.models.registry import shipped_dir

    p = argparse.ArgumentParser(
        prog="python -m neurospine.brainage.training_features",
        description="Fit and export a shipped feature model (brainage_features, or brainage_features_regional "
        "with --variant regional) with held-out metrics.",
    )
    p.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default="full",
        help="full: brainage_features (every column); regional: brainage_features_regional (no whole-brain "
        "measures such as eTIV, CortexVol, MaskVol, SurfaceHoles)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DIR,
        help="folder of the feature tables (default: the shared brain-age data)",
    )
    p.add_argument("--export", type=Path, default=None, help="output folder (default: package weights folder)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampling seed (default %(default)s)")
    p.add_argument(
        "--benchmark-json",
        type=Path,
        default=None,
        help="benchmarks/results/brainage.json to copy the leave-one-site-out figures into the card",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    variant = VARIANTS[args.variant]
    t0 = time.process_time()
    data = select_columns(load_pooled(args.data), variant.columns)
    tr, te = heldout_split(data.dataset, args.seed)
    cfg = FitConfig(seed=args.seed)
    model = fit_arrays(data.x[tr], data.age[tr], data.features, cfg)
    cpu = (time.process_time() - t0) / 60
    metrics: dict[str, Any] = {
        "split": f"held-out TEST = random {TEST_FRACTION:.0%} of subjects per dataset "
        f"(seed {args.seed}), never used for fitting, early stopping or calibration",
        "n_fit": len(tr),
        "test_all": evaluate(model, data.x[te], data.age[te]),
    }
    for d in ("openneuro", "fcon1000"):
        sel = te[data.dataset[te] == d]
        metrics[f"test_{d}"] = evaluate(model, data.x[sel], data.age[sel])
    metrics["baseline_predict_train_mean_mae_years"] = float(np.abs(data.age[tr].mean() - data.age[te]).mean())
    if args.benchmark_json is not None:
        metrics["site_adaptation_leave_one_site_out"] = lodo_summary(args.benchmark_json)
    log.info("TEST %s", metrics["test_all"])
    folder = args.export or shipped_dir()
    npz = model.save(folder / variant.name)
    write_card(
        folder,
        npz,
        features=data.features,
        metrics=metrics,
        cpu_minutes=cpu,
        meta=model.meta,
        cfg=cfg,
        variant=variant,
        benchmark_json=args.benchmark_json,
    )
    return 0


def select_columns(data: Pooled, columns: Callable[[list[str]], list[str]]) -> Pooled:
    """``data`` restricted to ``columns(data.features)`` (in that order)."""
    keep = columns(data.features)
    idx = [data.features.index(f) for f in keep]
    return replace(data, x=data.x[:, idx], features=keep)


if __name__ == "__main__":
    raise SystemExit(main())
