"""Does the bright-bone lift tell CT without Hounsfield units from every real MRI the cord tool reads?

Rules: docs/decisions/cord-ct-refusal.md (session 21, failed) and cord-ct-refusal-bone.md (the lift counts only
over at least ``MIN_BONE_MM3`` of labelled bone; shipped). For each image, the spine model runs as the cord tool's
level estimate runs it (:func:`neurospine.cord.spinelevels.read_spine`) and
:func:`neurospine.plausibility.spine.bright_bone_lift` is measured on its segmentation, with the bone minimum
(``lift``) and without it (``lift_any_bone``), beside the bone volume the spine model labelled (``bone_mm3``).
Images the spine model cannot read (thick axial slabs) have no lift: the cord tool never computes one for them.
A ``--partial`` file written before the bone columns existed is refused (rows without ``bone_mm3``).

Images: the 121 IXI head T1w scans, every ``fcs_*`` lumbar MRI, the ``sct_testing_data`` and
``sct_tutorial_unlabeled`` images and the tptbox MRI (MRI); the ``fewshot_ct_sag`` scans (8-bit CT, no HU), the
tptbox CT and verse014 (CT in HU, which the cord tool refuses before any model runs). ``--partial FILE`` keeps
one JSON line per image and skips the images already in it (a rerun resumes).

Run from the repository root: ``python -m benchmarks.cord_ct_refusal`` (about 10-25 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.cord_head import IXI_DIR

THREADS = 2
#: the rule's margin: every MRI below this lift
MRI_MAX_LIFT = 2.0
#: CT without Hounsfield units, the only CT that reaches the lift (HU CT is refused before any model runs)
NO_HU_GROUP = "fewshot_ct_sag"
log = logging.getLogger("benchmarks.cord_ct_refusal")


def images() -> list[tuple[str, Path]]:
    """(kind, path) of every image measured: kind "CT" or "MRI"."""
    root = Path(SHARED_DATA)
    ct = [
        *sorted((root / "fewshot_ct_sag").glob("*_img.nii.gz")),
        root / "tptbox_samples" / "tpt-ct_img.nii.gz",
        root / "verse014_ct" / "verse014_img.nii.gz",
    ]
    mri = [root / "tptbox_samples" / "tpt-mri_img.nii.gz"]
    for folder in ("sct_testing_data", "sct_tutorial_unlabeled"):
        mri += sorted((root / folder).glob("*_img.nii.gz"))
    mri += sorted((root / IXI_DIR).glob("*.nii.gz"))
    mri += sorted(root.glob("fcs_*/*_img.nii.gz"))
    return [("CT", p) for p in ct if p.exists()] + [("MRI", p) for p in mri if p.exists()]


def measure(path: Path) -> dict[str, Any]:
    """The lift of the spine reading of ``path`` (None when the spine model cannot read it) and why not."""
    from neurospine.cord.spinelevels import read_spine
    from neurospine.io import load_volume
    from neurospine.plausibility import spine as psp

    t0 = time.perf_counter()
    reading = read_spine(load_volume(path), threads=THREADS)
    row: dict[str, Any] = {"lift": None, "lift_any_bone": None, "bone_mm3": None}
    if reading.seg is not None:
        row["lift"] = round(psp.bright_bone_lift(reading.seg), 3)
        row["bone_mm3"] = round(psp.bone_mm3(reading.seg), 1)
        row["lift_any_bone"] = round(psp.bright_bone_lift(reading.seg, min_bone_mm3=0.0), 3)
    return {**row, "why_none": reading.reason, "seconds": round(time.perf_counter() - t0, 1)}


def summarise(rows: list[dict[str, Any]], threshold: float) -> tuple[dict[str, Any], str]:
    """The rule's figures and the record's markdown."""
    by_kind: dict[str, list[float]] = {"CT": [], "MRI": []}
    for r in rows:
        if r["lift"] is not None:
            by_kind[r["kind"]].append(float(r["lift"]))
    mri, ct = by_kind["MRI"], by_kind["CT"]
    summary = {
        "threshold": threshold,
        "mri_measured": len(mri),
        "mri_not_read": sum(1 for r in rows if r["kind"] == "MRI" and r["lift"] is None),
        "mri_max_lift": max(mri) if mri else None,
        "mri_at_or_above_threshold": sum(v >= threshold for v in mri),
        "ct_measured": len(ct),
        "ct_min_lift": min(ct) if ct else None,
        "ct_below_threshold": sum(v < threshold for v in ct),
    }
    from neurospine.plausibility.spine import MIN_BONE_MM3

    no_hu = [r for r in rows if r["kind"] == "CT" and r["group"] == NO_HU_GROUP]
    summary["min_bone_mm3"] = MIN_BONE_MM3
    summary["ct_no_hu"] = len(no_hu)
    summary["ct_no_hu_refused"] = sum(
        1 for r in no_hu if r["lift"] is not None and r["lift"] >= threshold and r["bone_mm3"] >= MIN_BONE_MM3
    )
    summary["mri_below_min_bone"] = sum(
        1 for r in rows if r["kind"] == "MRI" and r["bone_mm3"] is not None and r["bone_mm3"] < MIN_BONE_MM3
    )
    refused_all = summary["ct_no_hu_refused"] == len(no_hu)
    summary["rule_holds"] = bool(mri and no_hu and max(mri) < MRI_MAX_LIFT and refused_all)
    top = sorted((r for r in rows if r["kind"] == "MRI" and r["lift"] is not None), key=lambda r: -r["lift"])[:8]
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r["lift"] is not None:
            groups.setdefault(f"{r['kind']} {r['group']}", []).append(float(r["lift"]))
    md = [
        "# Bright-bone lift: CT without Hounsfield units against real MRI (cord tool)\n",
        "Rule: docs/decisions/cord-ct-refusal-bone.md. Lift of the spine reading the cord tool's level estimate makes "
        "(`plausibility.spine.bright_bone_lift`), counted only over at least "
        f"{summary['min_bone_mm3']:.0f} mm3 of labelled bone (below: 0); the cord tool refuses at or above "
        f"{threshold:g}. Images the spine model cannot read (thick axial slabs) have no lift.\n",
        f"MRI: {len(mri)} measured, highest lift **{summary['mri_max_lift']}**, "
        f"{summary['mri_at_or_above_threshold']} at or above {threshold:g} ({summary['mri_not_read']} not read "
        f"by the spine model). CT: {len(ct)} measured, lowest lift **{summary['ct_min_lift']}**, "
        f"{summary['ct_below_threshold']} below {threshold:g}. MRI with less bone than the minimum (lift 0): "
        f"{summary['mri_below_min_bone']}. Rule (every MRI < {MRI_MAX_LIFT:g}; each CT without HU, "
        f"{summary['ct_no_hu']}, with enough bone and a lift >= {threshold:g}: {summary['ct_no_hu_refused']}): "
        f"**{'holds' if summary['rule_holds'] else 'fails'}**.\n",
        "| group | n | min | median | max |",
        "|---|---|---|---|---|",
    ]
    for name, vals in sorted(groups.items()):
        vals = sorted(vals)
        md.append(f"| {name} | {len(vals)} | {vals[0]:.2f} | {vals[len(vals) // 2]:.2f} | {vals[-1]:.2f} |")
    any_top = sorted(
        (r for r in rows if r["kind"] == "MRI" and r["lift_any_bone"] is not None), key=lambda r: -r["lift_any_bone"]
    )[:8]
    head = ["| image | lift | lift without the bone minimum | bone mm3 |", "|---|---|---|---|"]

    def line(r: dict[str, Any]) -> str:
        return f"| {r['image']} | {r['lift']} | {r['lift_any_bone']} | {r['bone_mm3']} |"

    md += ["", "Highest MRI lifts:", "", *head, *(line(r) for r in top)]
    md += ["", "Highest MRI lifts without the bone minimum:", "", *head, *(line(r) for r in any_top)]
    md += ["", "CT:", "", *head, *(line(r) for r in rows if r["kind"] == "CT")]
    return summary, "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--partial", type=Path, default=None, help="JSON lines kept per image (resume)")
    ap.add_argument("--results-name", default="cord_ct_refusal")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from neurospine.plausibility.spine import BRIGHT_BONE_LIFT

    done: dict[str, dict[str, Any]] = {}
    if args.partial is not None and args.partial.exists():
        for line in args.partial.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "bone_mm3" not in row:
                raise SystemExit(f"{args.partial}: written before the bone columns existed; start a new --partial file")
            done[row["image"]] = row
    rows = []
    for kind, path in images():
        if path.name not in done:
            row = {"image": path.name, "kind": kind, "group": path.parent.name, **measure(path)}
            log.info("%s %s lift %s (%.1f s)", kind, path.name, row["lift"], row["seconds"])
            if args.partial is not None:
                with args.partial.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
            done[path.name] = row
        rows.append(done[path.name])
    summary, md = summarise(rows, BRIGHT_BONE_LIFT)
    write_results(args.results_name, {"summary": summary, "rows": rows}, threads=THREADS, markdown=md)
    log.info("%s", json.dumps(summary))


if __name__ == "__main__":
    main()
