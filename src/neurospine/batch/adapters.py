"""Task adapters for pipelines whose package has no ``run_file`` yet.

``brainage_t1`` uses ``neurospine.brainage.api.run_file`` when that exists, else wraps the file-level
``predict_t1_files`` of the same package into the batch task signature.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from neurospine.results import TaskResult

T1_MODEL = "brainage_t1"


def _installed_version(name: str) -> str:
    from neurospine.models import load_card

    return load_card(name).version


def brainage_t1(image_path: Path, out_dir: Path, *, threads: int = 1, **options: Any) -> TaskResult:
    """Brain age of one raw T1w image: ``<stem>_brainage.csv`` plus measures in years."""
    from neurospine.brainage import api

    native = getattr(api, "run_file", None)
    if callable(native):
        result: TaskResult = native(image_path, out_dir, threads=threads, **options)
        return result
    from neurospine.io import stem_of

    t0 = time.perf_counter()
    out = Path(out_dir) / f"{stem_of(image_path)}_brainage.csv"
    rows = api.predict_t1_files([image_path], out=out, threads=threads, passes=int(options.get("passes", 50)))
    row = rows[0]
    measures: dict[str, float | int | str | None] = {
        "brain_age_years": float(row["age_pred"]),
        "brain_age_sd_years": float(row["sd"]),
        "brain_age_lo95_years": float(row["lo95"]),
        "brain_age_hi95_years": float(row["hi95"]),
    }
    return TaskResult(
        task="brainage-t1",
        input_path=str(image_path),
        outputs={"table": out},
        measures=measures,
        models={T1_MODEL: _installed_version(T1_MODEL)},
        timings_s={"total_s": time.perf_counter() - t0},
    )
