"""Time neurospine.metrics on a 512x512x17 sagittal pair (0.59x0.59x3.3 mm).

Uses panoptica's spine example pairs from ../shared/data/label_only_refs when present, else a
synthetic pair of the same size. Run from the repository root: ``python -m benchmarks.metrics_speed``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from benchmarks.common import SHARED_DATA, peak_rss_mb, write_results

REPEATS = 3


def _synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]:
    shape = (512, 512, 17)
    ref_inst = np.zeros(shape, np.uint8)
    for i in range(8):  # eight stacked "vertebrae" with discs between
        ref_inst[150 + i * 40 : 180 + i * 40, 200:300, 4:13] = 20 + i if i < 6 else 26
        ref_inst[180 + i * 40 : 188 + i * 40, 200:300, 5:12] = 120 + i
    pred_inst = np.roll(ref_inst, 2, axis=0)
    ref_sem = np.where(ref_inst >= 100, 100, np.where(ref_inst > 0, 49, 0)).astype(np.uint8)
    pred_sem = np.roll(ref_sem, 2, axis=0)
    return pred_sem, ref_sem, pred_inst, ref_inst, (0.5859, 0.5859, 3.3)


def _load() -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float, float]]:
    root = SHARED_DATA / "label_only_refs"
    if not (root / "panoptica-semantic_ref.nii.gz").is_file():
        return ("synthetic", *_synthetic())
    import nibabel as nib

    def arr(name: str) -> np.ndarray:
        return np.asarray(cast(nib.Nifti1Image, nib.load(root / name)).dataobj)

    zooms = cast(nib.Nifti1Image, nib.load(root / "panoptica-semantic_ref.nii.gz")).header.get_zooms()[:3]
    return (
        "panoptica spine examples (label_only_refs)",
        arr("panoptica-semantic_pred.nii.gz"),
        arr("panoptica-semantic_ref.nii.gz"),
        arr("panoptica-unmatched_instance_pred.nii.gz"),
        arr("panoptica-unmatched_instance_ref.nii.gz"),
        (float(zooms[0]), float(zooms[1]), float(zooms[2])),
    )


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    runs = []
    out = None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), out


def main() -> int:
    from neurospine.metrics import dice, evaluate_arrays, evaluate_instances, surface_metrics

    source, pred_sem, ref_sem, pred_inst, ref_inst, spacing = _load()
    big = 49 if np.any(ref_sem == 49) else int(np.max(ref_sem))
    p_big, r_big = pred_sem == big, ref_sem == big
    fg_p, fg_r = pred_sem > 0, ref_sem > 0
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("dice, binary foreground", lambda: dice(fg_p, fg_r)),
        (f"ASSD+HD95+HD, label {big} (largest structure)", lambda: surface_metrics(p_big, r_big, spacing)),
        ("ASSD+HD95+HD, binary foreground", lambda: surface_metrics(fg_p, fg_r, spacing)),
        (
            "semantic evaluation, every label (Dice+distances)",
            lambda: evaluate_arrays(pred_sem, ref_sem, spacing, mode="semantic"),
        ),
        (
            "PQ/SQ/RQ only (IoU matching, no distances)",
            lambda: evaluate_instances(pred_inst, ref_inst, spacing, distances=False),
        ),
        ("PQ + per-instance Dice/ASSD/HD95", lambda: evaluate_instances(pred_inst, ref_inst, spacing)),
        (
            "instance evaluation with groups (CLI path)",
            lambda: evaluate_arrays(pred_inst, ref_inst, spacing, mode="instance"),
        ),
    ]
    results = []
    for name, fn in cases:
        seconds, _ = _time(fn)
        results.append({"case": name, "median_s": round(seconds, 4)})
    payload = {
        "data": source,
        "shape": list(ref_sem.shape),
        "spacing_mm": list(spacing),
        "repeats": REPEATS,
        "results": results,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    lines = [
        f"# metrics speed\n\n{source}, shape {tuple(ref_sem.shape)}, spacing {tuple(round(s, 4) for s in spacing)} mm, "
        f"median of {REPEATS} runs, 1 process.\n",
        "| case | median s |",
        "| --- | ---: |",
        *(f"| {r['case']} | {r['median_s']:.3f} |" for r in results),
        f"\npeak RSS {payload['peak_rss_mb']} MB; machine load average {payload['load_average_1min']} "
        f"on {os.cpu_count()} cores while measuring (the machine is shared)\n",
    ]
    path = write_results("metrics_speed", payload, threads=1, markdown="\n".join(lines))
    print("\n".join(lines))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
