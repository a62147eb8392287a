"""Does L5 stop taking the sacrum's arch? L5 / L4 volumes with and without the sacrum in the posterior assignment.

Rule: docs/decisions/spine-sacral-arch.md. On the 17 held-out lumbar scans (VB2 and VB3 test splits, the IVD test
split, all of VB1), the spine pipeline runs twice: as shipped, and with the instance phase's sacrum left out of
the geodesic assignment of posterior elements (``build_instances(sacral_arch=False)``, the code before the
change). Per scan: L5 / L4 whole-vertebra volume (the vertebra's own id, the ``volume_mm3`` of ``_spine.csv``),
L5 / L4 posterior-element volume (classes 41-48 of each vertebra), the sacrum's volume and the level names.

Real whole-vertebra label maps here give L5 / L4 = 0.97 (verse004), 1.04 (verse014), 1.01 (ts-ct, model labels)
and 1.02 (panoptica reference, SPINEPS labels).

Run from the repository root: ``python -m benchmarks.spine_sacral_arch`` (about 8 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.cord_lumbar import SETS
from neurospine.io import Volume

THREADS = 2
L4, L5, SACRUM = 23, 24, 26
POSTERIOR_VALUES = tuple(range(41, 49))
log = logging.getLogger("benchmarks.spine_sacral_arch")


def cases() -> Iterator[tuple[str, Volume]]:
    """(name, image) of the held-out lumbar scans (``spine.data.eval_cases``, one set loaded at a time)."""
    from neurospine.spine.data import eval_cases

    for which in SETS:
        for case in eval_cases(Path(SHARED_DATA), which):
            yield case.name, case.image


def measure(vol: Volume, *, sacral_arch: bool) -> dict[str, Any]:
    """Volumes (mm3) and names of one pipeline run."""
    import neurospine.spine.api as api
    from neurospine.spine.instances import build_instances

    t0 = time.perf_counter()

    def instances(*args: Any, **kwargs: Any) -> Any:  # the pipeline passes sacral_arch itself: override it
        return build_instances(*args, **{**kwargs, "sacral_arch": sacral_arch})

    with mock.patch.object(api, "build_instances", instances):
        seg = api.segment(vol, threads=THREADS)
    seconds = time.perf_counter() - t0
    vert = np.asarray(seg.seg_vert_input)
    sem = np.asarray(seg.semantic_input)
    post = np.isin(sem, POSTERIOR_VALUES)
    mm3 = vol.voxel_volume_mm3

    def whole(level: int) -> float:
        return float(np.count_nonzero(vert == level)) * mm3

    def posterior(level: int) -> float:
        return float(np.count_nonzero((vert == level) & post)) * mm3

    return {
        "names": sorted(str(v) for v in seg.names.values()),
        "l4_mm3": whole(L4),
        "l5_mm3": whole(L5),
        "l4_posterior_mm3": posterior(L4),
        "l5_posterior_mm3": posterior(L5),
        "sacrum_mm3": whole(SACRUM),
        "sacrum_class_mm3": float(np.count_nonzero(sem == SACRUM)) * mm3,
        "seconds": round(seconds, 2),
    }


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if a > 0 and b > 0 else None


def summarise(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The rule's figures and the record's markdown."""
    per: dict[str, dict[str, list[float]]] = {"before": {"whole": [], "post": []}, "after": {"whole": [], "post": []}}
    table = []
    for r in rows:
        cells = [r["case"]]
        for when in ("before", "after"):
            m = r[when]
            w, p = ratio(m["l5_mm3"], m["l4_mm3"]), ratio(m["l5_posterior_mm3"], m["l4_posterior_mm3"])
            if w is not None and p is not None:
                per[when]["whole"].append(w)
                per[when]["post"].append(p)
            cells += [str(w), str(p), f"{m['sacrum_mm3']:.0f}"]
        cells.append("same" if r["before"]["names"] == r["after"]["names"] else "CHANGED")
        table.append("| " + " | ".join(cells) + " |")
    med = {when: statistics.median(v["whole"]) if v["whole"] else None for when, v in per.items()}
    summary: dict[str, Any] = {
        "scans": len(rows),
        "median_l5_l4_whole_before": med["before"],
        "median_l5_l4_whole_after": med["after"],
        "min_l5_l4_whole_after": min(per["after"]["whole"], default=None),
        "min_l5_l4_posterior_after": min(per["after"]["post"], default=None),
        "names_changed": [r["case"] for r in rows if r["before"]["names"] != r["after"]["names"]],
        "median_seconds_after": statistics.median(r["after"]["seconds"] for r in rows) if rows else None,
    }
    b, a = summary["median_l5_l4_whole_before"], summary["median_l5_l4_whole_after"]
    summary["rule_1_2_3_names_hold"] = bool(
        b is not None
        and a is not None
        and b - a >= 0.10
        and a >= 0.90
        and summary["min_l5_l4_whole_after"] >= 0.85
        and summary["min_l5_l4_posterior_after"] >= 0.70
        and not summary["names_changed"]
    )
    md = [
        "# The sacrum's arch: L5 / L4 volumes before and after the sacrum joins the posterior assignment\n",
        "Rule: `docs/decisions/spine-sacral-arch.md`. Held-out lumbar scans; whole = the vertebra's own id "
        "(`volume_mm3` of `_spine.csv`), posterior = its classes 41-48. Real whole-vertebra label maps: L5 / L4 "
        "0.97-1.04.\n",
        f"Median L5 / L4 whole volume: before **{b}**, after **{a}** (lowest after "
        f"{summary['min_l5_l4_whole_after']}); lowest L5 / L4 posterior after "
        f"{summary['min_l5_l4_posterior_after']}; names changed on {len(summary['names_changed'])} scans "
        f"{summary['names_changed']}. Conditions 1-3 of the rule (names part): "
        f"**{'hold' if summary['rule_1_2_3_names_hold'] else 'fail'}**.\n",
        "| case | whole before | posterior before | sacrum mm3 before | whole after | posterior after | sacrum mm3 "
        "after | names |",
        "|---|---|---|---|---|---|---|---|",
        *table,
    ]
    return summary, "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-name", default="spine_sacral_arch")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for name, vol in cases():
        row: dict[str, Any] = {
            "case": name,
            "before": measure(vol, sacral_arch=False),
            "after": measure(vol, sacral_arch=True),
        }
        log.info("%s %s", name, json.dumps({k: v for k, v in row["after"].items() if k != "names"}))
        rows.append(row)
    summary, md = summarise(rows)
    write_results(args.results_name, {"summary": summary, "rows": rows}, threads=THREADS, markdown=md)
    log.info("%s", json.dumps(summary))


if __name__ == "__main__":
    main()
