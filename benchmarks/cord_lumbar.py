"""Where `neurospine cord` puts the cord on held-out lumbar scans (docs/decisions/cord-in-canal.md).

The lumbar sets label vertebral bodies (VB2, VB3, VB1) or discs (IVD), not the cord. A cord voxel inside a
reference body or disc is wrong by definition, so the share of cord voxels there measures misplaced cords
without a cord reference. Each held-out scan (the splits of ``neurospine.spine.data``; VB1 all) goes through
``cord.api.run_file`` twice: without the cord-in-canal check (``canal_check=False``, the tool as it was) and with
it. Reported per scan: cord volume, superior-inferior length, share inside the reference structures, the
share of the first cord that the spine network calls bone (what the check reads), whether the check re-detected
the cord, and whether the tool found no cord (exit "no spinal cord found").

Run from the repository root: ``python -m benchmarks.cord_lumbar`` (about 10 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results

THREADS = 2
#: a scan's cord is misplaced when more than this share of it lies in reference bodies or discs
MISPLACED = 0.05
SETS = ("vb2", "vb3", "vb1", "ivd")
log = logging.getLogger("benchmarks.cord_lumbar")


def superior_mm(mask: npt.NDArray[np.bool_], affine: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """World superior coordinate (mm) of every voxel of ``mask``."""
    return np.asarray(np.argwhere(mask) @ np.asarray(affine)[2, :3] + float(np.asarray(affine)[2, 3]), dtype=np.float64)


def superior_length_mm(mask: np.ndarray, affine: np.ndarray) -> float:
    """Extent of ``mask`` along the world superior axis (mm)."""
    z = superior_mm(mask, affine)
    return float(z.max() - z.min()) if z.size else 0.0


def score_run(case: Any, check: bool, out: Path, qc_dir: Path | None = None) -> dict[str, Any]:
    """One ``run_file`` on a held-out case, scored against its reference structures."""
    from neurospine.cord.api import run_file
    from neurospine.errors import NoStructureFoundError
    from neurospine.io import load_volume

    ref = np.asarray(case.labels.data) > 0
    try:
        res = run_file(case.image.source, out, threads=THREADS, canal_check=check)
    except NoStructureFoundError as e:
        # "no spinal cord kept": the check refused a cord found in bone (counted apart from a scan without cord)
        return {"no_cord": True, "refused_in_bone": "no spinal cord kept" in str(e), "message": str(e)[-200:]}
    if qc_dir is not None:
        qc_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(res.outputs["qc"], qc_dir / f"{case.name}-{'with' if check else 'without'}-check.png")
    mask = np.asarray(load_volume(res.outputs["cord_mask"], check_intensity=False).data) > 0
    voxel = case.image.voxel_volume_mm3
    n = int(mask.sum())
    record = res.extra.get("cord_in_bone") or {}
    return {
        "no_cord": False,
        "cord_mm3": round(n * voxel, 1),
        "length_mm": round(superior_length_mm(mask, np.asarray(case.image.affine)), 1),
        "in_reference": round(float((mask & ref).sum()) / max(1, n), 4),
        "network_bone_share_first": record.get("share_before"),
        "redetected": bool(record.get("redetected_in_canal", False)),
        "first_pass_empty": bool(record.get("first_pass_empty", False)),
        "first_outside_canal": bool(record.get("first_outside_canal", False)),
        "second_kept": bool(record.get("second_kept", False)),
        "in_network_canal": record.get("share_in_canal"),
        # per-level CSA keys are csa_mm2_<level>; level names start upper-case (T12), the summaries do not (mean)
        "levels": " ".join(
            name
            for name in (k.removeprefix("csa_mm2_") for k in res.measures if k.startswith("csa_mm2_"))
            if name[:1].isupper()
        ),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--sets", nargs="*", default=list(SETS), choices=SETS)
    ap.add_argument("--qc-dir", type=Path, default=None, help="copy every run's QC picture here (to look at them)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from neurospine.spine.data import eval_cases

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for which in args.sets:
            for case in eval_cases(args.data, which):
                row: dict[str, Any] = {"set": which, "case": case.name}
                for check in (False, True):
                    key = "with_check" if check else "without_check"
                    row[key] = score_run(case, check, Path(tmp) / f"{case.name}-{key}", args.qc_dir)
                    log.info("%s %s: %s", case.name, key, row[key])
                rows.append(row)

    def misplaced(r: dict[str, Any]) -> bool:
        return not r["no_cord"] and float(r["in_reference"]) > MISPLACED

    summary = {
        key: {
            "scans": len(rows),
            "misplaced": sum(misplaced(r[key]) for r in rows),
            "no_cord": sum(bool(r[key]["no_cord"]) for r in rows),
            "refused_in_bone": sum(bool(r[key].get("refused_in_bone")) for r in rows),
            "redetected": sum(bool(r[key].get("redetected")) for r in rows),
            "found_after_empty_first_pass": sum(bool(r[key].get("first_pass_empty")) for r in rows),
            "max_in_reference": max((float(r[key].get("in_reference", 0.0)) for r in rows), default=0.0),
        }
        for key in ("without_check", "with_check")
    }
    md = [
        "# `neurospine cord` on held-out lumbar scans: is the cord in the canal?\n",
        "Share of cord voxels inside the reference vertebral bodies (VB sets) or discs (IVD); a scan is misplaced",
        f"above {MISPLACED}. Without / with the cord-in-canal check (`docs/decisions/cord-in-canal.md`).\n",
        "| | scans | misplaced | no cord (of those, refused: cord in bone) | sought again in the canal "
        "| of those, first pass empty | largest share in reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, s in summary.items():
        md.append(
            f"| {key.replace('_', ' ')} | {s['scans']} | {s['misplaced']} | {s['no_cord']} ({s['refused_in_bone']}) "
            f"| {s['redetected']} | {s['found_after_empty_first_pass']} | {s['max_in_reference']:.3f} |"
        )
    md += [
        "",
        "| case | without: cord mm3 / length mm / in reference | with: cord mm3 / length mm / in reference "
        "| first cord in network bone | sought again | kept cord in network canal | levels (with) |",
        "|---|---|---|---|---|---|---|",
    ]

    def sought(w: dict[str, Any]) -> str:
        if not w.get("redetected"):
            return "no"
        why = (
            "first pass empty"
            if w.get("first_pass_empty")
            else "outside the canal"
            if w.get("first_outside_canal")
            else "in bone"
        )
        return f"yes ({why}; {'second kept' if w.get('second_kept') else 'first kept'})"

    def cell(r: dict[str, Any]) -> str:
        if r["no_cord"]:
            return "refused (cord in bone)" if r.get("refused_in_bone") else "no cord"
        return f"{r['cord_mm3']:.0f} / {r['length_mm']:.0f} / {r['in_reference']:.3f}"

    for r in rows:
        w = r["with_check"]
        first, canal = w.get("network_bone_share_first"), w.get("in_network_canal")
        md.append(
            f"| {r['case']} | {cell(r['without_check'])} | {cell(w)} | "
            f"{'-' if first is None or w.get('first_pass_empty') else f'{first:.2f}'} | "
            f"{sought(w)} "
            f"| {'-' if canal is None else f'{canal:.2f}'} "
            f"| {w.get('levels', '')} |"
        )
    write_results("cord_lumbar", {"rows": rows, "summary": summary}, threads=THREADS, markdown="\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
