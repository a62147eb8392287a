"""Across-contrast CSA agreement on synthetic subjects: one anatomy, three contrasts (T1w, T2w, T2*w).

The real data here has one subject scanned in several contrasts (errsm_30, ``benchmarks.cord``); this measures the
same property on fresh synthetic subjects, where each anatomy is rendered in every contrast with the same grid and
the true partial-volume cord is known. Per subject: mean soft CSA over the interior cord slices (3 dropped at each
end) for each contrast, their coefficient of variation (CV), and each contrast's area over the true area.

Run: ``python -m benchmarks.cord_contrasts [--models-dir DIR --name cord_contrasts_X]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.common import finish_model_benchmark, model_benchmark_args

#: never trained on (cord training 1000-1047, validation 90000-90005); also used by benchmarks.cord_slab
SEEDS = tuple(range(71000, 71012))
CONTRASTS = ("t1w", "t2w", "t2sw")


def _case_config(seed: int) -> Any:
    from neurospine.synth import SynthConfig

    rng = np.random.default_rng(seed)
    inplane = float(rng.uniform(0.5, 0.9))
    levels = ("C2-T2", "C3-C7", "C1-C7", "C2-C6")[seed % 4]
    plane = "axial" if seed % 2 == 0 else "sagittal"
    spacing = (inplane, inplane, float(rng.uniform(2.5, 5.0)) if plane == "axial" else float(rng.uniform(1.5, 3.0)))
    return SynthConfig(levels=levels, spacing_mm=spacing, plane=plane)


def run(threads: int) -> dict[str, Any]:
    import dataclasses

    from neurospine.cord.segment import SegmentOptions, onnx_predictor, segment_volume
    from neurospine.inference.onnx import onnx_session
    from neurospine.io import reorient
    from neurospine.models import load_card
    from neurospine.synth import generate_case

    card = load_card("cord_softseg")
    predict = onnx_predictor(onnx_session(card, threads=threads))
    opt = SegmentOptions.from_card(card)
    rows: dict[str, Any] = {}
    for seed in SEEDS:
        base = _case_config(seed)
        areas: dict[str, float] = {}
        truth_area = None
        for contrast in CONTRASTS:
            case = generate_case(seed, dataclasses.replace(base, contrast=contrast))
            soft = segment_volume(case.image, predict, opt).cord_soft
            ours, _ = reorient(case.image.with_data(np.asarray(soft, dtype=np.float32)), "RAS")
            truth, _ = reorient(case.cord_soft, "RAS")
            t = np.asarray(truth.data, dtype=np.float64)
            o = np.asarray(ours.data, dtype=np.float64)
            # per axial (RAS) slice, the slices where the true cord is present, 3 dropped at each end
            ks = np.flatnonzero((t >= 0.5).any(axis=(0, 1)))[3:-3]
            pixel = float(truth.spacing_mm[0] * truth.spacing_mm[1])
            areas[contrast] = float(o[:, :, ks].sum()) * pixel / max(ks.size, 1)
            truth_area = float(t[:, :, ks].sum()) * pixel / max(ks.size, 1)
        a = np.array([areas[c] for c in CONTRASTS])
        rows[str(seed)] = {
            "plane": base.plane,
            "levels": base.levels,
            "spacing_mm": [round(float(v), 2) for v in base.spacing_mm],
            "true_mm2": round(float(truth_area or 0.0), 2),
            **{f"{c}_mm2": round(areas[c], 2) for c in CONTRASTS},
            **{f"{c}_ratio": round(areas[c] / truth_area, 4) if truth_area else None for c in CONTRASTS},
            "cv": round(float(a.std(ddof=1) / a.mean()), 4),
        }
    cvs = np.array([r["cv"] for r in rows.values()])
    return {
        "model": f"{card.name} {card.version}",
        "sha256": card.sha256[:12],
        "seeds": [SEEDS[0], SEEDS[-1]],
        "contrasts": list(CONTRASTS),
        "cases": rows,
        "summary": {
            "cv_median": round(float(np.median(cvs)), 4),
            "cv_mean": round(float(cvs.mean()), 4),
            "cv_max": round(float(cvs.max()), 4),
            "share_cv_le_3pct": round(float((cvs <= 0.03).mean()), 3),
            **{
                f"{c}_ratio_median": round(float(np.median([r[f"{c}_ratio"] for r in rows.values()])), 4)
                for c in CONTRASTS
            },
        },
    }


def markdown(p: dict[str, Any]) -> str:
    s = p["summary"]
    lines = [
        f"# Across-contrast CSA on synthetic subjects ({p['model']}, sha256 {p['sha256']})",
        "",
        f"Seeds {p['seeds'][0]}-{p['seeds'][1]} (never trained on), each anatomy rendered as "
        f"{', '.join(p['contrasts'])} on the same grid; mean soft CSA over the interior cord slices (in-plane, "
        "RAS axial slices), CV across the three contrasts, ratio = ours / true partial-volume area.",
        "",
        "| seed | plane | levels | spacing (mm) | true (mm²) | T1w | T2w | T2*w | CV |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, r in p["cases"].items():
        lines.append(
            f"| {seed} | {r['plane']} | {r['levels']} | {r['spacing_mm']} | {r['true_mm2']} | {r['t1w_mm2']} | "
            f"{r['t2w_mm2']} | {r['t2sw_mm2']} | {100 * r['cv']:.1f} % |"
        )
    lines += [
        "",
        f"CV median {100 * s['cv_median']:.1f} %, mean {100 * s['cv_mean']:.1f} %, max {100 * s['cv_max']:.1f} %; "
        f"subjects with CV <= 3 %: {100 * s['share_cv_le_3pct']:.0f} %. Median ratio to the truth: T1w "
        f"{s['t1w_ratio_median']}, T2w {s['t2w_ratio_median']}, T2*w {s['t2sw_ratio_median']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = model_benchmark_args(__doc__, "cord_softseg", "cord_contrasts").parse_args(argv)
    return finish_model_benchmark(args, lambda: run(args.threads), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
