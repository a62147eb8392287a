"""``selftest`` task (hidden): the ``info`` task plus failures and delays on demand, for testing the batch layer.

Options (all optional): ``sleep_s`` (seconds to wait before writing outputs, written in several steps so
a kill can land mid-case), ``fail_on`` (raise ``RuntimeError`` when the file name contains this text),
``exit_on`` (``os._exit`` the worker process: a crash), ``model_card`` (report that model card's
installed version, to test model-version tracking).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from neurospine.batch import info_task
from neurospine.io import stem_of
from neurospine.results import TaskResult

TASK = "selftest"


def run_file(
    image_path: Path,
    out_dir: Path,
    *,
    threads: int = 1,
    sleep_s: float = 0.0,
    fail_on: str | None = None,
    exit_on: str | None = None,
    model_card: str | None = None,
    **options: Any,
) -> TaskResult:
    name = Path(image_path).name
    if exit_on and exit_on in name:
        os._exit(17)
    if fail_on and fail_on in name:
        raise RuntimeError(f"injected failure for {name}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = 4
    stem = stem_of(image_path)
    partial = [out_dir / f"{stem}_step-{i}_partial.json" for i in range(steps)]
    for i, path in enumerate(partial):  # partial files appear over time, like a real pipeline writing as it goes
        path.write_text(f'{{"step": {i}}}\n', encoding="utf-8")
        time.sleep(float(sleep_s) / steps)
    res = info_task.run_file(image_path, out_dir, threads=threads, **options)
    models: dict[str, str] = {}
    if model_card:
        from neurospine.models import load_card

        models[model_card] = load_card(model_card).version
    outputs = dict(res.outputs)
    outputs.update({f"partial_{i}": path for i, path in enumerate(partial)})
    return TaskResult(
        task=TASK,
        input_path=res.input_path,
        outputs=outputs,
        measures=res.measures,
        models=models,
        timings_s=res.timings_s,
    )
