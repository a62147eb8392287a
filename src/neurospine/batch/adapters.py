"""Task adapters for pipelines whose package has no ``run_file``: ``brainage_t1`` wraps the T1 CNN."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from neurospine.results import TaskResult

T1_MODEL = "brainage_t1"


def _installed_version(name: str) -> str:
    from neurospine.models import load_card

    return load_card(name).version


def mid_slices_png(vol: Any, path: Path, size_px: int = 220) -> Path:
    """The three orthogonal mid-slices (sagittal, coronal, axial; RAS, superior/anterior up) side by side."""
    import numpy as np
    from PIL import Image

    from neurospine.io import reorient
    from neurospine.io import save as io_save

    ras, _ = reorient(vol, "RAS")
    data = np.asarray(ras.data, dtype=np.float32)
    sx, sy, sz = ras.spacing_mm
    nx, ny, nz = ras.shape
    views = [
        (data[nx // 2].T[::-1], sz, sy),  # sagittal: rows S->I, columns P->A
        (data[:, ny // 2].T[::-1], sz, sx),  # coronal: rows S->I, columns L->R (neurological)
        (data[:, :, nz // 2].T[::-1], sy, sx),  # axial: rows A->P, columns L->R (neurological)
    ]
    lo, hi = (float(v) for v in np.percentile(data, [1, 99.5]))
    tiles = []
    for sl, row_mm, col_mm in views:
        grey = (np.clip((sl - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
        h_mm, w_mm = sl.shape[0] * row_mm, sl.shape[1] * col_mm
        scale = size_px / max(h_mm, w_mm)
        tile = Image.fromarray(grey).resize(
            (max(1, round(w_mm * scale)), max(1, round(h_mm * scale))), Image.Resampling.BILINEAR
        )
        tiles.append(tile)
    canvas = Image.new("L", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)))
    x = 0
    for t in tiles:
        canvas.paste(t, (x, (canvas.height - t.height) // 2))
        x += t.width + 8
    with io_save.atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def brainage_t1(image_path: Path, out_dir: Path, *, threads: int = 1, **options: Any) -> TaskResult:
    """Brain age of one raw T1w image: ``<stem>_brainage.csv``, the T1 mid-slices ``<stem>_brainage_snp.png``
    and measures in years. Option ``age`` (years; batch fills it from ``participants.tsv``) adds the
    brain-age gap (predicted - chronological) and its z-score."""
    from neurospine.brainage import api
    from neurospine.brainage.t1_model import predict_t1
    from neurospine.io import load_volume, stem_of

    t0 = time.perf_counter()
    stem = stem_of(image_path)
    out = Path(out_dir) / f"{stem}_brainage.csv"
    age = options.get("age")
    ages = None if age is None else {stem: float(age)}
    rows = predict_t1([image_path], ages=ages, threads=threads, passes=int(options.get("passes", 50)))
    api.write_rows(out, rows, api.T1_COLUMNS)
    row = rows[0]
    measures: dict[str, float | int | str | None] = {
        "brain_age_years": float(row["age_pred"]),
        "brain_age_sd_years": float(row["sd"]),
        "brain_age_lo95_years": float(row["lo95"]),
        "brain_age_hi95_years": float(row["hi95"]),
    }
    if "gap" in row:
        measures["age_years"] = float(row["age"])
        measures["brain_age_gap_years"] = float(row["gap"])
        measures["brain_age_gap_z"] = float(row["gap_z"])
    outputs = {"table": out}
    if options.get("snapshot", True):
        outputs["snapshot"] = mid_slices_png(load_volume(image_path), Path(out_dir) / f"{stem}_brainage_snp.png")
    return TaskResult(
        task="brainage-t1",
        input_path=str(image_path),
        outputs=outputs,
        measures=measures,
        models={T1_MODEL: _installed_version(T1_MODEL)},
        timings_s={"total_s": time.perf_counter() - t0},
    )
