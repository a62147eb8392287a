"""Outline calibration of the phase-1 model: per-class logit offsets fitted on the real *training* cases.

Why: the synthetic engine draws vertebral-body and disc outlines differently from the manual masks of the
real sets (its label includes the whole cortical shell; its discs are larger), and the network learns both
conventions. Measured with model 0.2.0 on real cases it was *trained* on: body precision 0.73-0.80 at recall
0.90-0.97, i.e. bodies about one voxel too large all round (the same pattern as on the held-out cases).

What: a constant offset is added to the logits of a class group before the argmax, which moves that group's
decision boundary. One offset for the vertebral body (corpus + endplate) and one for the disc are chosen
from :data:`OFFSETS` by the best mean binary Dice over the real training cases (VB2/VB3 training bodies,
IVD training discs; never the held-out benchmark cases), inside each case's labelled region (its reference
bounding box plus :data:`REGION_MARGIN_VOX`: the sets label only some levels). The chosen offsets and the whole
table are written into the model card (``inputs.logit_bias``, ``notes``), so inference and benchmarks use
them and anyone can see how they were obtained. ``neurospine train spine`` runs this after every export;
``--calibrate-only`` recalibrates an existing run folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.spine import classes as C
from neurospine.spine import data as D
from neurospine.spine.preprocess import ModelGrid, to_model_grid
from neurospine.spine.semantic import BodyRefiner, locate_spine, logit_bias_vector, neighbour_offset, slice_logits

log = logging.getLogger(__name__)

#: class groups that get one offset each (names as in :data:`classes.NET_CLASSES`)
GROUPS: dict[str, tuple[str, ...]] = {"body": ("corpus", "endplate"), "disc": ("disc",)}
#: candidate offsets (added to the group's logits); 0 = uncalibrated
OFFSETS: tuple[float, ...] = tuple(float(x) for x in np.round(np.arange(0.0, -5.01, -0.25), 2))
#: the labelled region of a case: reference bounding box grown by this many voxels (input grid)
REGION_MARGIN_VOX = 2


@dataclass
class CaseLogits:
    """Pass-2 logits of one case (float16 to save memory) and its reference on the input grid."""

    name: str
    grid: ModelGrid
    box: tuple[slice, slice]
    logits: dict[int, npt.NDArray[np.float16]]
    reference: npt.NDArray[np.bool_]
    region: npt.NDArray[np.bool_]


def labelled_region(reference: npt.NDArray[np.bool_], margin_vox: int = REGION_MARGIN_VOX) -> npt.NDArray[np.bool_]:
    """Bounding box of ``reference`` grown by ``margin_vox`` (empty reference -> empty region)."""
    region = np.zeros(reference.shape, dtype=bool)
    idx = np.nonzero(reference)
    if not idx[0].size:
        return region
    sl = tuple(
        slice(max(0, int(i.min()) - margin_vox), min(n, int(i.max()) + margin_vox + 1))
        for i, n in zip(idx, reference.shape, strict=True)
    )
    region[sl] = True
    return region


def case_logits(
    session: Any, case: D.EvalCase, *, inplane_mm: float = 1.0, batch: int = 4, refiner: BodyRefiner | None = None
) -> CaseLogits:
    grid = to_model_grid(case.image, inplane_mm=inplane_mm)
    found, _ = locate_spine(session, grid.image, grid.spacing_mm, batch=batch)
    if found is None:
        box = (slice(0, grid.image.shape[0]), slice(0, grid.image.shape[1]))
        slices = list(range(grid.image.shape[2]))
    else:
        box, slices = found.box, list(found.slices)
    offset = neighbour_offset(grid.spacing_mm[2])
    raw = slice_logits(session, grid.image, slices, offset, box, batch, refiner)
    ref = np.asarray(case.labels.data) > 0
    return CaseLogits(
        case.name, grid, box, {r: v.astype(np.float16) for r, v in raw.items()}, ref, labelled_region(ref)
    )


def group_mask(cl: CaseLogits, group: str, offset: float) -> npt.NDArray[np.bool_]:
    """Voxels of ``group`` on the input grid when ``offset`` is added to the group's logits."""
    names = GROUPS[group]
    bias = logit_bias_vector(dict.fromkeys(names, offset))
    idx = [i for i, (n, _) in enumerate(C.NET_CLASSES) if n in names]
    full = np.zeros(cl.grid.image.shape, dtype=np.uint8)
    for r, lg in cl.logits.items():
        x = lg.astype(np.float32)
        if bias is not None:
            x = x + bias[:, None, None]
        full[cl.box[0], cl.box[1], r] = np.isin(np.argmax(x, axis=0), idx)
    return np.asarray(cl.grid.to_input(full)) > 0


def region_dice(pred: npt.NDArray[np.bool_], cl: CaseLogits) -> float:
    p = pred & cl.region
    denom = int(p.sum()) + int(cl.reference.sum())
    return 2.0 * float((p & cl.reference).sum()) / denom if denom else 1.0


def choose_offset(table: dict[float, float]) -> float:
    """Best mean Dice; ties (within 1e-4) go to the offset closest to 0."""
    best = max(table.values())
    return min((o for o, d in table.items() if d >= best - 1e-4), key=abs)


def calibration_cases(root: Path) -> dict[str, list[D.EvalCase]]:
    """The real training cases (held-out benchmark cases excluded), by group."""
    out: dict[str, list[D.EvalCase]] = {"body": [], "disc": []}
    for folder, held, group in (
        (D.VB3_DIR, D.VB3_TEST, "body"),
        (D.VB2_DIR, D.VB2_TEST, "body"),
        (D.IVD_DIR, D.IVD_TEST, "disc"),
    ):
        for row in D.manifest(root, folder):
            if str(row["case"]) not in held:
                out[group].append(D.load_eval_case(root, folder, row))
    return out


def calibrate(
    session: Any,
    cases: dict[str, list[D.EvalCase]],
    *,
    offsets: Sequence[float] = OFFSETS,
    inplane_mm: float = 1.0,
    refiner: BodyRefiner | None = None,
) -> dict[str, Any]:
    """Fit one offset per group on the (refiner-fused) logits; returns ``logit_bias`` ({class name: offset})
    and the Dice tables."""
    bias: dict[str, float] = {}
    tables: dict[str, dict[str, float]] = {}
    for group, group_cases in cases.items():
        if not group_cases:
            continue
        scores: dict[float, list[float]] = {o: [] for o in offsets}
        for case in group_cases:
            cl = case_logits(session, case, inplane_mm=inplane_mm, refiner=refiner)
            for o in offsets:
                scores[o].append(region_dice(group_mask(cl, group, o), cl))
            log.info("calibration %s %s: Dice at 0 %.4f", group, case.name, scores[offsets[0]][-1])
        table = {o: float(np.mean(v)) for o, v in scores.items()}
        chosen = choose_offset(table)
        for name in GROUPS[group]:
            bias[name] = chosen
        tables[group] = {f"{o:g}": round(d, 4) for o, d in table.items()}
        log.info(
            "calibration %s: offset %g (mean Dice %.4f, uncalibrated %.4f)", group, chosen, table[chosen], table[0.0]
        )
    return {
        "logit_bias": bias,
        "mean_dice_by_offset": tables,
        "cases": {g: [c.name for c in v] for g, v in cases.items()},
    }


def write_into_card(card_path: Path, result: dict[str, Any]) -> None:
    """Store the offsets in ``inputs.logit_bias`` and the evidence in ``notes`` (atomic write)."""
    from neurospine.io import write_text_atomic

    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("inputs", {})["logit_bias"] = result["logit_bias"]
    notes = json.loads(card["notes"]) if isinstance(card.get("notes"), str) and card["notes"].startswith("{") else {}
    notes["outline_calibration"] = {
        "method": "per-group logit offset with the best mean binary Dice on the real training cases "
        "(neurospine.spine.calibration)",
        "mean_dice_by_offset": result["mean_dice_by_offset"],
        "cases": result["cases"],
    }
    card["notes"] = json.dumps(notes)
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")


def calibrate_run(onnx_path: Path, card_path: Path, root: Path, *, threads: int = 1) -> dict[str, Any]:
    """Calibrate the exported model of a run folder and write the result into its card."""
    from neurospine.inference.onnx import session_for_file

    session = session_for_file(onnx_path, threads=threads)
    inputs = json.loads(card_path.read_text(encoding="utf-8")).get("inputs", {})
    inplane = float(inputs.get("inplane_mm", 1.0))
    refiner = None
    if inputs.get("body_refiner"):
        from neurospine.spine.api import body_refiner

        refiner = body_refiner(inputs["body_refiner"], threads)
    result = calibrate(session, calibration_cases(root), inplane_mm=inplane, refiner=refiner)
    write_into_card(card_path, result)
    return result
