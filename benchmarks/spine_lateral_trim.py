"""Choose the lateral body trim fraction on TRAINING cases (docs/decisions/spine-lateral-trim.md).

For every training case of VB2 and VB3 (``neurospine.spine.data`` splits) the pipeline runs once and its body map
is trimmed with each candidate fraction (:func:`trim_lateral_bodies`: each body loses the sagittal slices at its
left and right ends whose body area is below the fraction times its largest sagittal area, trimmed from the outside
in); per-body Dice as in ``benchmarks/spine.py``. The choice was f = 0, so the pipeline does not trim; the function
lives here for a later protocol-aware attempt. The chosen fraction is the best mean of the case
means, a tie within 0.001 going to the smaller fraction. No held-out case is read.

Run from the repository root: ``python -m benchmarks.spine_lateral_trim`` (about 12 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import logging
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from benchmarks.common import write_results
from benchmarks.spine import body_scores, lateral_spacing_mm

FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
TIE = 0.001
THREADS = 2


def lateral_axis(affine: npt.NDArray[np.float64]) -> int:
    """The voxel axis that runs left-right in world space."""
    import nibabel as nib

    return int(np.nonzero(nib.orientations.io_orientation(affine)[:, 0] == 0)[0][0])


def trim_lateral_bodies(
    body: npt.NDArray[np.integer],
    others: list[npt.NDArray[np.integer]],
    axis: int,
    fraction: float,
) -> int:
    """Unlabel, in place, the trimmed voxels of every body in ``body`` (level ids) and at the same voxels in each
    array of ``others`` (the semantic and seg-vert maps). Returns the number of voxels removed."""
    if fraction <= 0.0 or not body.any():
        return 0
    removed = 0
    ids, inverse = np.unique(body, return_inverse=True)
    compact = inverse.reshape(body.shape).astype(np.int32) + (0 if ids[0] == 0 else 1)
    levels = ids[ids != 0]
    for idx, box in enumerate(ndimage.find_objects(compact), start=1):
        if box is None:
            continue
        m = body[box] == levels[idx - 1]
        other_axes = tuple(a for a in range(m.ndim) if a != axis)
        area = m.sum(axis=other_axes)
        kept = np.nonzero(area >= fraction * area.max())[0]
        drop = np.ones(area.shape, dtype=bool)
        drop[kept.min() : kept.max() + 1] = False
        if not drop.any():
            continue
        shape = [1] * m.ndim
        shape[axis] = drop.size
        gone = m & drop.reshape(shape)
        removed += int(gone.sum())
        for arr in (body, *others):
            arr[box][gone] = 0
    return removed


def choose(means: dict[float, float]) -> float:
    """The smallest fraction whose mean is within ``TIE`` of the best."""
    best = max(means.values())
    return min(f for f, v in means.items() if v >= best - TIE)


def run() -> dict[str, Any]:
    from neurospine.spine import data as D
    from neurospine.spine.api import segment

    root = D.shared_root()
    rows: list[dict[str, Any]] = []
    for folder, held in ((D.VB2_DIR, D.VB2_TEST), (D.VB3_DIR, D.VB3_TEST)):
        for r in D.manifest(root, folder):
            if r["case"] in held:
                continue
            case = D.load_eval_case(root, folder, r)
            seg = segment(case.image, threads=THREADS)
            ref = np.asarray(case.labels.data)
            axis = lateral_axis(np.asarray(case.image.affine, dtype=np.float64))
            per: dict[str, float] = {}
            for f in FRACTIONS:
                body = np.array(seg.body_input, copy=True)
                trim_lateral_bodies(body, [], axis, f)
                sc = body_scores(SimpleNamespace(body_input=body), ref, lateral_mm=lateral_spacing_mm(case.labels))
                per[str(f)] = float(sc["mean_per_body_dice"])
            rows.append({"case": case.name, "set": folder, "per_body_dice": per})
            print(case.name, " ".join(f"{v:.4f}" for v in per.values()), flush=True)
    means = {f: float(np.mean([r["per_body_dice"][str(f)] for r in rows])) for f in FRACTIONS}
    by_set: dict[str, dict[str, float]] = {}
    for s in (D.VB2_DIR, D.VB3_DIR):
        mine = [r["per_body_dice"] for r in rows if r["set"] == s]
        by_set[s] = {str(f): round(float(np.mean([d[str(f)] for d in mine])), 4) for f in FRACTIONS}
    return {
        "cases": rows,
        "means": {str(f): round(v, 4) for f, v in means.items()},
        "by_set": by_set,
        "chosen": choose(means),
    }


def markdown(p: dict[str, Any]) -> str:
    heads = " | ".join(f"f={f}" for f in FRACTIONS)
    md = [
        "# Spine lateral body trim: choice on training cases",
        "",
        "Rule: `docs/decisions/spine-lateral-trim.md` (written before scoring). Mean per-body Dice over the training "
        f"cases of VB2 and VB3 ({len(p['cases'])} cases) with each trim fraction f; the chosen f is the smallest "
        f"within {TIE} of the best: **f = {p['chosen']}**" + (" (the trim stays off)." if p["chosen"] == 0 else "."),
        "",
        f"| cases | {heads} |",
        "|---" * (len(FRACTIONS) + 1) + "|",
        f"| all (mean of case means) | {' | '.join(str(v) for v in p['means'].values())} |",
    ]
    md += [f"| {s} | {' | '.join(str(v) for v in vals.values())} |" for s, vals in p["by_set"].items()]
    md += ["", f"| case | {heads} |", "|---" * (len(FRACTIONS) + 1) + "|"]
    md += [f"| {r['case']} | {' | '.join(f'{v:.4f}' for v in r['per_body_dice'].values())} |" for r in p["cases"]]
    return "\n".join(md) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    payload = run()
    payload["seconds"] = round(time.perf_counter() - t0, 1)
    md = markdown(payload)
    print(md)
    write_results("spine_lateral_trim", payload, threads=THREADS, markdown=md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
