"""Throughput of the synthetic spine engine (samples per second per core), single-threaded.

Run: ``python -m benchmarks.synth_throughput [--n 20]`` from the repository root. CPU time
(``time.process_time``) is the per-core figure; wall time is also recorded because the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from benchmarks.common import SHARED_DATA, peak_rss_mb, write_results


def _measure(fn: Callable[[int], Any], n: int) -> dict[str, float]:
    fn(10_000)  # warm-up (imports, caches)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(n):
        fn(i)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {
        "n": n,
        "cpu_s_per_sample": round(cpu / n, 4),
        "wall_s_per_sample": round(wall / n, 4),
        "samples_per_s_per_core": round(n / cpu, 2),
    }


def main(argv: list[str] | None = None) -> int:
    from neurospine.synth import SynthConfig, generate_case, generate_slice2d

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20, help="samples per configuration")
    args = ap.parse_args(argv)
    n = args.n
    configs: dict[str, SynthConfig] = {
        "3d_iso1mm_64x160x200_random_levels_any_contrast": SynthConfig(
            levels="random", contrast="any", fov_mm=(64.0, 160.0, 200.0)
        ),
        "3d_iso1mm_64x160x200_lumbar_t2w": SynthConfig(levels="L1-S1", contrast="t2w", fov_mm=(64.0, 160.0, 200.0)),
        "3d_sagittal_0.8x0.8x4mm_fov64x160x200": SynthConfig(
            levels="random", contrast="any", plane="sagittal", spacing_mm=(0.8, 0.8, 4.0), fov_mm=(64.0, 160.0, 200.0)
        ),
        "3d_axial_0.6x0.6x5mm_cervical_fov100x100x60": SynthConfig(
            levels="C3-C6", contrast="t2sw", plane="axial", spacing_mm=(0.6, 0.6, 5.0), fov_mm=(100.0, 100.0, 60.0)
        ),
    }
    results: dict[str, Any] = {}
    for name, cfg in configs.items():
        results[name] = _measure(partial(generate_case, config=cfg), n)
        results[name]["shape"] = list(generate_case(0, cfg).image.shape)
    for mod in ("mr", "ct", "xray"):
        results[f"slice2d_{mod}"] = _measure(partial(generate_slice2d, modality=mod), max(4, n // 2))
    tpt = SHARED_DATA / "tptbox_samples" / "tpt-mri_subreg.nii.gz"
    if tpt.exists():
        from neurospine.io import load_volume
        from neurospine.synth.augment import augment_labelmap, image_from_labels

        vol = load_volume(tpt)
        results["augment_labelmap_tptbox_mri_68x52x67"] = _measure(lambda s: augment_labelmap(vol, s), n)
        results["image_from_labels_tptbox_mri"] = _measure(lambda s: image_from_labels(vol, s), n)
    payload = {"results": results, "peak_rss_mb": round(peak_rss_mb(), 1)}
    lines = ["| configuration | shape | CPU s/sample | wall s/sample | samples/s/core |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r.get('shape', '')} | {r['cpu_s_per_sample']} | {r['wall_s_per_sample']} |"
            f" {r['samples_per_s_per_core']} |"
        )
    md = (
        "# Synthetic engine throughput (1 thread)\n\n"
        + "\n".join(lines)
        + f"\n\nPeak RSS {payload['peak_rss_mb']} MB.\n"
    )
    path = write_results("synth_throughput", payload, threads=1, markdown=md)
    print(md)
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
