"""How often is a vertebra cut by the field of view? The ``field_edge`` columns of ``_spine.csv`` on real scans.

For each real spine MRI with labels here (the 17 held-out lumbar scans, the sct tutorial lumbar T2w and the
tptbox MRI), the spine pipeline runs as ``neurospine spine`` does and every vertebra and sacrum row is counted:
whole structure at the image's edge (``field_edge``), vertebral body at the edge (``body_field_edge``), by side.
No reference is needed: the edge is a fact of the image grid. The record lists every scan's rows so that a
reader can see which volumes in ``_spine.csv`` are partial.

Run from the repository root: ``python -m benchmarks.spine_field_edge`` (about 3 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.spine_sacral_arch import cases
from neurospine.io import Volume

THREADS = 2
log = logging.getLogger("benchmarks.spine_field_edge")


def scans() -> Iterator[tuple[str, Volume]]:
    """(name, image): the held-out lumbar scans, then the sct tutorial lumbar T2w and the tptbox MRI."""
    from neurospine.io import load_volume

    yield from cases()
    root = Path(SHARED_DATA)
    for name, path in (
        ("tut-t2lumbar", root / "sct_tutorial_unlabeled" / "tut-t2lumbar_img.nii.gz"),
        ("tpt-mri", root / "tptbox_samples" / "tpt-mri_img.nii.gz"),
    ):
        if path.exists():
            yield name, load_volume(path)


def measure(vol: Volume) -> list[dict[str, Any]]:
    """Vertebra and sacrum rows of one scan: level, whole and body volume, the sides each reaches."""
    import neurospine.spine.api as api
    import neurospine.spine.outputs as O

    seg = api.segment(vol, threads=THREADS)
    rows = O.structure_rows(seg.seg_vert_input, seg.semantic_input, vol, seg.body_input)
    return [
        {
            "level": r.level,
            "kind": r.kind,
            "volume_mm3": round(r.volume_mm3, 1),
            "body_volume_mm3": None if r.body_volume_mm3 is None else round(r.body_volume_mm3, 1),
            "field_edge": r.field_edge,
            "body_field_edge": r.body_field_edge,
        }
        for r in rows
        if r.kind in ("vertebra", "sacrum")
    ]


def markdown(per_scan: dict[str, list[dict[str, Any]]], shape: dict[str, list[int]]) -> str:
    vert = [r for rows in per_scan.values() for r in rows if r["kind"] == "vertebra"]
    sides: Counter[str] = Counter(s for r in vert for s in r["field_edge"].split(";") if s)
    body_sides: Counter[str] = Counter(s for r in vert for s in r["body_field_edge"].split(";") if s)
    cut = sum(bool(r["field_edge"]) for r in vert)
    body_cut = sum(bool(r["body_field_edge"]) for r in vert)
    lines = [
        "# Vertebrae cut by the field of view (`field_edge`, `body_field_edge` of `_spine.csv`)\n",
        f"{len(per_scan)} real scans, {len(vert)} vertebrae. Whole vertebra at the image's edge: **{cut}** "
        f"({cut / max(len(vert), 1):.0%}); vertebral body at the edge: **{body_cut}** "
        f"({body_cut / max(len(vert), 1):.0%}).\n",
        f"Sides, whole vertebra: {dict(sides)}; vertebral body: {dict(body_sides)}.\n",
        "Where `field_edge` is set, `volume_mm3` (whole vertebra, endplates included in the test) is partial; where "
        "only `body_field_edge` is empty, `body_volume_mm3` is complete.\n",
        "| scan | shape | vertebra: whole edge / body edge / volume cm3 |",
        "|---|---|---|",
    ]
    for name, rows in per_scan.items():
        cells = " ".join(
            f"{r['level']}:{r['field_edge'] or '-'}/{r['body_field_edge'] or '-'}/{r['volume_mm3'] / 1000:.0f}"
            for r in rows
        )
        lines.append(f"| {name} | {shape[name]} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-name", default="spine_field_edge")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    per_scan: dict[str, list[dict[str, Any]]] = {}
    shape: dict[str, list[int]] = {}
    for name, vol in scans():
        per_scan[name] = measure(vol)
        shape[name] = list(vol.shape)
        log.info("%s %s", name, [(r["level"], r["field_edge"], r["body_field_edge"]) for r in per_scan[name]])
    write_results(
        args.results_name, {"scans": per_scan, "shapes": shape}, threads=THREADS, markdown=markdown(per_scan, shape)
    )


if __name__ == "__main__":
    main()
