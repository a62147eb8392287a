"""Cord model on fresh synthetic thin-slice cases with and without the slab input.

The slab option (``SegmentOptions.slab_mm``) gives the 2D network, for each thin axial slice, the mean
of a slab centred on it. This benchmark measures its effect where the truth is known exactly: fresh
synthetic isotropic cases (seeds 71000-71011, never used to train or validate the cord model), with the
engine's partial-volume cord as reference. Per case: fuzzy Dice (see ``_score``), the area ratio (predicted
soft area over true partial-volume area, interior slices) and the per-slice noise (sd over slices of the per-slice area
ratio). The decision rule that uses these numbers is ``docs/decisions/cord_decision_slab.md``.

Run: ``python -m benchmarks.cord_slab [--threads 2] [--slab-mm 3.0]``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import numpy as np

from benchmarks.common import write_results

#: Fresh seeds (cord training uses 1000-1047, validation 90000-90005, area calibration 70000-70011).
SEEDS = tuple(range(71000, 71012))
CONTRASTS = ("t1w", "t2w", "t2sw", "random")
LEVELS = ("C1-C7", "C2-T2", "C3-C7", "C2-C6")


def _case(seed: int) -> tuple[Any, np.ndarray]:
    from neurospine.io import Volume
    from neurospine.synth import SynthConfig, generate_case

    rng = np.random.default_rng(seed)
    iso = float(rng.uniform(0.8, 1.0))
    cfg = SynthConfig(
        levels=LEVELS[seed % len(LEVELS)],
        contrast=CONTRASTS[seed % len(CONTRASTS)],
        spacing_mm=(iso, iso, iso),
        plane="isotropic",
    )
    case = generate_case(seed, cfg)
    image = Volume(np.asarray(case.image.data, dtype=np.float32), case.image.affine, f"synth-{seed}")
    truth = np.asarray(case.cord_soft.data, dtype=np.float64)
    return image, truth


def _score(soft: np.ndarray, truth: np.ndarray, axis: int) -> dict[str, float]:
    """Fuzzy Dice, interior-slice area ratio and per-slice ratio sd along the cord axis ``axis``.

    Fuzzy Dice ``2 Σ min(p, r) / (Σ p + Σ r)`` compares two partial-volume maps (1 when they are equal); the
    project's ``metrics.soft_dice`` (``2 Σ p·r / ...``) is meant for a soft prediction against a binary mask."""
    dice = float(2.0 * np.minimum(soft, truth).sum() / max(soft.sum() + truth.sum(), 1e-9))
    other = tuple(a for a in range(3) if a != axis)
    t_area = truth.sum(axis=other)
    p_area = soft.sum(axis=other)
    both = np.flatnonzero((t_area > 0) & (p_area > 0))[3:-3]
    if both.size < 3:
        return {"fuzzy_dice": round(dice, 4), "area_ratio": float("nan"), "slice_ratio_sd": float("nan")}
    per_slice = p_area[both] / np.maximum(t_area[both], 1e-9)
    return {
        "fuzzy_dice": round(dice, 4),
        "area_ratio": round(float(p_area[both].sum() / t_area[both].sum()), 4),
        "slice_ratio_sd": round(float(per_slice.std(ddof=1)), 4),
    }


def run(threads: int, slab_mm: float) -> dict[str, Any]:
    from neurospine.cord.segment import SegmentOptions, onnx_predictor, segment_volume
    from neurospine.inference.onnx import onnx_session
    from neurospine.models import load_card

    card = load_card("cord_softseg")
    predict = onnx_predictor(onnx_session(card, threads=threads))
    base = SegmentOptions.from_card(card, slab_mm=0.0)
    slab = SegmentOptions.from_card(card, slab_mm=slab_mm)
    cases: dict[str, Any] = {}
    for seed in SEEDS:
        image, truth = _case(seed)
        # the cord runs along the superior-inferior world axis: find it in the array
        axis = next(i for i, c in enumerate(image.axcodes) if c in ("S", "I"))
        row: dict[str, Any] = {"contrast": CONTRASTS[seed % len(CONTRASTS)], "spacing_mm": image.spacing_mm[0]}
        for name, opt in (("no_slab", base), ("slab", slab)):
            soft = np.asarray(segment_volume(image, predict, opt).cord_soft, dtype=np.float64)
            row[name] = _score(soft, truth, axis)
        cases[f"synth-{seed}"] = row
        logging.getLogger(__name__).info("synth-%d %s", seed, row)

    def agg(name: str, key: str, how: str) -> float:
        vals = np.array([c[name][key] for c in cases.values()], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        return round(float(np.median(vals) if how == "median" else vals.mean()), 4)

    summary = {
        name: {
            "mean_fuzzy_dice": agg(name, "fuzzy_dice", "mean"),
            "median_area_ratio": agg(name, "area_ratio", "median"),
            "mean_slice_ratio_sd": agg(name, "slice_ratio_sd", "mean"),
        }
        for name in ("no_slab", "slab")
    }
    return {
        "model": f"{card.name} {card.version}",
        "slab_mm": slab_mm,
        "seeds": [SEEDS[0], SEEDS[-1]],
        "cases": cases,
        "summary": summary,
    }


def markdown(p: dict[str, Any]) -> str:
    lines = [
        f"# Cord slab input on fresh synthetic thin-slice cases ({p['model']}, slab {p['slab_mm']} mm)",
        "",
        f"Seeds {p['seeds'][0]}-{p['seeds'][1]}, isotropic 0.8-1.0 mm, never used in training. Reference: the engine's "
        "partial-volume cord. Ratio = predicted soft area / true area (interior slices); slice sd = sd over slices "
        "of the per-slice ratio (noise along the cord).",
        "",
        "| case | contrast | fuzzy Dice no slab / slab | area ratio no slab / slab | slice sd no slab / slab |",
        "|---|---|---|---|---|",
    ]
    for name, c in p["cases"].items():
        a, b = c["no_slab"], c["slab"]
        lines.append(
            f"| {name} | {c['contrast']} | {a['fuzzy_dice']} / {b['fuzzy_dice']} "
            f"| {a['area_ratio']} / {b['area_ratio']} | {a['slice_ratio_sd']} / {b['slice_ratio_sd']} |"
        )
    s = p["summary"]
    lines += [
        "",
        "| summary | no slab | slab |",
        "|---|---|---|",
        f"| mean fuzzy Dice | {s['no_slab']['mean_fuzzy_dice']} | {s['slab']['mean_fuzzy_dice']} |",
        f"| median area ratio | {s['no_slab']['median_area_ratio']} | {s['slab']['median_area_ratio']} |",
        f"| mean per-slice ratio sd | {s['no_slab']['mean_slice_ratio_sd']} | {s['slab']['mean_slice_ratio_sd']} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slab-mm", type=float, default=3.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    payload = run(args.threads, args.slab_mm)
    md = markdown(payload)
    path = write_results("cord_slab", payload, threads=args.threads, markdown=md)
    logging.getLogger(__name__).info("%s\nwritten %s", md, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
