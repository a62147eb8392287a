"""``info`` task: facts about one image, with no model (fast; checks a cohort before the real pipelines).

Measures: grid, spacing, field-of-view volume, robust intensity range and the volume of the Otsu
foreground. Outputs: the foreground mask (on the input grid) and a mid-sagittal snapshot PNG.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.io import Volume, load_volume, reorient, save_like
from neurospine.plausibility.common import otsu_threshold
from neurospine.results import TaskResult

TASK = "info"


def snapshot_png(vol: Volume, mask: npt.NDArray[np.bool_] | None, path: Path) -> Path:
    """Mid-sagittal slice (RAS grid, superior up, anterior right), mask outline in red."""
    from PIL import Image

    from neurospine.io import save as io_save

    ras, _ = reorient(vol, "RAS")
    x = ras.shape[0] // 2
    sl = np.asarray(ras.data[x], dtype=np.float32).T[::-1]  # rows: S->I, cols: P->A
    lo, hi = np.percentile(sl, [1, 99]) if sl.size else (0.0, 1.0)
    grey = np.clip((sl - lo) / max(float(hi - lo), 1e-6), 0, 1)
    rgb = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)
    if mask is not None:
        mras = reorient(vol.with_data(mask.astype(np.uint8)), "RAS")[0].data[x].T[::-1] > 0
        edge = mras & ~(np.roll(mras, 1, 0) & np.roll(mras, -1, 0) & np.roll(mras, 1, 1) & np.roll(mras, -1, 1))
        rgb[edge] = (230, 40, 40)
    sp = ras.spacing_mm
    img = Image.fromarray(rgb)
    # square pixels in mm so anisotropic scans are not squashed
    h_mm, w_mm = sl.shape[0] * sp[2], sl.shape[1] * sp[1]
    scale = 256.0 / max(h_mm, w_mm)
    img = img.resize((max(1, round(w_mm * scale)), max(1, round(h_mm * scale))), Image.Resampling.BILINEAR)
    with io_save.atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path


def run_file(image_path: Path, out_dir: Path, *, threads: int = 1, snapshot: bool = True, **options: Any) -> TaskResult:
    """Measure ``image_path``; write ``<stem>_fgmask.nii.gz`` and ``<stem>_snapshot.png`` into ``out_dir``."""
    t0 = time.perf_counter()
    vol = load_volume(image_path)
    t_load = time.perf_counter() - t0
    data = np.asarray(vol.data, dtype=np.float32)
    p01, p50, p99 = (float(v) for v in np.percentile(data, [1, 50, 99]))
    thr = otsu_threshold(np.clip(data, p01, p99).ravel())
    mask = data > thr
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {
        "foreground_mask": save_like(mask.astype(np.uint8), vol, out_dir / f"{vol.name}_fgmask.nii.gz")
    }
    if snapshot:
        outputs["snapshot"] = snapshot_png(vol, mask, out_dir / f"{vol.name}_snapshot.png")
    sx, sy, sz = vol.spacing_mm
    nx, ny, nz = vol.shape
    measures: dict[str, float | int | str | None] = {
        "shape_x_vox": nx,
        "shape_y_vox": ny,
        "shape_z_vox": nz,
        "spacing_x_mm": sx,
        "spacing_y_mm": sy,
        "spacing_z_mm": sz,
        "plane": vol.plane,
        "fov_volume_mm3": float(data.size * vol.voxel_volume_mm3),
        "intensity_p01": p01,
        "intensity_p50": p50,
        "intensity_p99": p99,
        "foreground_volume_mm3": float(mask.sum() * vol.voxel_volume_mm3),
        "foreground_fraction": float(mask.mean()),
    }
    return TaskResult(
        task=TASK,
        input_path=str(image_path),
        outputs=outputs,
        measures=measures,
        models={},
        timings_s={"load_s": t_load, "total_s": time.perf_counter() - t0},
    )
