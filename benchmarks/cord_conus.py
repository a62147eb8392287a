"""Does `neurospine cord` follow the cord down to the conus, and stop there? (docs/decisions/cord-conus.md)

The held-out lumbar scans label vertebral bodies (VB2, VB3, VB1) or discs (IVD), not the cord, but their
labels fix the levels: VB2 bodies T11-L5 by order, VB3 L1-L5, VB1 counted up from the lowest body (S1), IVD
discs L1-L2..L5-S1. The conus medullaris ends at or below the T12-L1 disc in nearly all adults and rarely
reaches L2-L3, so, in 1-mm superior-inferior rows of world space:

- **coverage above L1**: share of the rows from 10 mm below the top of the image's field to the top of the
  reference L1 body that hold a cord voxel (VB sets; close to 1 when the cord is followed);
- **cord at L3 or lower**: rows holding a cord voxel at or below the top of the reference L3 body (IVD: below
  the L2-L3 disc), in mm (0 when the cord stops where it should).

The tptbox MRI carries a manual cord (label 60) down to the conus: its Dice is reported too. The shipped tool
runs as a user runs it (``cord.api.run_file``, the cord-in-canal check on); ``NEUROSPINE_MODELS_DIR`` points at a
candidate model. Run from the repository root: ``python -m benchmarks.cord_conus`` (about 6 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.cord_lumbar import MISPLACED, SETS, superior_mm

THREADS = 2
#: rows this close to the top of the field are left out of the coverage (edge slices, coil fall-off)
TOP_MARGIN_MM = 10.0
log = logging.getLogger("benchmarks.cord_conus")


def level_names(which: str, n: int) -> list[str]:
    """Names of a case's ``n`` reference structures, superior first."""
    if which == "vb2":
        return ["T11", "T12", "L1", "L2", "L3", "L4", "L5"][:n]
    if which == "vb3":
        return ["L1", "L2", "L3", "L4", "L5"][:n]
    if which == "ivd":
        return ["L1-L2", "L2-L3", "L3-L4", "L4-L5", "L5-S1"][:n]
    chain = ["S1", "L5", "L4", "L3", "L2", "L1", "T12", "T11", "T10", "T9"]  # vb1: up from the lowest body
    return chain[:n][::-1]


def reference_extents(
    labels: npt.NDArray[np.integer], affine: npt.NDArray[np.float64], which: str
) -> dict[str, tuple[float, float]]:
    """(lowest, highest) superior coordinate of each named reference structure."""
    ids = [int(v) for v in np.unique(labels) if v > 0]
    ext = {i: superior_mm(labels == i, affine) for i in ids}
    order = sorted(ids, key=lambda i: -float(ext[i].mean()))
    return {
        name: (float(ext[i].min()), float(ext[i].max()))
        for name, i in zip(level_names(which, len(order)), order, strict=False)  # extra bodies stay unnamed
    }


def cord_rows(cord_z: npt.NDArray[np.float64]) -> set[int]:
    """The 1-mm superior-inferior rows holding a cord voxel."""
    return {int(v) for v in np.floor(cord_z)}


def coverage_above_l1(rows: set[int], field_top_mm: float, l1_top_mm: float) -> float | None:
    """Share of the rows from ``TOP_MARGIN_MM`` below the field's top to the top of L1 that hold cord."""
    span = range(int(np.floor(l1_top_mm)) + 1, int(np.floor(field_top_mm - TOP_MARGIN_MM)) + 1)
    if len(span) == 0:
        return None
    return sum(r in rows for r in span) / len(span)


def cord_at_l3_or_lower_mm(rows: set[int], l3_top_mm: float) -> int:
    """Rows holding cord at or below ``l3_top_mm`` (mm, at 1 mm per row)."""
    return sum(r <= l3_top_mm for r in rows)


def score_case(case: Any, which: str, out: Path) -> dict[str, Any]:
    from neurospine.cord.api import run_file
    from neurospine.errors import NoStructureFoundError
    from neurospine.io import load_volume

    affine = np.asarray(case.image.affine, dtype=np.float64)
    ext = reference_extents(np.asarray(case.labels.data), affine, which)
    field_top_mm = float(superior_mm(np.asarray(case.image.data) != 0, affine).max())
    try:
        res = run_file(case.image.source, out, threads=THREADS)
        mask = np.asarray(load_volume(res.outputs["cord_mask"], check_intensity=False).data) > 0
    except NoStructureFoundError:
        mask = np.zeros(case.image.shape, dtype=bool)
    rows = cord_rows(superior_mm(mask, affine))
    ref = np.asarray(case.labels.data) > 0
    l3_key, l3_end = ("L2-L3", 0) if which == "ivd" else ("L3", 1)
    l3_top_mm = ext[l3_key][l3_end] if l3_key in ext else None
    return {
        "set": which,
        "case": case.name,
        "cord_mm3": round(float(mask.sum()) * case.image.voxel_volume_mm3, 1),
        "cord_rows_mm": len(rows),
        "lowest_cord_mm": min(rows) if rows else None,
        "l1_top_mm": ext["L1"][1] if "L1" in ext else None,
        "coverage_above_l1": None if "L1" not in ext else coverage_above_l1(rows, field_top_mm, ext["L1"][1]),
        "cord_at_l3_or_lower_mm": None if l3_top_mm is None else cord_at_l3_or_lower_mm(rows, l3_top_mm),
        "misplaced": bool(mask.any() and float((mask & ref).sum()) / float(mask.sum()) > MISPLACED),
    }


def score_tptbox(data: Path, out: Path) -> dict[str, Any]:
    from neurospine.cord.api import run_file
    from neurospine.io import load_volume

    folder = data / "tptbox_samples"
    res = run_file(folder / "tpt-mri_img.nii.gz", out, threads=THREADS)
    pred = np.asarray(load_volume(res.outputs["cord_mask"], check_intensity=False).data) > 0
    ref = np.asarray(load_volume(folder / "tpt-mri_subreg.nii.gz", check_intensity=False).data) == 60
    dice = 2.0 * float((pred & ref).sum()) / max(1.0, float(pred.sum() + ref.sum()))
    return {"dice": round(dice, 4), "pred_voxels": int(pred.sum()), "ref_voxels": int(ref.sum())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--results-name", default="cord_conus", help="record name under benchmarks/results/")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from neurospine.models.registry import load_card
    from neurospine.spine.data import eval_cases

    card = load_card("cord_softseg")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for which in SETS:
            for case in eval_cases(args.data, which):
                rows.append(score_case(case, which, Path(tmp) / case.name))
                log.info("%s", rows[-1])
        tpt = score_tptbox(args.data, Path(tmp) / "tptbox")
    covered = [float(r["coverage_above_l1"]) for r in rows if r["coverage_above_l1"] is not None]
    summary = {
        "model": f"{card.name} {card.version}",
        "scans": len(rows),
        "coverage_above_l1_mean": round(float(np.mean(covered)), 4) if covered else None,
        "coverage_scans": len(covered),
        "cord_at_l3_or_lower_mm_total": int(sum(int(r["cord_at_l3_or_lower_mm"] or 0) for r in rows)),
        "misplaced": sum(bool(r["misplaced"]) for r in rows),
        "tptbox_cord_dice": tpt["dice"],
    }
    md = [
        "# `neurospine cord` on held-out lumbar scans: followed to the conus, stopped there?\n",
        f"Model {summary['model']}. Measures and rule: `docs/decisions/cord-conus.md`.\n",
        "| coverage above L1 (mean, scans) | cord at L3 or lower (mm, all scans) | misplaced | tptbox cord Dice |",
        "|---|---|---|---|",
        f"| {summary['coverage_above_l1_mean']} ({len(covered)}) | {summary['cord_at_l3_or_lower_mm_total']} "
        f"| {summary['misplaced']} / {len(rows)} | {tpt['dice']} ({tpt['pred_voxels']} / {tpt['ref_voxels']} voxels) |",
        "",
        "| case | cord mm3 | cord rows (mm) | coverage above L1 | cord at L3 or lower (mm) | misplaced |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cov = "-" if r["coverage_above_l1"] is None else f"{r['coverage_above_l1']:.2f}"
        md.append(
            f"| {r['case']} | {r['cord_mm3']:.0f} | {r['cord_rows_mm']} | {cov} "
            f"| {'-' if r['cord_at_l3_or_lower_mm'] is None else r['cord_at_l3_or_lower_mm']} "
            f"| {'yes' if r['misplaced'] else 'no'} |"
        )
    write_results(
        args.results_name, {"summary": summary, "rows": rows, "tptbox": tpt}, threads=THREADS, markdown="\n".join(md)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
