"""Brain-age benchmark of the reduced feature model shipped for tables without whole-brain measures.

Two candidate column sets (``docs/decisions/brainage-regional.md``, rule written before scoring) are scored
by the full model's 2x5-fold subject-wise CV (:func:`benchmarks.brainage.run_cv`); the rule picks one; the
chosen set then gets the full model's leave-one-dataset/site-out protocol with 20-subject recalibration
(:func:`benchmarks.brainage.run_lodo`: model fitted without the held-out group, 20 random local subjects
recalibrate, the rest are evaluated, mean of 10 draws).

Run from the repository root: ``python -m benchmarks.brainage_regional [--repeats 2 --folds 5]``.
Writes ``benchmarks/results/brainage_regional.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from benchmarks.brainage import LOCAL_DRAWS, N_LOCAL, run_cv, run_lodo
from benchmarks.common import RESULTS_DIR, SHARED_DATA, peak_rss_mb, write_results
from neurospine.brainage.datasets import load_pooled
from neurospine.brainage.features import GLOBAL_MEASURES, regional_features
from neurospine.brainage.training_features import select_columns

log = logging.getLogger("benchmarks.brainage_regional")

#: the 8 columns an external site's export lacked in issue 18
ISSUE_8 = (
    "eTIV",
    "BrainSegVolNotVent",
    "CortexVol",
    "lhCerebralWhiteMatterVol",
    "rhCerebralWhiteMatterVol",
    "CerebralWhiteMatterVol",
    "MaskVol",
    "SurfaceHoles",
)
#: rule of docs/decisions/brainage-regional.md
MAX_MAE_EXCESS_YEARS = 0.30
COVERAGE95_RANGE = (0.93, 0.97)
SHIPPED_NAME = {"regional": "brainage_features_regional", "no8": "brainage_features_reduced"}


def without_issue_8(features: list[str]) -> list[str]:
    return [f for f in features if f not in ISSUE_8]


CANDIDATES = {"regional": regional_features, "no8": without_issue_8}


def decide(cv: dict[str, dict[str, Any]]) -> tuple[str, str]:
    """The candidate the written rule ships, and why."""
    reg, no8 = cv["regional"]["mean_over_folds"], cv["no8"]["mean_over_folds"]
    excess = reg["mae_years"] - no8["mae_years"]
    lo, hi = COVERAGE95_RANGE
    if excess > MAX_MAE_EXCESS_YEARS:
        return "no8", f"regional CV MAE {excess:+.2f} y vs no8 exceeds {MAX_MAE_EXCESS_YEARS} y"
    if not lo <= reg["coverage_95"] <= hi:
        return "no8", f"regional CV 95 % coverage {reg['coverage_95']:.3f} outside {lo}-{hi}"
    return "regional", (
        f"regional CV MAE {excess:+.2f} y vs no8 (limit +{MAX_MAE_EXCESS_YEARS} y), 95 % coverage "
        f"{reg['coverage_95']:.3f} within {lo}-{hi}"
    )


def _full_reference() -> dict[str, Any] | None:
    path = RESULTS_DIR / "brainage.json"
    if not path.is_file():
        return None
    res = json.loads(path.read_text(encoding="utf-8"))
    return {
        "source": f"benchmarks/results/brainage.json (commit {res.get('commit')})",
        "cv": res["features_cv"]["mean_over_folds"],
        "lodo": {r["held_out"]: r for r in res["features_lodo"]},
    }


def markdown(res: dict[str, Any]) -> str:
    full = res.get("full_reference")
    lines = [
        "# Brain age, reduced feature model for tables without whole-brain measures",
        "",
        "Candidates and rule: `docs/decisions/brainage-regional.md` (written before scoring). Same data "
        f"(OpenNeuro + fcon1000, {res['n_subjects']} subjects), recipe (`FitConfig()`) and protocols as "
        "`benchmarks/results/brainage.md` for `brainage_features` (full, 209 columns).",
        "",
        f"## 2x5-fold subject-wise CV ({res['repeats']}x{res['folds']})",
        "",
        "| model | columns | MAE (y) | r | cov95 | w95 (y) | cov80 | cov50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, cv in res["cv"].items():
        m = cv["mean_over_folds"]
        lines.append(
            f"| {name} | {res['n_columns'][name]} | {m['mae_years']:.2f} | {m['r']:.3f} | {m['coverage_95']:.3f} | "
            f"{m['width_95_years']:.1f} | {m['coverage_80']:.3f} | {m['coverage_50']:.3f} |"
        )
    if full:
        m = full["cv"]
        lines.append(
            f"| full (reference, {full['source']}) | 209 | {m['mae_years']:.2f} | {m['r']:.3f} | "
            f"{m['coverage_95']:.3f} | {m['width_95_years']:.1f} | {m['coverage_80']:.3f} | {m['coverage_50']:.3f} |"
        )
    lines += [
        "",
        f"**Decision: {res['chosen']} -> `{res['shipped_name']}`** ({res['reason']}).",
        "",
        f"## Leave-one-dataset/site-out, {res['chosen']} (train on the rest; {N_LOCAL} local subjects recalibrate; "
        f"mean of {LOCAL_DRAWS} draws, evaluated on the remaining subjects)",
        "",
        "| held out | n | MAE raw | offset | linear | features+offset | features+linear | **auto** | "
        "**cov95 auto** | full model auto (cov95) | site in training (4-fold) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["lodo"]:
        ref = full["lodo"].get(r["held_out"]) if full else None
        ref_txt = f"{ref['mae_recal20_auto']:.2f} ({ref['coverage95_recal20_auto']:.3f})" if ref else "-"
        lines.append(
            f"| {r['held_out']} | {r['n_test']} | {r['mae_no_recalibration']:.2f} | {r['mae_recal20_offset']:.2f} | "
            f"{r['mae_recal20_linear']:.2f} | {r['mae_recal20_features+offset']:.2f} | "
            f"{r['mae_recal20_features+linear']:.2f} | **{r['mae_recal20_auto']:.2f}** | "
            f"**{r['coverage95_recal20_auto']:.3f}** | {ref_txt} | "
            + (f"{r['mae_site_in_training_4fold']:.2f} |" if "mae_site_in_training_4fold" in r else "- |")
        )
    lines += ["", f"Wall time {res['wall_minutes']:.1f} min; peak RSS {res['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="recorded only (numpy threads are set by the caller)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.perf_counter()
    pooled = load_pooled(SHARED_DATA / "brain_features")
    data = {name: select_columns(pooled, cols) for name, cols in CANDIDATES.items()}
    res: dict[str, Any] = {
        "n_subjects": len(pooled.age),
        "repeats": args.repeats,
        "folds": args.folds,
        "n_columns": {name: len(d.features) for name, d in data.items()},
        "dropped": {name: [f for f in pooled.features if f not in d.features] for name, d in data.items()},
        "global_measures": list(GLOBAL_MEASURES),
    }
    res["cv"] = {name: run_cv(d, args.repeats, args.folds) for name, d in data.items()}
    for cv in res["cv"].values():
        cv.pop("per_fold", None)
    res["chosen"], res["reason"] = decide(res["cv"])
    res["shipped_name"] = SHIPPED_NAME[res["chosen"]]
    log.info("decision: %s (%s)", res["chosen"], res["reason"])
    res["lodo"] = run_lodo(data[res["chosen"]])
    res["full_reference"] = _full_reference()
    res["wall_minutes"] = (time.perf_counter() - t0) / 60
    res["peak_rss_mb"] = peak_rss_mb()
    write_results("brainage_regional", res, threads=args.threads, markdown=markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
