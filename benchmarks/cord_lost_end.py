"""Slices above a caudal end of the cord inside the image: do they read small, and does the flag find them?

Rule and measures: docs/decisions/cord-lost-end.md. Four parts:

1. **Simulated coil fall-off** on errsm_30's sagittal T2w and T1w (manual masks; never trained on): below the
   middle of the field the image is multiplied by exp(-d / L) (d: distance below the middle, mm) and noise of
   ``NOISE`` x its 99th percentile is added. Per slice, the area with the fall-off over the area without it.
2. **Real labelled scans** (every errsm_30 image with a manual cord mask; the 8 challenge scans): slices flagged
   and, per slice, the area over the manual mask's area.
3. **IXI head T1w** (121 scans, no masks): the mean area of flagged slices over the mid-cord area (median area of
   the slices at least ``MID_MARGIN_MM`` from both ends of the cord), and the reported mean CSA (flagged slices left
   out) against the mean over every slice. ``--ixi-runs DIR`` measures the soft masks of an earlier run
   (``DIR/<stem>/``, as ``benchmarks.cord_head --keep-runs`` writes them) instead of running the tool.
4. **Lumbar scans** (the held-out VB/IVD cases): how many slices are flagged (their cords end at the conus, or
   are lost in the thoracic canal).

Run from the repository root: ``python -m benchmarks.cord_lost_end`` (about 20 minutes at 2 threads; 8 with
``--ixi-runs``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.cord_head import IXI_DIR
from benchmarks.cord_lumbar import SETS

THREADS = 2
#: fall-off lengths L (mm): the first two were not run while the rule was written
FALLOFF_MM = (20.0, 10.0, 15.0, 8.0, 5.0)
NOISE = 0.04
SIM_CASES = ("sct-t2", "sct-t1")
#: the mid-cord reference area of an IXI scan: slices at least this far from both ends of its cord
MID_MARGIN_MM = 24.0
log = logging.getLogger("benchmarks.cord_lost_end")
FloatArray = npt.NDArray[np.float32]


def falloff(data: npt.NDArray[np.floating], affine: npt.NDArray[np.float64], length_mm: float) -> FloatArray:
    """``data`` times exp(-d / ``length_mm``) below the middle of the field (d: mm below it along the voxel axis
    nearest to superior, taken as head to foot: an oblique grid's tilt is ignored), 1 above it."""
    lin = np.asarray(affine, dtype=np.float64)[:3, :3]
    k = int(np.argmax(np.abs(lin[2] / np.linalg.norm(lin, axis=0))))
    step_mm = float(lin[2, k])  # superior mm per voxel along axis k (negative: the axis runs downwards)
    n = data.shape[k]
    height_mm = (np.arange(n) - (n - 1) / 2.0) * step_mm  # above the middle of the field
    gain = np.where(height_mm >= 0, 1.0, np.exp(np.minimum(height_mm, 0.0) / length_mm))
    shape = [1, 1, 1]
    shape[k] = n
    return (np.asarray(data, dtype=np.float32) * gain.reshape(shape)).astype(np.float32)


def csa_rows(path: Path) -> dict[int, tuple[float, bool]]:
    """``slice`` -> (``csa_mm2``, flagged near a lost end) from a ``_csa.csv``."""
    with path.open(encoding="utf-8") as fh:
        return {int(r["slice"]): (float(r["csa_mm2"]), r["near_lost_end"] == "1") for r in csv.DictReader(fh)}


def run_csa(image_path: Path, out: Path) -> dict[int, tuple[float, bool]] | None:
    """The tool's per-slice CSA and flag on ``image_path`` (``None``: no cord found)."""
    from neurospine.cord.api import run_file
    from neurospine.errors import NoStructureFoundError

    try:
        res = run_file(image_path, out, threads=THREADS)
    except NoStructureFoundError:
        return None
    return csa_rows(Path(res.outputs["csa"]))


def manual_csa(mask_path: Path) -> dict[int, float]:
    from neurospine.cord.morphometry import measure_cord
    from neurospine.io import load_volume

    return {r.slice: r.csa_mm2 for r in measure_cord(load_volume(mask_path, check_intensity=False)).slices}


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 3) if values else None


def simulated(data: Path, tmp: Path) -> dict[str, Any]:
    """Part 1: per-slice area with the fall-off / without it, flagged and kept slices apart."""
    import nibabel as nib

    runs: list[dict[str, Any]] = []
    flagged: list[float] = []
    kept: list[float] = []
    for case in SIM_CASES:
        img_path = data / "sct_testing_data" / f"{case}_img.nii.gz"
        base = run_csa(img_path, tmp / case / "base")
        if base is None:
            runs.append({"case": case, "falloff_mm": None, "refused": True})
            continue
        img = cast(nib.Nifti1Image, nib.load(img_path))
        raw = np.asarray(img.dataobj, dtype=np.float32)
        for length_mm in FALLOFF_MM:
            rng = np.random.default_rng(0)
            sim = falloff(raw, img.affine, length_mm)
            sim = sim + rng.normal(0.0, NOISE * float(np.percentile(raw, 99)), raw.shape).astype(np.float32)
            path = tmp / case / f"{case}_falloff{length_mm:g}.nii.gz"
            nib.save(nib.Nifti1Image(sim, img.affine, img.header), path)
            rows = run_csa(path, tmp / case / f"L{length_mm:g}")
            if rows is None:
                runs.append({"case": case, "falloff_mm": length_mm, "refused": True})
                continue
            f = [a / base[s][0] for s, (a, flag) in rows.items() if flag and s in base]
            k = [a / base[s][0] for s, (a, flag) in rows.items() if not flag and s in base]
            runs.append(
                {
                    "case": case,
                    "falloff_mm": length_mm,
                    "refused": False,
                    "slices": len(rows),
                    "slices_without_falloff": len(base),
                    "flagged": len(f),
                    "flagged_ratio_median": _median(f),
                    "flagged_ratio_min": round(float(min(f)), 3) if f else None,
                    "kept_ratio_median": _median(k),
                }
            )
            if f:  # the cord ends inside the image
                flagged += f
                kept += k
            log.info("%s", runs[-1])
    return {
        "runs": runs,
        "flagged_ratio_median": _median(flagged),
        "kept_ratio_median": _median(kept),
        "flagged_slices": len(flagged),
        "kept_slices": len(kept),
    }


def labelled(data: Path, tmp: Path) -> list[dict[str, Any]]:
    """Part 2: flagged slices on real scans with manual cord masks, and their area / manual area."""
    pairs = sorted((data / "sct_testing_data").glob("*_cordseg.nii.gz")) + sorted(
        (data / "gmchallenge_cord_t2star").glob("*_cordseg.nii.gz")
    )
    out = []
    for mask_path in pairs:
        case = mask_path.name.replace("_cordseg.nii.gz", "")
        rows = run_csa(mask_path.with_name(f"{case}_img.nii.gz"), tmp / case)
        if rows is None:
            out.append({"case": case, "refused": True})
            continue
        man = manual_csa(mask_path)
        f = [a / man[s] for s, (a, flag) in rows.items() if flag and man.get(s)]
        k = [a / man[s] for s, (a, flag) in rows.items() if not flag and man.get(s)]
        out.append(
            {
                "case": case,
                "refused": False,
                "slices": len(rows),
                "flagged": sum(flag for _, flag in rows.values()),
                "flagged_vs_manual_median": _median(f),
                "kept_vs_manual_median": _median(k),
            }
        )
        log.info("%s", out[-1])
    return out


def ixi_scan(image_path: Path, soft_path: Path) -> dict[str, Any]:
    """Part 3 for one scan: flagged slices, their mean area over the mid-cord area, reported means (flagged as the
    tool flags them: a head in view flags the cord's lowest slices wherever it ends)."""
    from neurospine.cord.morphometry import measure_cord
    from neurospine.io import load_volume
    from neurospine.plausibility.common import evidence

    head = evidence(load_volume(image_path)).head_in_view
    soft = load_volume(soft_path, check_intensity=False)
    morph = measure_cord(soft, field_bottom_fades=head)
    # whether the rule without the head clause flags it too: the cord's end lies inside the image
    end_inside = any(r.near_lost_end for r in measure_cord(soft).slices)
    row: dict[str, Any] = {
        "scan": image_path.name.split(".")[0],
        "slices": len(morph.slices),
        "head": head,
        "end_inside": end_inside,
    }
    if not morph.slices:
        return row
    pos = np.array([r.position_mm for r in morph.slices])
    area = np.array([r.csa_mm2 for r in morph.slices])
    flag = np.array([bool(r.near_lost_end) for r in morph.slices])
    mid = (pos - pos.min() >= MID_MARGIN_MM) & (pos.max() - pos >= MID_MARGIN_MM)
    ref = float(np.median(area[mid])) if mid.any() else None
    row.update(
        {
            "flagged": int(flag.sum()),
            "mid_cord_mm2": None if ref is None else round(ref, 2),
            "flagged_over_mid": None if ref is None or not flag.any() else round(float(area[flag].mean()) / ref, 3),
            "mean_csa_mm2": morph.mean_csa_mm2(),
            "mean_csa_mm2_all_slices": morph.mean_csa_mm2(all_slices=True),
        }
    )
    return row


def ixi(data: Path, tmp: Path, runs: Path | None) -> list[dict[str, Any]]:
    from neurospine.cord.api import output_paths

    rows = []
    for f in sorted((data / IXI_DIR).glob("*.nii.gz")):
        stem = f.name.split(".")[0]
        run_dir = (runs / stem) if runs is not None else tmp / "ixi" / stem
        if runs is None:
            found = run_csa(f, run_dir) is not None
        else:
            found = bool(json.loads((run_dir / "status.json").read_text())["ok"])
        rows.append(ixi_scan(f, output_paths(stem, run_dir)["cord_soft"]) if found else {"scan": stem, "slices": 0})
        log.info("%s", rows[-1])
    return rows


def lumbar(data: Path, tmp: Path) -> list[dict[str, Any]]:
    """Part 4: slices flagged on the held-out lumbar scans."""
    from neurospine.spine.data import eval_cases

    out = []
    for which in SETS:
        for case in eval_cases(data, which):
            if case.image.source is None:
                raise ValueError(f"{case.name}: the evaluation case has no file")
            rows = run_csa(Path(case.image.source), tmp / "lumbar" / case.name)
            flagged = 0 if rows is None else sum(flag for _, flag in rows.values())
            out.append(
                {"set": which, "case": case.name, "slices": 0 if rows is None else len(rows), "flagged": flagged}
            )
            log.info("%s", out[-1])
    return out


def markdown(p: dict[str, Any]) -> str:
    s, lab, ix, lum = p["simulated"], p["labelled"], p["ixi_summary"], p["lumbar"]
    md = [
        "# Cord slices above a lost caudal end (`near_lost_end`)\n",
        "Rule: `docs/decisions/cord-lost-end.md`. Per-slice ratios are medians.\n",
        "## 1. Simulated coil fall-off on errsm_30 (area with / without the fall-off, same slice)\n",
        f"Pooled over runs whose cord ends inside the image: flagged slices {s['flagged_ratio_median']} "
        f"({s['flagged_slices']} slices), kept slices {s['kept_ratio_median']} ({s['kept_slices']} slices).\n",
        "| case | L (mm) | slices (without fall-off) | flagged | flagged ratio (min) | kept ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["runs"]:
        if r["refused"]:
            md.append(f"| {r['case']} | {r['falloff_mm']} | no cord found | | | |")
            continue
        md.append(
            f"| {r['case']} | {r['falloff_mm']:g} | {r['slices']} ({r['slices_without_falloff']}) | {r['flagged']} "
            f"| {r['flagged_ratio_median']} ({r['flagged_ratio_min']}) | {r['kept_ratio_median']} |"
        )
    md += [
        "\n## 2. Real labelled scans (area / manual area, same slice)\n",
        "| case | slices | flagged | flagged vs manual | kept vs manual |",
        "|---|---|---|---|---|",
    ]
    for r in lab:
        if r["refused"]:
            md.append(f"| {r['case']} | no cord found | | | |")
            continue
        md.append(
            f"| {r['case']} | {r['slices']} | {r['flagged']} | {r['flagged_vs_manual_median']} "
            f"| {r['kept_vs_manual_median']} |"
        )
    n_end, med_end = ix["scored_by_end"], ix["flagged_over_mid_median_by_end"]
    md += [
        "\n## 3. IXI head T1w (no masks; not held out: the 20 mm and the head clause were set from these scans)\n",
        f"Masks: {p['ixi_source']}. {ix['scans_flagged']} of {ix['scans_with_cord']} scans with a cord have flagged "
        f"slices (median {ix['flagged_slices_median']} slices). Scored: the {ix['scans_scored']} flagged scans whose "
        f"cord is long enough for a mid-cord area (slices {MID_MARGIN_MM:g} mm or more from both ends). Mean area of "
        f"the flagged slices over the mid-cord area: median {ix['flagged_over_mid_median']}; where the cord ends "
        f"inside the image {med_end['end_inside']} ({n_end['end_inside']} scans), where it reaches the field's bottom "
        f"(flagged by the head clause, amendment 1) {med_end['field_bottom']} ({n_end['field_bottom']} scans). "
        f"Reported mean CSA over the mid-cord area: {ix['mean_over_mid_median']} (flagged left out) against "
        f"{ix['mean_all_over_mid_median']} (every slice).\n",
        "\n## 4. Held-out lumbar scans\n",
        f"{sum(1 for r in lum if r['flagged'])} of {len(lum)} scans have flagged slices "
        f"({sum(r['flagged'] for r in lum)} of {sum(r['slices'] for r in lum)} cord slices).\n",
        "| case | slices | flagged |",
        "|---|---|---|",
    ]
    md += [f"| {r['case']} | {r['slices']} | {r['flagged']} |" for r in lum]
    return "\n".join(md)


def ixi_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    with_cord = [r for r in rows if r.get("slices")]
    flagged = [r for r in with_cord if r.get("flagged")]
    scored = [r for r in flagged if r.get("mid_cord_mm2")]
    groups = {"end_inside": True, "field_bottom": False}  # where the cord's lowest slice lies
    by_end = {
        name: _median([float(r["flagged_over_mid"]) for r in scored if bool(r.get("end_inside")) is inside])
        for name, inside in groups.items()
    }
    return {
        "scans": len(rows),
        "scans_with_cord": len(with_cord),
        "scans_flagged": len(flagged),
        "scans_scored": len(scored),
        "scored_by_end": {name: sum(bool(r.get("end_inside")) is i for r in scored) for name, i in groups.items()},
        "flagged_over_mid_median_by_end": by_end,
        "flagged_slices_median": _median([float(r["flagged"]) for r in flagged]),
        "flagged_over_mid_median": _median([float(r["flagged_over_mid"]) for r in scored]),
        "mean_over_mid_median": _median([float(r["mean_csa_mm2"]) / float(r["mid_cord_mm2"]) for r in scored]),
        "mean_all_over_mid_median": _median(
            [float(r["mean_csa_mm2_all_slices"]) / float(r["mid_cord_mm2"]) for r in scored]
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--ixi-runs", type=Path, default=None, help="measure the soft masks of an earlier IXI run")
    ap.add_argument("--results-name", default="cord_lost_end")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "sim").mkdir()
        for case in SIM_CASES:
            (tmp / "sim" / case).mkdir()
        sim = simulated(args.data, tmp / "sim")
        lab = labelled(args.data, tmp / "labelled")
        ixi_rows = ixi(args.data, tmp, args.ixi_runs)
        lum = lumbar(args.data, tmp)
    payload = {
        "simulated": sim,
        "labelled": lab,
        "ixi_summary": ixi_summary(ixi_rows),
        "ixi": ixi_rows,
        # the folder's name only: a record names no machine's paths
        "ixi_source": f"those of an earlier run ({args.ixi_runs.name}/)" if args.ixi_runs else "this run's",
        "lumbar": lum,
    }
    write_results(args.results_name, payload, threads=THREADS, markdown=markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
