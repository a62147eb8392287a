"""Grey matter on the Spinal Cord Grey Matter Challenge scans (axial T2*w, manual GM masks), as a user gets it.

``neurospine cord --gm`` on every session (cord from cord_softseg, GM from cord_gm inside it). Per scan: Dice of
our GM vs the manual GM over the slices with manual GM; GM area ratio (mean our GM area / mean manual GM area
per slice, in-plane, same slices); seconds the GM step adds (``timings_s.gm_s``). Only the held-out people
(``neurospine.cord.data.GMC_HELDOUT``) enter the summary and the rule (docs/decisions/cord-gm-1.0.0.md);
training people are listed and marked.

Run: ``python -m benchmarks.cord_gm [--models-dir DIR --name cord_gm_candidate_X]``; ``--models-dir`` points
``NEUROSPINE_MODELS_DIR`` at a folder holding a candidate ``cord_gm.onnx`` + card.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SHARED_DATA, finish_model_benchmark, model_benchmark_args

#: errsm_30 (sct_testing_data, never trained on): axial T2*w, 0.5 x 0.5 x 7.5 mm, manual GM; not in the rule
OTHER_SUBJECT = ("sct-t2sfull",)


def score(ours: np.ndarray, manual: np.ndarray, pixel_mm2: float) -> dict[str, Any]:
    """Dice and area ratio over the slices (last axis) with manual grey matter."""
    ks = np.flatnonzero(manual.any(axis=(0, 1)))
    p, m = ours[:, :, ks] > 0, manual[:, :, ks] > 0
    denom = float(p.sum() + m.sum())
    ours_mm2 = float(p.sum()) * pixel_mm2 / max(ks.size, 1)
    manual_mm2 = float(m.sum()) * pixel_mm2 / max(ks.size, 1)
    return {
        "dice": round(2.0 * float((p & m).sum()) / denom, 4) if denom > 0 else None,
        "slices": int(ks.size),
        "ours_mm2": round(ours_mm2, 2),
        "manual_mm2": round(manual_mm2, 2),
        "area_ratio": round(ours_mm2 / manual_mm2, 4) if manual_mm2 > 0 else None,
    }


def run(data: Path, threads: int) -> dict[str, Any]:
    from neurospine.cord.api import run_file
    from neurospine.cord.data import GMC_HELDOUT, GMC_TRAIN, gmc_paths
    from neurospine.io import load_volume, reorient
    from neurospine.models import load_card

    card = load_card("cord_gm")
    cord_card = load_card("cord_softseg")
    rows: dict[str, Any] = {}
    roles = [(c, s, "held out") for c, s in GMC_HELDOUT] + [(c, s, "training") for c, s in GMC_TRAIN]
    roles += [(case, "errsm_30", "other subject") for case in OTHER_SUBJECT]
    with tempfile.TemporaryDirectory() as tmp:
        for case, person, role in roles:
            if role == "other subject":
                img = data / "sct_testing_data" / f"{case}_img.nii.gz"
            else:
                img, _ = gmc_paths(data, case)
            gm_path = img.with_name(f"{case}_gmseg.nii.gz")
            if not (img.is_file() and gm_path.is_file()):
                continue
            res = run_file(img, Path(tmp) / case, threads=threads, gm=True, auto_levels=False)
            if "gm_mask" not in res.outputs:
                rows[case] = {"person": person, "role": role, "dice": None, "note": "; ".join(res.warnings)}
                continue
            ours, _ = reorient(load_volume(res.outputs["gm_mask"], check_intensity=False), "RAS")
            manual, _ = reorient(load_volume(gm_path, check_intensity=False), "RAS")
            pixel = float(ours.spacing_mm[0] * ours.spacing_mm[1])
            row = score(np.asarray(ours.data), np.asarray(manual.data), pixel)
            rows[case] = {
                "person": person,
                "role": role,
                **row,
                "gm_seconds": round(res.timings_s["gm_s"], 3),
                "gm_wm_intensity_ratio": res.measures.get("gm_wm_intensity_ratio"),
                "contrast_warning": any("not brighter than the white matter" in w for w in res.warnings),
            }
    held = [r for r in rows.values() if r["role"] == "held out" and r.get("dice") is not None]
    summary = {
        "held_out_scans": len(held),
        "held_out_dice_mean": round(float(np.mean([r["dice"] for r in held])), 4) if held else None,
        "held_out_dice_min": min(r["dice"] for r in held) if held else None,
        "held_out_area_abs_err_median": round(float(np.median([abs(r["area_ratio"] - 1) for r in held])), 4)
        if held
        else None,
        "gm_seconds_max": max((r.get("gm_seconds", 0.0) for r in rows.values()), default=None),
        "other_subject_dice": {k: r.get("dice") for k, r in rows.items() if r["role"] == "other subject"},
    }
    return {
        "model": f"{card.name} {card.version}",
        "sha256": card.sha256[:12],
        "cord_model": f"{cord_card.name} {cord_card.version}",
        "cases": rows,
        "summary": summary,
    }


def markdown(p: dict[str, Any]) -> str:
    lines = [
        f"# Grey matter on the grey-matter challenge scans ({p['model']}, sha256 {p['sha256']}; cord from "
        f"{p['cord_model']})",
        "",
        "`neurospine cord --gm`, axial T2*w, manual GM masks. Split by person as for the cord model "
        "(`neurospine.cord.data`): held out 9418 (UCL) and 9709 (Milan, 1.5T, 2 sessions); training rows are the "
        "people the GM model trained on; 'other subject' is errsm_30's full-field axial T2*w from SCT's test data "
        "(0.5 x 0.5 x 7.5 mm, never trained on, not part of the decision rule). Dice and area over the slices with "
        "manual grey matter.",
        "",
        "| scan | person | role | GM Dice | slices | ours (mm²) | manual (mm²) | area ratio | GM step s | "
        "GM/WM intensity |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in p["cases"].items():
        lines.append(
            f"| {name} | {r['person']} | {r['role']} | {r.get('dice')} | {r.get('slices')} | {r.get('ours_mm2')} | "
            f"{r.get('manual_mm2')} | {r.get('area_ratio')} | {r.get('gm_seconds')} | "
            f"{r.get('gm_wm_intensity_ratio')}{' (warned)' if r.get('contrast_warning') else ''} |"
        )
    s = p["summary"]
    lines += [
        "",
        f"Held out ({s['held_out_scans']} scans): mean GM Dice {s['held_out_dice_mean']}, "
        f"min {s['held_out_dice_min']}, "
        f"median |area ratio - 1| {s['held_out_area_abs_err_median']}; slowest GM step {s['gm_seconds_max']} s.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = model_benchmark_args(__doc__, "cord_gm", "cord_gm")
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    args = ap.parse_args(argv)
    return finish_model_benchmark(args, lambda: run(args.data, args.threads), markdown)


if __name__ == "__main__":
    raise SystemExit(main())
