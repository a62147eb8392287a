"""Brain-age benchmark: features MCCQR (repeated subject-wise CV, leave-one-dataset/site-out with and without
20-subject recalibration) and the raw-T1 CNN (held-out TEST split, runtime at 2 threads).

Run from the repository root: ``python -m benchmarks.brainage [--repeats 2 --folds 5]``.
Writes ``benchmarks/results/brainage.{json,md}`` and ``brainage_calibration.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS_DIR, SHARED_DATA, peak_rss_mb, write_results
from neurospine.brainage import quantiles as qmod
from neurospine.brainage.datasets import Pooled, load_pooled
from neurospine.brainage.evaluation import summarise
from neurospine.brainage.model import BrainAgeModel, FitConfig, fit_arrays
from neurospine.brainage.recalibration import recalibrate_arrays

log = logging.getLogger("benchmarks.brainage")
PLOT_LEVELS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99])
LODO_SITES = ("ICBM", "ds000222", "NewYork_a", "Cleveland", "Cambridge_Buckner", "Beijing_Zang")
N_LOCAL = 20
LOCAL_DRAWS = 10
#: recalibration modes compared (``auto`` picks one per draw by leave-one-out MAE on the 20 local subjects)
LODO_MODES = ("offset", "linear", "features+offset", "features+linear", "auto")


def coverage_curve(y: np.ndarray, pred: qmod.Predictive, model: BrainAgeModel) -> tuple[np.ndarray, np.ndarray]:
    raw, conf = np.zeros((len(PLOT_LEVELS), len(y))), np.zeros((len(PLOT_LEVELS), len(y)))
    for k, lv in enumerate(PLOT_LEVELS):
        lo, hi = pred.raw_interval(float(lv))
        raw[k] = (y >= lo) & (y <= hi)
        lo, hi = model.conformal.interval(pred, float(lv))
        conf[k] = (y >= lo) & (y <= hi)
    return raw, conf


def run_cv(data: Pooled, repeats: int, folds: int) -> dict[str, Any]:
    per_fold: list[dict[str, Any]] = []
    hits_raw, hits_conf = [], []
    oof_all: list[dict[str, Any]] = []
    fit_cpu = []
    for rep in range(repeats):
        rng = np.random.default_rng(100 + rep)
        fold_of = np.empty(len(data.age), dtype=int)
        for d in sorted(set(data.dataset.tolist())):  # stratify folds by dataset
            idx = rng.permutation(np.flatnonzero(data.dataset == d))
            fold_of[idx] = np.arange(len(idx)) % folds
        for f in range(folds):
            te, tr = np.flatnonzero(fold_of == f), np.flatnonzero(fold_of != f)
            t0 = time.process_time()
            model = fit_arrays(data.x[tr], data.age[tr], data.features, FitConfig(seed=rep * 100 + f))
            fit_cpu.append(time.process_time() - t0)
            pred = model.predictive(data.x[te])
            s = summarise(data.age[te], pred, model)
            s.update(repeat=rep, fold=f)
            per_fold.append(s)
            r, c = coverage_curve(data.age[te], pred, model)
            hits_raw.append(r)
            hits_conf.append(c)
            for ds in ("openneuro", "fcon1000"):
                sel = data.dataset[te] == ds
                oof_all.append(
                    {"repeat": rep, "dataset": ds, "abs_err": np.abs(pred.median[sel] - data.age[te][sel]).tolist()}
                )
            log.info("cv rep %d fold %d: MAE %.2f cov95 %.3f", rep, f, s["mae_years"], s["coverage_95"])
    keys = [k for k in per_fold[0] if k not in ("repeat", "fold", "n")]
    mean = {k: float(np.mean([p[k] for p in per_fold])) for k in keys}
    sd = {k: float(np.std([p[k] for p in per_fold])) for k in keys}
    by_ds = {
        ds: float(np.mean(np.concatenate([o["abs_err"] for o in oof_all if o["dataset"] == ds])))
        for ds in ("openneuro", "fcon1000")
    }
    curve = {
        "levels": PLOT_LEVELS.tolist(),
        "raw_mc": np.concatenate(hits_raw, axis=1).mean(axis=1).tolist(),
        "conformal": np.concatenate(hits_conf, axis=1).mean(axis=1).tolist(),
    }
    return {
        "repeats": repeats,
        "folds": folds,
        "mean_over_folds": mean,
        "sd_over_folds": sd,
        "mae_by_dataset_years": by_ds,
        "calibration_curve": curve,
        "per_fold": per_fold,
        "fit_cpu_seconds_mean": float(np.mean(fit_cpu)),
    }


def in_distribution_mae(data: Pooled, held: np.ndarray, folds: int = 4) -> float:
    """MAE on a site's subjects when the site is *in* training: its subjects in ``folds`` folds, every other
    subject always in training (the floor that site adaptation can hope to reach)."""
    te = np.flatnonzero(held)
    fold_of = np.random.default_rng(0).permutation(len(te)) % folds
    err = np.empty(len(te))
    for f in range(folds):
        tr = np.concatenate([np.flatnonzero(~held), te[fold_of != f]])
        model = fit_arrays(data.x[tr], data.age[tr], data.features, FitConfig(seed=7))
        sel = te[fold_of == f]
        err[fold_of == f] = np.abs(model.predictive(data.x[sel]).median - data.age[sel])
    return float(err.mean())


def run_lodo(data: Pooled) -> list[dict[str, Any]]:
    groups: list[tuple[str, np.ndarray]] = [
        ("dataset:openneuro", data.dataset == "openneuro"),
        ("dataset:fcon1000", data.dataset == "fcon1000"),
    ]
    groups += [(f"site:{s}", data.site == s) for s in LODO_SITES]
    out = []
    for name, held in groups:
        tr, te = np.flatnonzero(~held), np.flatnonzero(held)
        model = fit_arrays(data.x[tr], data.age[tr], data.features, FitConfig(seed=7))
        base = model.predictive(data.x[te])
        res: dict[str, Any] = {
            "held_out": name,
            "n_train": len(tr),
            "n_test": len(te),
            "test_age_mean": float(data.age[te].mean()),
            "test_age_sd": float(data.age[te].std()),
            "mae_no_recalibration": float(np.abs(base.median - data.age[te]).mean()),
        }
        rng = np.random.default_rng(11)
        draws = [rng.permutation(len(te)) for _ in range(LOCAL_DRAWS)]  # the same local subsets for every mode
        for mode in LODO_MODES:
            maes, covs, chosen = [], [], []
            for perm in draws:
                loc, rest = te[perm[:N_LOCAL]], te[perm[N_LOCAL:]]
                rec = recalibrate_arrays(model, data.x[loc], data.age[loc], mode=mode)
                p = rec.predictive(data.x[rest])
                maes.append(float(np.abs(p.median - data.age[rest]).mean()))
                lo, hi = rec.conformal.interval(p, 0.95)
                covs.append(float(np.mean((data.age[rest] >= lo) & (data.age[rest] <= hi))))
                chosen.append(str(rec.meta["recalibration"]["mode"]))
            res[f"mae_recal20_{mode}"] = float(np.mean(maes))
            res[f"coverage95_recal20_{mode}"] = float(np.mean(covs))
            if mode == "auto":
                res["auto_modes_chosen"] = {m: chosen.count(m) for m in sorted(set(chosen))}
        res["baseline_mae_local20_mean"] = float(
            np.mean(
                [np.abs(data.age[te[perm[:N_LOCAL]]].mean() - data.age[te[perm[N_LOCAL:]]]).mean() for perm in draws]
            )
        )
        if name.startswith("site:"):
            res["mae_site_in_training_4fold"] = in_distribution_mae(data, held)
        log.info("lodo %s: %s", name, res)
        out.append(res)
    return out


def run_t1(passes: int, threads: int) -> dict[str, Any]:
    from neurospine.brainage.t1_model import T1BrainAge
    from neurospine.brainage.training_t1 import read_ages, split_subjects
    from neurospine.models.registry import shipped_dir

    if not (shipped_dir() / "brainage_t1.json").is_file():
        return {"status": "brainage_t1 not shipped"}
    model = T1BrainAge.shipped(threads=threads)
    rows = read_ages(SHARED_DATA / "ixi_t1_2mm")
    ages = np.array([r["age"] for r in rows])
    split = split_subjects(ages, 0)
    te, tr = split["test"], split["train"]
    preds, secs = [], []
    levels = (0.5, 0.8, 0.95)
    bounds: dict[float, list[tuple[float, float]]] = {c: [] for c in levels}
    for i in te:
        t0 = time.perf_counter()  # what predict_image does: load, preprocess, MC passes, 95 % interval
        pred = model.predictive_image(rows[i]["file"], passes=passes)
        lo95, hi95 = model.conformal.interval(pred, 0.95)
        secs.append(time.perf_counter() - t0)
        preds.append((float(pred.median[0]), float(pred.sd[0]), float(lo95[0]), float(hi95[0])))
        for c in levels:
            lo, hi = model.conformal.interval(pred, c)
            bounds[c].append((float(lo[0]), float(hi[0])))
    p = np.array(preds)
    y = ages[te]
    intervals = {}
    for c in levels:
        b = np.array(bounds[c])
        intervals[f"{c:.2f}"] = {
            "coverage": float(np.mean((y >= b[:, 0]) & (y <= b[:, 1]))),
            "width_years": float(np.mean(b[:, 1] - b[:, 0])),
            "method": model.conformal.method(c),
        }
    return {
        "split": "TEST subjects of training_t1.split_subjects(seed 0): 1 in 5 age-stratified, never trained on",
        "n_test": len(te),
        "n_train": len(tr),
        "mc_passes": passes * model.members,
        "ensemble_members": model.members,
        "threads": threads,
        "mae_years": float(np.abs(p[:, 0] - y).mean()),
        "r": float(np.corrcoef(p[:, 0], y)[0, 1]),
        "baseline_predict_train_mean_mae_years": float(np.abs(ages[tr].mean() - y).mean()),
        "reference_intensity_histogram_baseline_mae_years": 9.5,
        "coverage_95": float(np.mean((y >= p[:, 2]) & (y <= p[:, 3]))),
        "width_95_years": float(np.mean(p[:, 3] - p[:, 2])),
        "n_calibration": model.conformal.n,
        "intervals": intervals,
        "seconds_per_subject_median": float(np.median(secs)),
        "seconds_per_subject_max": float(np.max(secs)),
        "card_metrics": json.loads((shipped_dir() / "brainage_t1.json").read_text())["metrics"],
    }


def features_runtime(data: Pooled, model: BrainAgeModel, n: int = 200) -> float:
    t0 = time.perf_counter()
    model.predictive(data.x[:n])
    return (time.perf_counter() - t0) / n


def plot_calibration(curve: dict[str, Any], path: Path) -> Path:
    from PIL import Image, ImageDraw

    w, h, m = 520, 520, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)

    def xy(a: float, b: float) -> tuple[float, float]:
        return m + a * (w - 2 * m), h - m - b * (h - 2 * m)

    d.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    for t in np.linspace(0, 1, 6):
        d.text((xy(t, 0)[0] - 8, h - m + 8), f"{t:.1f}", fill="black")
        d.text((m - 32, xy(0, t)[1] - 6), f"{t:.1f}", fill="black")
    d.line([xy(0, 0), xy(1, 1)], fill=(150, 150, 150), width=1)
    for key, colour in (("raw_mc", (220, 80, 40)), ("conformal", (30, 90, 200))):
        pts = [xy(a, b) for a, b in zip(curve["levels"], curve[key], strict=True)]
        d.line(pts, fill=colour, width=3)
        for p in pts:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=colour)
    d.text((m, 15), "Brain age (features) interval calibration, repeated CV", fill="black")
    d.text((m, 32), "orange: raw MC-dropout mixture  blue: split-conformal", fill="black")
    d.text((w // 2 - 60, h - 25), "nominal coverage", fill="black")
    d.text((5, m - 20), "empirical", fill="black")
    img.save(path)
    return path


def t1_markdown(t1: dict[str, Any]) -> list[str]:
    """The raw-T1 CNN section (also the whole report of a ``--skip-features`` run)."""
    lines = ["## Raw T1 CNN (IXI, held-out TEST split)", ""]
    if "mae_years" not in t1:
        return [*lines, str(t1)]
    lines += [
        f"MAE {t1['mae_years']:.2f} y (r {t1['r']:.3f}, n={t1['n_test']}) vs predict-the-train-mean "
        f"{t1['baseline_predict_train_mean_mae_years']:.2f} y and the 9.5 y intensity-histogram reference; "
        f"{t1['seconds_per_subject_median']:.2f} s/subject median at {t1['threads']} threads "
        f"({t1['mc_passes']} MC passes over {t1.get('ensemble_members', 1)} ensemble member(s)).",
    ]
    if "intervals" in t1:
        lines += [
            "",
            f"Intervals on TEST, calibrated on {t1['n_calibration']} VAL subjects:",
            "",
            "| nominal | coverage | mean width (y) | calibration |",
            "|---|---|---|---|",
        ]
        for level, v in t1["intervals"].items():
            lines.append(f"| {level} | {v['coverage']:.2f} | {v['width_years']:.1f} | {v['method']} |")
    return lines


def markdown(res: dict[str, Any]) -> str:
    cv = res["features_cv"]["mean_over_folds"]
    lines = [
        "# Brain age benchmark",
        "",
        f"## Features model, {res['features_cv']['repeats']}x{res['features_cv']['folds']}-fold subject-wise CV "
        f"(OpenNeuro + fcon1000, {res['n_subjects']} subjects, {res['n_features']} features)",
        "",
        "Model as fitted by `FitConfig()` defaults (what `brainage_features` ships): MCCQR network on "
        "log-volumes + thickness, its median blended with an RBF kernel ridge median "
        f"(weight {FitConfig().kernel_weight:g}), conformal intervals on the blended distribution.",
        "",
        "| MAE (y) | r | bias slope | pinball (y) | cov50 | w50 | cov80 | w80 | cov95 | w95 |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {cv['mae_years']:.2f} | {cv['r']:.3f} | {cv['age_bias_slope']:.3f} | {cv['pinball_years']:.2f} | "
        f"{cv['coverage_50']:.3f} | {cv['width_50_years']:.1f} | {cv['coverage_80']:.3f} | "
        f"{cv['width_80_years']:.1f} | {cv['coverage_95']:.3f} | {cv['width_95_years']:.1f} |",
        "",
        f"MAE by dataset (out-of-fold): {res['features_cv']['mae_by_dataset_years']}",
        "",
        "Calibration plot: `brainage_calibration.png`.",
        "",
        "## Leave-one-dataset/site-out (train on the rest; 20 local subjects recalibrate; "
        f"mean of {LOCAL_DRAWS} draws, evaluated on the remaining subjects)",
        "",
        "Output-only modes fit `age = a + b * prediction` on the 20 (offset: b = 1). Feature modes first "
        "subtract each feature's site offset (mean residual of the 20 against the normative feature~age model "
        "stored in the model, empirical-Bayes shrunk) and then fit the output map. `auto` picks, per draw, "
        "the mode with the lowest leave-one-out MAE on the 20 local subjects only (before this change, "
        "`auto` meant offset below 30 local subjects, i.e. the offset column). Last column: MAE on the "
        "site's subjects when the site is part of training (4-fold over its subjects, all other subjects always "
        "in training), the floor that site adaptation can approach.",
        "",
        "| held out | n | age mean (sd) | MAE raw | offset | linear | features+offset | features+linear | "
        "**auto** | cov95 auto | auto chose | predict local-20 mean | site in training (4-fold) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["features_lodo"]:
        chose = ", ".join(f"{k} {v}" for k, v in r["auto_modes_chosen"].items())
        lines.append(
            f"| {r['held_out']} | {r['n_test']} | {r['test_age_mean']:.0f} ({r['test_age_sd']:.0f}) | "
            f"{r['mae_no_recalibration']:.2f} | "
            f"{r['mae_recal20_offset']:.2f} | {r['mae_recal20_linear']:.2f} | "
            f"{r['mae_recal20_features+offset']:.2f} | {r['mae_recal20_features+linear']:.2f} | "
            f"**{r['mae_recal20_auto']:.2f}** | {r['coverage95_recal20_auto']:.3f} | {chose} | "
            f"{r['baseline_mae_local20_mean']:.2f} | "
            + (f"{r['mae_site_in_training_4fold']:.2f} |" if "mae_site_in_training_4fold" in r else "- |")
        )
    lines += ["", *t1_markdown(res["t1"])]
    lines += [
        "",
        f"Features prediction runtime: {res['features_seconds_per_subject'] * 1000:.2f} ms/subject "
        "(100 MC passes). Peak RSS "
        f"{res['peak_rss_mb']:.0f} MB.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--t1-passes", type=int, default=50)
    p.add_argument("--skip-features", action="store_true", help="only the T1 part (reuses nothing)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    data = load_pooled(SHARED_DATA / "brain_features")
    res: dict[str, Any] = {"n_subjects": len(data.age), "n_features": len(data.features)}
    if not args.skip_features:
        res["features_cv"] = run_cv(data, args.repeats, args.folds)
        res["features_lodo"] = run_lodo(data)
        plot_calibration(res["features_cv"]["calibration_curve"], RESULTS_DIR / "brainage_calibration.png")
        from neurospine.brainage.api import load_model

        res["features_seconds_per_subject"] = features_runtime(data, load_model())
    res["t1"] = run_t1(args.t1_passes, args.threads)
    res["peak_rss_mb"] = peak_rss_mb()
    t1_only = "\n".join(["# Brain-age benchmark, raw T1 part", "", *t1_markdown(res["t1"])])
    md = markdown(res) if not args.skip_features else t1_only
    write_results("brainage" if not args.skip_features else "brainage_t1", res, threads=args.threads, markdown=md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
