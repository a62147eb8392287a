"""Sub-regions derived from whole-vertebra maps (``synth.subregions``) against SPINEPS references, and speed.

Run: ``python -m benchmarks.subregions``. Writes ``benchmarks/results/subregions.{json,md}``.

- ``tpt-ct``: the TPTBox CT sample (whole vertebrae 21-23 and a manual-style sub-region map on the same grid;
  49 corpus border and 50 corpus both count as body). The rules' thresholds were set looking at this case.
- Hold-out cases, never used to set a threshold: the TPTBox cervical MRI (C5-C7) and the panoptica sagittal
  lumbar MRI reference (0.59 x 0.59 x 3.3 mm). Their instance maps carry endplates (200+X) separately; each
  endplate voxel is given to the nearest vertebra, discs (100+X) are dropped, then the whole-vertebra map
  goes through ``derive_subregions``. Their references also hold canal, cord and discs.
- Speed: the two VerSe CT maps (no reference), minimum of three runs, wall and CPU seconds, one thread.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from benchmarks.common import SHARED_DATA, write_results
from neurospine.io import Volume, load_volume
from neurospine.synth.subregions import derive_subregions

log = logging.getLogger(__name__)

STRUCTURES: dict[str, tuple[int, ...]] = {
    "body": (49,),
    "arcus": (41,),
    "spinous": (42,),
    "costal_L": (43,),
    "costal_R": (44,),
    "sup_articular_L": (45,),
    "sup_articular_R": (46,),
    "inf_articular_L": (47,),
    "inf_articular_R": (48,),
    "canal+cord": (60, 61),
    "cord": (60,),
    "disc": (100,),
}
POSTERIOR: tuple[str, ...] = ("arcus", "spinous", "costal_L", "costal_R", "sup_articular_L", "sup_articular_R")
POSTERIOR += ("inf_articular_L", "inf_articular_R")


def _whole_vertebrae(vol: Volume) -> Volume:
    """Instance map -> whole-vertebra ids: endplate voxels (200+X) to the nearest vertebra, discs dropped."""
    d = np.asarray(vol.data).astype(np.int16)
    endplate = (d > 200) & (d < 300)
    d[d >= 100] = 0
    if endplate.any():
        _, idx = ndimage.distance_transform_edt(d == 0, sampling=vol.spacing_mm, return_indices=True)
        d[endplate] = d[idx[0][endplate], idx[1][endplate], idx[2][endplate]]
    return vol.with_data(d)


def _reference(path: Path) -> npt.NDArray[np.int64]:
    ref = np.asarray(load_volume(path, check_intensity=False).data).astype(np.int64)
    ref[np.isin(ref, (50, 52, 53, 62))] = 49  # corpus, its border and endplates are all body
    return ref


def _dice(out: npt.NDArray[np.uint8], ref: npt.NDArray[np.int64], values: tuple[int, ...]) -> float | None:
    a, b = np.isin(out, values), np.isin(ref, values)
    total = int(a.sum() + b.sum())
    if not b.any():
        return None
    return round(float(2 * (a & b).sum() / total), 3)


def _score(
    out: npt.NDArray[np.uint8], ref: npt.NDArray[np.int64], mask: npt.NDArray[np.bool_] | None = None
) -> dict[str, Any]:
    if mask is not None:
        out, ref = np.where(mask, out, 0).astype(np.uint8), np.where(mask, ref, 0)
    dice = {name: _dice(out, ref, values) for name, values in STRUCTURES.items()}
    post = [d for n in POSTERIOR if (d := dice[n]) is not None]
    return {"dice": dice, "posterior_mean": round(float(np.mean(post)), 3) if post else None}


def _case(name: str, vert_path: Path, ref_path: Path) -> dict[str, Any]:
    vert = _whole_vertebrae(load_volume(vert_path, check_intensity=False))
    out = np.asarray(derive_subregions(vert).data)
    ref = _reference(ref_path)
    row: dict[str, Any] = {"case": name, **_score(out, ref)}
    if name == "tpt-ct":  # L3 is the one vertebra the crop holds whole; L2 and L4 are cut by the border
        row["L3_only"] = _score(out, ref, np.asarray(vert.data) == 22)
    return row


def _speed(path: Path) -> dict[str, Any]:
    vert = _whole_vertebrae(load_volume(path, check_intensity=False))
    wall, cpu = [], []
    out = None
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        out = np.asarray(derive_subregions(vert).data)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    assert out is not None
    values, counts = np.unique(out, return_counts=True)
    return {
        "case": path.name,
        "shape": list(vert.shape),
        "spacing_mm": [round(s, 3) for s in vert.spacing_mm],
        "wall_s_min": round(min(wall), 2),
        "cpu_s_min": round(min(cpu), 2),
        "voxels": {int(v): int(c) for v, c in zip(values, counts, strict=True) if v},
    }


def _markdown(cases: list[dict[str, Any]], speed: list[dict[str, Any]]) -> str:
    names = list(STRUCTURES)
    lines = [
        "# Sub-regions derived from whole-vertebra maps (synth.subregions)",
        "",
        "Dice per structure of `derive_subregions` against SPINEPS-style references (— = not in the reference).",
        "tpt-ct set the thresholds; tpt-mri and panoptica are hold-out cases. Method and rules:",
        "docs/decisions/subregions-from-vertebrae.md.",
        "",
        "| case | " + " | ".join(names) + " | posterior mean |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    rows = [(c["case"], c) for c in cases] + [("tpt-ct L3 only", c["L3_only"]) for c in cases if "L3_only" in c]
    for label, c in rows:
        cells = ["—" if c["dice"][n] is None else f"{c['dice'][n]:.3f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {c['posterior_mean']:.3f} |")
    lines += [
        "",
        "| speed case | shape | spacing (mm) | wall s (min of 3) | CPU s (min of 3) |",
        "|---|---|---|---|---|",
    ]
    for s in speed:
        lines.append(f"| {s['case']} | {s['shape']} | {s['spacing_mm']} | {s['wall_s_min']} | {s['cpu_s_min']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    root = SHARED_DATA
    cases = [
        _case("tpt-ct", root / "tptbox_samples/tpt-ct_vert.nii.gz", root / "tptbox_samples/tpt-ct_subreg.nii.gz"),
        _case("tpt-mri", root / "tptbox_samples/tpt-mri_vert.nii.gz", root / "tptbox_samples/tpt-mri_subreg.nii.gz"),
        _case(
            "panoptica",
            root / "label_only_refs/panoptica-matched_instance_ref.nii.gz",
            root / "label_only_refs/panoptica-semantic_ref.nii.gz",
        ),
    ]
    speed = [_speed(root / "label_only_refs/verse004_vert.nii.gz"), _speed(root / "verse014_ct/verse014_vert.nii.gz")]
    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    path = write_results(
        "subregions", {"cases": cases, "speed": speed}, threads=threads, markdown=_markdown(cases, speed)
    )
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
