"""`neurospine cord` on head T1w MRI: is its cord the one below the brain? (docs/decisions/cord-min-length.md)

A head MRI shows the upper cervical cord at the bottom of its field, and a user may measure it there. The IXI
T1w scans (2 mm isotropic; the cord model never trained on them) have no cord masks, but a cord has to be near
the head's midline and low in the field. A scan's cord is **misplaced** when its centroid lies more than
``MIDLINE_MM`` left or right of the middle of the head (the centre, along left-right, of the voxels above the
image's Otsu threshold) or when its lowest voxel lies in the upper half of the field (head to foot). Refused
scans ("no spinal cord found") are counted apart.

The 25 scans looked at while the rule was written (every fifth by name) are reported apart from the other 96,
which alone enter the rule. Each scan's level names (the ``level`` column of ``_csa.csv``) are reported too: a
head MRI shows the upper cervical spine only, so a name outside C1-C7 is wrong (docs/decisions/cord-head-levels.md).
``--from-runs DIR`` scores the outputs of an earlier run (``DIR/<stem>/``, each with
``status.json``, as ``--keep-runs DIR`` writes them) instead of running the tool, which is how the figures of the
code before the change were kept.

Run from the repository root: ``python -m benchmarks.cord_head`` (about 10 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.cord_lumbar import superior_mm

THREADS = 2
#: a cord whose centroid is farther than this from the head's left-right middle is misplaced (the rule's 15 mm)
MIDLINE_MM = 15.0
IXI_DIR = "ixi_t1_2mm/t1"
log = logging.getLogger("benchmarks.cord_head")


def misplaced(
    image: npt.NDArray[np.floating], cord: npt.NDArray[np.bool_], affine: npt.NDArray[np.float64]
) -> dict[str, Any]:
    """Where the cord lies relative to the head: left-right offset of its centroid from the head's middle (as
    ``neurospine.cord.headmidline`` measures it), and whether its lowest voxel is in the upper half of the field
    (world superior coordinate)."""
    from neurospine.cord.headmidline import head_middle_mm
    from neurospine.io import Volume, reorient

    vol = Volume(np.asarray(image, dtype=np.float32), affine)
    middle_mm, spacing = head_middle_mm(vol)
    cord_ras = np.asarray(reorient(vol.with_data(np.asarray(cord, dtype=np.uint8)), "RAS")[0].data) > 0
    offset = abs(float(np.argwhere(cord_ras)[:, 0].mean()) * spacing - middle_mm)
    corners = np.array(
        [[i, j, k] for i in (0, image.shape[0] - 1) for j in (0, image.shape[1] - 1) for k in (0, image.shape[2] - 1)]
    )
    z_field = corners @ affine[2, :3] + affine[2, 3]
    z_mid = 0.5 * (float(z_field.min()) + float(z_field.max()))
    high = float(superior_mm(cord, affine).min()) > z_mid
    return {"lr_offset_mm": round(offset, 1), "lowest_in_upper_half": high, "misplaced": offset > MIDLINE_MM or high}


def score(image_path: Path, run_dir: Path, status: dict[str, Any]) -> dict[str, Any]:
    from neurospine.cord.api import output_paths
    from neurospine.io import load_volume

    row: dict[str, Any] = {"scan": image_path.name.split(".")[0], "refused": not status["ok"]}
    if not status["ok"]:
        row["error"] = str(status.get("error", ""))[:160]
        return row
    stem = image_path.name.split(".")[0]
    img = load_volume(image_path)
    cord = np.asarray(load_volume(output_paths(stem, run_dir)["cord_mask"], check_intensity=False).data) > 0
    row.update(misplaced(np.asarray(img.data, dtype=np.float32), cord, np.asarray(img.affine, dtype=np.float64)))
    row["cord_mm3"] = round(float(cord.sum()) * img.voxel_volume_mm3, 1)
    row.update(level_names(output_paths(stem, run_dir)["csa"]))
    return row


def level_names(csa_csv: Path) -> dict[str, Any]:
    """The level names of a ``_csa.csv`` (cranial first), how many slices are named, and whether any name lies
    outside C1-C7 (wrong on a head MRI)."""
    from neurospine.labels import CRANIOCAUDAL_ORDER, VERTEBRA_IDS

    with Path(csa_csv).open(encoding="utf-8") as fh:
        names = [r["level"] for r in csv.DictReader(fh)]
    rank = {v: i for i, v in enumerate(CRANIOCAUDAL_ORDER)}
    seen = sorted({n for n in names if n}, key=lambda n: rank.get(VERTEBRA_IDS.get(n, 0), 999))
    return {
        "levels": " ".join(seen),
        "slices_named": sum(bool(n) for n in names),
        "non_cervical_names": any(not (len(n) == 2 and n[0] == "C" and n[1] in "1234567") for n in seen),
    }


def run_tool(image_path: Path, out: Path) -> dict[str, Any]:
    from neurospine.cord.api import run_file
    from neurospine.errors import NeuroSpineError

    try:
        run_file(image_path, out, threads=THREADS)
        return {"ok": True}
    except NeuroSpineError as e:
        return {"ok": False, "error": str(e)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    ap.add_argument("--from-runs", type=Path, default=None, help="score the outputs of an earlier run instead")
    ap.add_argument(
        "--keep-runs", type=Path, default=None, help="write the tool's outputs and status.json here (for --from-runs)"
    )
    ap.add_argument("--results-name", default="cord_head")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = sorted((args.data / IXI_DIR).glob("*.nii.gz"))
    design = {f.name for f in files[::5]}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            stem = f.name.split(".")[0]
            if args.from_runs is not None:
                run_dir = args.from_runs / stem
                status = json.loads((run_dir / "status.json").read_text())
            else:
                run_dir = (args.keep_runs or Path(tmp)) / stem
                status = run_tool(f, run_dir)
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "status.json").write_text(json.dumps(status), encoding="utf-8")
            row = score(f, run_dir, status)
            row["design"] = f.name in design
            rows.append(row)
            log.info("%s", row)

    def summary(group: list[dict[str, Any]]) -> dict[str, int]:
        return {
            "scans": len(group),
            "refused": sum(bool(r["refused"]) for r in group),
            "misplaced": sum(bool(r.get("misplaced")) for r in group),
            "non_cervical_names": sum(bool(r.get("non_cervical_names")) for r in group),
            "named": sum(bool(r.get("levels")) for r in group),
        }

    result: dict[str, Any] = {
        "rule_set": summary([r for r in rows if not r["design"]]),
        "design_set": summary([r for r in rows if r["design"]]),
        "source": "earlier run " + str(args.from_runs) if args.from_runs else "this run",
    }
    md = [
        "# `neurospine cord` on head T1w MRI (IXI): the cord below the brain, or something else?\n",
        f"Misplaced: centroid more than {MIDLINE_MM:.0f} mm from the head's left-right middle, or lowest voxel in the "
        "upper half of the field. Rules: `docs/decisions/cord-min-length.md`, `cord-head-midline.md`; level names: "
        "`cord-head-levels.md`.\n",
        "| scans | n | refused (no spinal cord found) | misplaced | with level names | named outside C1-C7 |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in (("rule_set", "96 not looked at while writing the rule"), ("design_set", "25 looked at")):
        s = result[key]
        md.append(
            f"| {label} | {s['scans']} | {s['refused']} | {s['misplaced']} | {s['named']} | {s['non_cervical_names']} |"
        )
    names: dict[str, int] = {}
    for r in rows:
        names[r.get("levels") or "(none)"] = names.get(r.get("levels") or "(none)", 0) + 1
    md += ["", "| level names | scans |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in sorted(names.items(), key=lambda kv: -kv[1])]
    md += [
        "",
        "| scan | set | refused | misplaced | left-right offset (mm) | lowest voxel in upper half | cord mm3 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["refused"] or r.get("misplaced"):
            md.append(
                f"| {r['scan']} | {'design' if r['design'] else 'rule'} | {'yes' if r['refused'] else 'no'} "
                f"| {'yes' if r.get('misplaced') else 'no'} | {r.get('lr_offset_mm', '-')} "
                f"| {r.get('lowest_in_upper_half', '-')} | {r.get('cord_mm3', '-')} |"
            )
    md.append("\n(Only scans refused or misplaced are listed; every scan is in the JSON record.)")
    write_results(args.results_name, {**result, "rows": rows}, threads=THREADS, markdown="\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
