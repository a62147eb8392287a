"""Automatic sagittal slice choice of ``neurospine slice2d`` on 3D volumes, against the reference bodies.

For every labelled 3D lumbar volume in shared/ (VB3, VB2, VB1; IPL grid, axis 2 = left-right, 1 mm) the
CLI's path (``slice2d.api.run_file``) picks a sagittal slice; the reference is the left-right centroid of
all labelled vertebral-body voxels (the bodies' midline). Reported: the distance in mm per case and its
median / maximum. Bodies are about 40-50 mm wide, so a slice within a few mm of the midline cuts every
body through its central part.

Run: ``python -m benchmarks.slice2d_slice_choice [--threads 2]``.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SHARED_DATA, write_results


def _sets() -> tuple[str, ...]:
    from neurospine.spine import data as D

    return (D.VB3_DIR, D.VB2_DIR, D.VB1_DIR)


def _reference_centre(vol: Any) -> tuple[float, float]:
    """Left-right centroid (index along axis 2) of the labelled bodies of ``vol`` (IPL), and the axis-2 spacing."""
    lab = np.asarray(vol.data) > 0
    prof = lab.sum(axis=(0, 1)).astype(np.float64)
    spacing = float(vol.spacing_mm[2])
    return float((prof * np.arange(prof.size)).sum() / prof.sum()), spacing


def run(data: Path, threads: int) -> dict[str, Any]:
    from neurospine.slice2d.api import run_file
    from neurospine.spine import data as D

    rows = []
    for folder in _sets():
        for row in D.manifest(data, folder):  # the cases with an image and a label file
            case = D.load_eval_case(data, folder, row)
            img = data / folder / f"{case.name}_img.nii.gz"  # the file load_eval_case read
            centre, spacing = _reference_centre(case.labels)
            with tempfile.TemporaryDirectory() as tmp:
                res = run_file(img, tmp, threads=threads)
            chosen = res.extra.get("slice_input")
            dist = None if chosen is None else round(abs(float(chosen) - centre) * spacing, 2)
            rows.append(
                {
                    "case": img.name.replace("_img.nii.gz", ""),
                    "chosen_slice": chosen,
                    "body_midline_slice": round(centre, 1),
                    "distance_mm": dist,
                    "how": res.extra.get("slice_how"),
                }
            )
            logging.getLogger(__name__).info("%s", rows[-1])
    d = np.array([r["distance_mm"] for r in rows if r["distance_mm"] is not None], dtype=np.float64)
    if d.size == 0:
        raise SystemExit(f"no labelled 3D lumbar volume found under {data}")
    return {
        "cases": rows,
        "n": int(d.size),
        "median_distance_mm": round(float(np.median(d)), 2),
        "max_distance_mm": round(float(d.max()), 2),
        "over_4mm": int((d > 4.0).sum()),
    }


def markdown(p: dict[str, Any]) -> str:
    lines = [
        "# slice2d automatic slice choice vs the reference bodies' midline",
        "",
        f"{p['n']} labelled 3D volumes (VB3, VB2, VB1); distance = |chosen slice - left-right centroid of the "
        f"reference bodies| in mm. Median {p['median_distance_mm']} mm, max {p['max_distance_mm']} mm, "
        f"{p['over_4mm']} cases over 4 mm.",
        "",
        "| case | chosen | body midline | distance (mm) | how |",
        "|---|---|---|---|---|",
    ]
    for r in p["cases"]:
        lines.append(
            f"| {r['case']} | {r['chosen_slice']} | {r['body_midline_slice']} | {r['distance_mm']} | {r['how']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    payload = run(args.data, args.threads)
    md = markdown(payload)
    path = write_results("slice2d_slice_choice", payload, threads=args.threads, markdown=md)
    logging.getLogger(__name__).info("%s\nwritten %s", md, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
