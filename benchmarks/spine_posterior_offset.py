"""Fit one logit offset for the posterior-element classes on TRAINING data (docs/decisions/spine_decision_0.19.0.md).

The tptbox MRI, the one real MR scan with posterior-element labels, is the 14-structure *evaluation* case, so a
posterior offset cannot be fitted on real MR. The closest training data: the two real CT training images (TPTBox CT
with its sub-region map, VerSe 014 with sub-regions derived from its vertebra map), rendered once T2-like and once
T1-like with a fixed look-up table on the Hounsfield scale (cortex and air dark, CSF bright on T2, fat bright).
Each rendering runs through the whole spine pipeline (``cord=False``) with the offset added to the logits of arcus,
spinous, costal and both articular processes; the score is the mean Dice of the eight SPINEPS posterior values
inside the superior-inferior range of the labelled vertebrae (unlabelled vertebrae beyond it are not scored).
The offset with the best mean over the four renderings is chosen (a tie within 0.001 goes to the offset nearest 0).

Run from the repository root: ``python -m benchmarks.spine_posterior_offset`` (about 3 minutes at 2 threads).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import write_results

THREADS = 2
OFFSETS: tuple[float, ...] = (0.0, -0.5, -1.0, -1.5, -2.0, -3.0)
TIE = 0.001
POSTERIOR_NET_CLASSES: tuple[str, ...] = ("arcus", "spinous", "costal", "sup_articular", "inf_articular")
#: Hounsfield control points and two fixed MR-like renderings (levels in [0, 1])
HU_POINTS: tuple[float, ...] = (-1000.0, -120.0, 0.0, 45.0, 90.0, 220.0, 400.0, 900.0, 1600.0)
RENDERINGS: dict[str, tuple[float, ...]] = {
    "T2-like": (0.0, 0.8, 1.0, 0.18, 0.55, 0.45, 0.35, 0.05, 0.02),
    "T1-like": (0.0, 0.9, 0.15, 0.3, 0.35, 0.6, 0.45, 0.05, 0.02),
}
log = logging.getLogger("benchmarks.spine_posterior_offset")


def render(hu: npt.NDArray[np.floating], spacing_mm: tuple[float, float, float], levels: tuple[float, ...]) -> Any:
    """A fixed-contrast MR-like image of a CT (smoothed, mild blur, bias field and Rician noise, seed 1)."""
    from scipy import ndimage

    from neurospine.synth import artifacts

    rng = np.random.default_rng(1)
    smooth = ndimage.gaussian_filter(np.asarray(hu, dtype=np.float32), 1.0 / np.asarray(spacing_mm))
    img = np.interp(smooth, HU_POINTS, levels).astype(np.float32)
    img = artifacts.blur(img, (0.4, 0.4, 0.4))
    img = np.clip(img, 0.0, None) * artifacts.bias_field(img.shape, spacing_mm, 0.1, rng)
    return (artifacts.rician(img, 0.02, rng) * 1000.0).astype(np.float32)


def posterior_scores(pred: npt.NDArray[np.integer], ref: npt.NDArray[np.integer]) -> tuple[float, float]:
    """Mean Dice of the SPINEPS posterior values 41-48 inside the labelled vertebrae's S-I range (PIR axis 1), and the
    predicted / reference posterior volume there."""
    rows = np.nonzero(np.isin(ref, (41, 42, 43, 44, 45, 46, 47, 48, 49, 50)).any(axis=(0, 2)))[0]
    region = np.zeros(ref.shape, dtype=bool)
    region[:, rows.min() : rows.max() + 1, :] = True
    dices = []
    for v in range(41, 49):
        p, r = (pred == v) & region, ref == v
        dices.append(2.0 * float((p & r).sum()) / max(1, int(p.sum()) + int(r.sum())))
    post_p = np.isin(pred, range(41, 49)) & region
    post_r = np.isin(ref, range(41, 49))
    return float(np.mean(dices)), float(post_p.sum()) / max(1, int(post_r.sum()))


def models_dir_with_offset(root: Path, offset: float) -> Path:
    """A models folder holding the installed spine_semantic card with ``offset`` on the posterior classes."""
    from neurospine.models.registry import shipped_dir

    folder = root / f"offset{offset:g}"
    folder.mkdir(parents=True, exist_ok=True)
    card = json.loads((shipped_dir() / "spine_semantic.json").read_text(encoding="utf-8"))
    bias = dict(card["inputs"].get("logit_bias") or {})
    bias.update(dict.fromkeys(POSTERIOR_NET_CLASSES, offset))
    card["inputs"]["logit_bias"] = bias
    (folder / "spine_semantic.json").write_text(json.dumps(card), encoding="utf-8")
    onnx = folder / card["file"]
    if not onnx.exists():
        shutil.copyfile(shipped_dir() / card["file"], onnx)
    return folder


def choose(table: dict[float, float]) -> float:
    best = max(table.values())
    return min((o for o, d in table.items() if d >= best - TIE), key=abs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("..") / "shared" / "data")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from neurospine.spine.api import segment
    from neurospine.spine.train_sources import CT_IMAGE_FILES, _ct_source

    sources = [s for s in (_ct_source(args.data, *entry) for entry in CT_IMAGE_FILES) if s is not None]
    if not sources:
        log.error("no CT training source under %s", args.data)
        return 2
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {o: models_dir_with_offset(Path(tmp), o) for o in OFFSETS}
        before = os.environ.get("NEUROSPINE_MODELS_DIR")
        try:
            for src in sources:
                assert src.image is not None
                ref = np.asarray(src.semantic.data)
                for look, levels in RENDERINGS.items():
                    vol = src.image.with_data(render(np.asarray(src.image.data), src.image.spacing_mm, levels))
                    for o in OFFSETS:
                        os.environ["NEUROSPINE_MODELS_DIR"] = str(dirs[o])
                        pred = np.asarray(segment(vol, threads=THREADS, cord=False).semantic_input)
                        dice, ratio = posterior_scores(pred, ref)
                        rows.append({"source": src.name, "look": look, "offset": o, "dice": dice, "ratio": ratio})
                        log.info("%s %s offset %g: Dice %.4f, volume %.2f", src.name, look, o, dice, ratio)
        finally:
            if before is None:
                os.environ.pop("NEUROSPINE_MODELS_DIR", None)
            else:
                os.environ["NEUROSPINE_MODELS_DIR"] = before
    table = {o: float(np.mean([r["dice"] for r in rows if r["offset"] == o])) for o in OFFSETS}
    chosen = choose(table)
    payload = {"rows": rows, "mean_dice_by_offset": {f"{o:g}": round(d, 4) for o, d in table.items()}, "chosen": chosen}
    md = [
        "# Posterior-element logit offset fitted on renderings of the CT training images\n",
        "Training data only (`benchmarks/spine_posterior_offset.py`); the tptbox MRI is not read. Mean Dice of the",
        "eight posterior values; volume = predicted / reference posterior volume.\n",
        "| image | look | " + " | ".join(f"{o:g}" for o in OFFSETS) + " |",
        "|---|---|" + "---|" * len(OFFSETS),
    ]
    for src in sources:
        for look in RENDERINGS:
            cells = [r for r in rows if r["source"] == src.name and r["look"] == look]
            md.append(
                f"| {src.name} | {look} | "
                + " | ".join(f"{r['dice']:.3f} (volume {r['ratio']:.2f})" for r in cells)
                + " |"
            )
    md.append("| **mean** | | " + " | ".join(f"**{table[o]:.4f}**" for o in OFFSETS) + " |")
    md.append(f"\nChosen offset: **{chosen:g}** (best mean; a tie within {TIE} goes to the offset nearest 0).\n")
    write_results("spine_posterior_offset", payload, threads=THREADS, markdown="\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
