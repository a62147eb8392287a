"""Cord model on the Spinal Cord Grey Matter Challenge scans (axial T2*w, 6 people, 6 sites, manual cord masks).

Every session is scored; the split is ``neurospine.cord.data.GMC_TRAIN`` / ``GMC_HELDOUT`` (by person), and
only held-out scans enter the summary and the decision rule (docs/decisions/cord-2.0.0.md):

* Dice of the binary cord mask (soft >= 0.5) vs the manual mask over the whole volume, and over the slices the
  rater labelled (first to last slice with manual cord: 9604's manual mask stops 6 slices before the image does,
  so our cord on those slices counted as false positives in the whole-volume Dice);
* area ratio: mean soft in-plane area / mean manual in-plane area over the slices where the manual mask
  has cord (RAS axial slices, the same slices for both, no angle correction for either);
* seconds per image (``run_file`` wall time, model loading included) at ``--threads``.

Run: ``python -m benchmarks.cord_gmc [--models-dir DIR --name cord_gmc_candidate_X]``; ``--models-dir`` points
``NEUROSPINE_MODELS_DIR`` at a folder holding a candidate ``cord_softseg.onnx`` + card.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SHARED_DATA, write_results


def score(soft: np.ndarray, binary: np.ndarray, manual: np.ndarray, spacing_mm: tuple[float, ...]) -> dict[str, Any]:
    """Dice and same-slice area ratio of one RAS volume pair (axial slices along the last axis)."""
    pred = binary > 0
    ref = manual > 0
    inter = float(np.logical_and(pred, ref).sum())
    denom = float(pred.sum() + ref.sum())
    pix = float(spacing_mm[0] * spacing_mm[1])
    ks = np.flatnonzero(ref.any(axis=(0, 1)))
    labelled = slice(int(ks.min()), int(ks.max()) + 1) if ks.size else slice(0, 0)
    inter_l = float(np.logical_and(pred[:, :, labelled], ref[:, :, labelled]).sum())
    denom_l = float(pred[:, :, labelled].sum() + ref[:, :, labelled].sum())
    ours = float(soft[:, :, ks].sum()) * pix / max(ks.size, 1)
    mask = float(ref[:, :, ks].sum()) * pix / max(ks.size, 1)
    return {
        "dice": round(2.0 * inter / denom, 4) if denom > 0 else None,
        "dice_labelled_slices": round(2.0 * inter_l / denom_l, 4) if denom_l > 0 else None,
        "slices": int(ks.size),
        "slices_image": int(ref.shape[2]),
        "ours_mm2": round(ours, 2),
        "manual_mm2": round(mask, 2),
        "area_ratio": round(ours / mask, 4) if mask > 0 else None,
    }


def run(data: Path, threads: int, also_held_out: frozenset[str] = frozenset()) -> dict[str, Any]:
    from neurospine.cord.api import run_file
    from neurospine.cord.data import GMC_HELDOUT, GMC_TRAIN, gmc_paths
    from neurospine.io import load_volume, reorient
    from neurospine.models import load_card

    card = load_card("cord_softseg")
    rows: dict[str, Any] = {}
    roles = [(c, s, "held out") for c, s in GMC_HELDOUT] + [
        (c, s, "held out" if s in also_held_out else "training") for c, s in GMC_TRAIN
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for case, subject, role in roles:
            img, msk = gmc_paths(data, case)
            if not (img.is_file() and msk.is_file()):
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_file(img, Path(tmp) / case, threads=threads)
            seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            soft, _ = reorient(load_volume(res.outputs["cord_soft"], check_intensity=False), "RAS")
            binary, _ = reorient(load_volume(res.outputs["cord_mask"], check_intensity=False), "RAS")
            manual, _ = reorient(load_volume(msk, check_intensity=False), "RAS")
            row = score(
                np.asarray(soft.data, np.float64), np.asarray(binary.data), np.asarray(manual.data), soft.spacing_mm
            )
            per_slice = list(csv.DictReader(res.outputs["csa"].open()))
            csa = [float(r["csa_mm2"]) for r in per_slice]
            ratio = [float(r["cord_canal_ratio"]) for r in per_slice if r["cord_canal_ratio"]]
            unc = [float(r["csa_mm2_uncertainty"]) for r in per_slice if r["csa_mm2_uncertainty"]]
            row["csa_mm2_median"] = round(float(np.median(csa)), 2)
            row["cord_canal_ratio_median"] = round(float(np.median(ratio)), 4) if ratio else None
            row["csa_uncertainty_mm2_median"] = round(float(np.median(unc)), 2) if unc else None
            rows[case] = {
                "person": subject,
                "role": role,
                **row,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
            }
    held = [r for r in rows.values() if r["role"] == "held out" and r["dice"] is not None]
    summary = {
        "held_out_scans": len(held),
        "held_out_dice_mean": round(float(np.mean([r["dice"] for r in held])), 4) if held else None,
        "held_out_dice_min": min(r["dice"] for r in held) if held else None,
        "all_scans_dice_labelled_min": min(
            (r["dice_labelled_slices"] for r in rows.values() if r["dice_labelled_slices"] is not None), default=None
        ),
        "held_out_area_abs_err_median": round(float(np.median([abs(r["area_ratio"] - 1) for r in held])), 4)
        if held
        else None,
        "seconds_max": max(r["seconds"] for r in rows.values()) if rows else None,
        "cpu_seconds_max": max(r["cpu_seconds"] for r in rows.values()) if rows else None,
        "load_average_end": round(os.getloadavg()[0], 2),
    }
    # between-person spread (first session of each person): does the canal normalisation make people comparable?
    first: dict[str, dict[str, Any]] = {}
    for r in rows.values():
        first.setdefault(r["person"], r)
    people = list(first.values())
    if len(people) > 2 and all(r["cord_canal_ratio_median"] for r in people):
        summary["between_person_cv_csa"] = round(_cv([r["csa_mm2_median"] for r in people]), 4)
        summary["between_person_cv_cord_canal_ratio"] = round(_cv([r["cord_canal_ratio_median"] for r in people]), 4)
        summary["between_person_n"] = len(people)
    return {"model": f"{card.name} {card.version}", "sha256": card.sha256[:12], "cases": rows, "summary": summary}


def _cv(values: list[float]) -> float:
    a = np.asarray(values, dtype=np.float64)
    return float(a.std(ddof=1) / a.mean())


def markdown(p: dict[str, Any]) -> str:
    lines = [
        f"# Cord on the grey-matter challenge scans ({p['model']}, sha256 {p['sha256']})",
        "",
        "Axial T2*w, manual cord masks. Split by person (`neurospine.cord.data`): held out 9418 (UCL) and 9709 "
        "(Milan, 1.5T, 2 sessions); training rows are the people a 2.0.0 candidate trains on (1.2.0 never saw "
        "any of them). Area ratio = mean soft in-plane area / mean manual area over the slices where the manual "
        "mask has cord."
        + (
            f" This model also left out {', '.join(p['also_held_out'])} (scored as held out)."
            if p.get("also_held_out")
            else ""
        ),
        "",
        "| scan | person | role | Dice | Dice, labelled slices | slices labelled / in image | ours soft (mm²) | "
        "manual (mm²) | area ratio | s | CPU s | "
        "CSA median (mm²) | CSA uncertainty median (mm²) | cord/canal median |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in p["cases"].items():
        lines.append(
            f"| {name} | {r['person']} | {r['role']} | {r['dice']} | {r.get('dice_labelled_slices')} | {r['slices']} / "
            f"{r.get('slices_image')} | {r['ours_mm2']} | "
            f"{r['manual_mm2']} | {r['area_ratio']} | {r['seconds']} | {r.get('cpu_seconds', 'n/a')} | "
            f"{r.get('csa_mm2_median')} | {r.get('csa_uncertainty_mm2_median')} | {r.get('cord_canal_ratio_median')} |"
        )
    s = p["summary"]
    lines += [
        "",
        f"Held out ({s['held_out_scans']} scans): mean Dice {s['held_out_dice_mean']}, min {s['held_out_dice_min']}, "
        f"median |area ratio - 1| {s['held_out_area_abs_err_median']}; lowest Dice over the labelled slices of any "
        f"scan (training people included) {s.get('all_scans_dice_labelled_min')}; slowest image {s['seconds_max']} s "
        "wall, "
        f"{s.get('cpu_seconds_max', 'n/a')} s of CPU over all threads (load average {s.get('load_average_end')} "
        "at the end on 2 shared cores: on an idle machine a 2-thread run takes about the CPU seconds or less).",
    ]
    if "between_person_cv_csa" in s:
        lines += [
            "",
            f"Between people ({s['between_person_n']}, first session each; `_csa.csv` medians, angle-corrected): CV of "
            f"the CSA {100 * s['between_person_cv_csa']:.1f} %, CV of the cord/canal ratio "
            f"{100 * s['between_person_cv_cord_canal_ratio']:.1f} % (the canal is the model's own canal mask).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models-dir", type=Path, default=None, help="folder with a candidate cord_softseg model")
    ap.add_argument("--name", default="cord_gmc", help="results file stem in benchmarks/results")
    ap.add_argument(
        "--also-held-out",
        default="",
        help="training people the scored model left out (train cord --gmc-leave-out), comma-separated: scored as "
        "held out",
    )
    ap.add_argument(
        "--update-card",
        action="store_true",
        help="write the held-out figures into the shipped model card's metrics (only for the shipped model)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.models_dir is not None:
        os.environ["NEUROSPINE_MODELS_DIR"] = str(args.models_dir)
    extra = frozenset(x.strip() for x in str(args.also_held_out).split(",") if x.strip())
    payload = run(args.data, args.threads, extra)
    if extra:
        payload["also_held_out"] = sorted(extra)
    md = markdown(payload)
    path = write_results(args.name, payload, threads=args.threads, markdown=md)
    logging.getLogger(__name__).info("%s\nwritten %s", md, path)
    if args.update_card:
        update_card(payload, args.name)
    return 0


def update_card(payload: dict[str, Any], name: str) -> None:
    """Held-out challenge figures into the shipped card (same sha256 only: a candidate is not the shipped one)."""
    import json

    from neurospine.models.registry import _card_path

    path = _card_path("cord_softseg")
    card = json.loads(path.read_text(encoding="utf-8"))
    if not card["sha256"].startswith(payload["sha256"]):
        raise SystemExit(f"{path} is not the model that was scored ({payload['sha256']}); card left alone")
    held = {k: v for k, v in payload["cases"].items() if v["role"] == "held out"}
    card.setdefault("metrics", {})["gmchallenge_t2star_heldout_sites"] = {
        "dice_per_scan": {k: v["dice"] for k, v in held.items()},
        "area_ratio_per_scan": {k: v["area_ratio"] for k, v in held.items()},
        "dice_mean": payload["summary"]["held_out_dice_mean"],
        "area_abs_rel_err_median": payload["summary"]["held_out_area_abs_err_median"],
        "note": "people 9418 (UCL) and 9709 (Milan, 1.5T, 2 sessions), never trained on; "
        f"source: benchmarks/results/{name}.json",
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
