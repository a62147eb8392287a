"""Fit a posterior-element logit offset to the posterior/body volume ratio of real label maps
(docs/decisions/spine-posterior-prior.md).

Training data only. The prior is the posterior/body voxel ratio within 20 mm of the midline in the panoptica SPINEPS
reference map (real sagittal MR) and the tptbox CT sub-region map. The predicted ratio is the median of the same
ratio over the pipeline's output on the VB2 and VB3 training images, for each candidate offset on the posterior
classes. The tptbox MRI (the evaluation case) is not read.

Run from the repository root: ``python -m benchmarks.spine_posterior_prior`` (about 10 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.spine_posterior_offset import OFFSETS, models_dir_with_offset

THREADS = 2
SLAB_MM = 20.0
TIE_LOG = 0.02
POSTERIOR_VALUES: tuple[int, ...] = (41, 42, 43, 44, 45, 46, 47, 48)
BODY_VALUES: tuple[int, ...] = (49, 50, 52, 53, 62)
PRIOR_MAPS: tuple[str, ...] = (
    "label_only_refs/panoptica-semantic_ref.nii.gz",
    "tptbox_samples/tpt-ct_subreg.nii.gz",
)
log = logging.getLogger("benchmarks.spine_posterior_prior")


def posterior_body_ratio(labels_pir: npt.NDArray[np.integer], lr_spacing_mm: float) -> float | None:
    """Posterior-element voxels / vertebral-body voxels within :data:`SLAB_MM` of the midline (PIR grid: the last
    axis is left-right; the midline is the median left-right index of the body voxels). ``None`` without body."""
    body = np.isin(labels_pir, BODY_VALUES)
    if not body.any():
        return None
    cols = np.nonzero(body)[2]
    mid = float(np.median(cols))
    r = np.arange(labels_pir.shape[2], dtype=np.float64)
    slab = (np.abs(r - mid) * lr_spacing_mm <= SLAB_MM)[None, None, :]
    n_body = int((body & slab).sum())
    n_post = int((np.isin(labels_pir, POSTERIOR_VALUES) & slab).sum())
    return n_post / n_body if n_body else None


def choose(table: dict[float, float], prior: float) -> float:
    """The offset whose ratio is nearest ``prior`` on a log scale (a tie within :data:`TIE_LOG` goes to the offset
    nearest 0)."""
    dist = {o: abs(math.log(max(r, 1e-9) / prior)) for o, r in table.items()}
    best = min(dist.values())
    return min((o for o, d in dist.items() if d <= best + TIE_LOG), key=abs)


def _pir(path: Path) -> tuple[npt.NDArray[np.integer], float]:
    from neurospine.io import load_volume, reorient

    vol = reorient(load_volume(path, check_intensity=False), "PIR")[0]
    return np.asarray(vol.data), float(vol.spacing_mm[2])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SHARED_DATA)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from neurospine.io import Volume, load_volume, reorient
    from neurospine.spine.api import segment
    from neurospine.spine.data import VB2_DIR, VB2_TEST, VB3_DIR, VB3_TEST, manifest

    priors = {}
    for rel in PRIOR_MAPS:
        ratio = posterior_body_ratio(*_pir(args.data / rel))
        if ratio is not None:
            priors[rel] = ratio
    if not priors:
        log.error("no prior label map under %s", args.data)
        return 2
    prior = float(np.mean(list(priors.values())))
    log.info("prior ratios %s -> %.3f", priors, prior)
    images = [
        args.data / folder / f"{row['case']}_img.nii.gz"
        for folder, held in ((VB2_DIR, VB2_TEST), (VB3_DIR, VB3_TEST))
        for row in manifest(args.data, folder)
        if row["case"] not in held
    ]
    rows: list[dict[str, Any]] = []
    before = os.environ.get("NEUROSPINE_MODELS_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {o: models_dir_with_offset(Path(tmp), o) for o in OFFSETS}
        try:
            for path in images:
                vol = load_volume(path)
                for o in OFFSETS:
                    os.environ["NEUROSPINE_MODELS_DIR"] = str(dirs[o])
                    sem = np.asarray(segment(vol, threads=THREADS, cord=False).semantic_input)
                    pir = reorient(Volume(sem, vol.affine), "PIR")[0]
                    ratio = posterior_body_ratio(np.asarray(pir.data), float(pir.spacing_mm[2]))
                    rows.append({"case": path.name.removesuffix("_img.nii.gz"), "offset": o, "ratio": ratio})
                    log.info("%s offset %g: ratio %s", path.name, o, ratio)
        finally:
            if before is None:
                os.environ.pop("NEUROSPINE_MODELS_DIR", None)
            else:
                os.environ["NEUROSPINE_MODELS_DIR"] = before
    table = {
        o: float(np.median([r["ratio"] for r in rows if r["offset"] == o and r["ratio"] is not None])) for o in OFFSETS
    }
    chosen = choose(table, prior)
    md = [
        "# Posterior-element offset fitted to the posterior/body volume ratio of real label maps\n",
        "Training data only (`benchmarks/spine_posterior_prior.py`, rule `docs/decisions/spine-posterior-prior.md`);",
        "the tptbox MRI is not read. Ratio = posterior-element voxels / body voxels within "
        f"{SLAB_MM:g} mm of the midline.\n",
        "| prior map | ratio |",
        "|---|---|",
        *[f"| {k} | {v:.3f} |" for k, v in priors.items()],
        f"| **prior (mean)** | **{prior:.3f}** |",
        "",
        f"| offset | median predicted ratio over {len(images)} training images | predicted / prior |",
        "|---|---|---|",
        *[f"| {o:g} | {r:.3f} | {r / prior:.2f} |" for o, r in table.items()],
        "",
        f"Chosen offset: **{chosen:g}** (nearest the prior on a log scale; a tie within {TIE_LOG} goes to the offset "
        "nearest 0).",
    ]
    payload = {
        "priors": priors,
        "prior": prior,
        "median_ratio_by_offset": {f"{o:g}": round(r, 4) for o, r in table.items()},
        "chosen": chosen,
        "rows": rows,
    }
    write_results("spine_posterior_prior", payload, threads=THREADS, markdown="\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
