"""Outline calibration of the slice2d U-Net: per-class logit offsets fitted on the real *training* slices.

Why: the network learns outlines from two conventions (the real manual masks and the synthetic engine's),
and on held-out MR its discs came out about a pixel too thick. A constant offset added to one class's
logits before the softmax moves that class's decision boundary without retraining (the same method as
:mod:`neurospine.spine.calibration`).

What: for the vertebral body and the disc separately, the offset with the best mean Dice (semantic labels
on the plane's own grid, within the rows spanned by the reference, as in ``benchmarks/slice2d.py``) over
the real training slices is chosen from :data:`OFFSETS`; the grid is extended in
:data:`EXTEND_STEP` steps (up to :data:`MAX_ABS_OFFSET`) while the optimum sits on its edge. Ties (within
1e-4) go to the offset closest to 0.

Which slices (the subject-wise split of :mod:`neurospine.slice2d.data`; held-out cases never enter):
vesal 2-4, 6-9, 11, 12, 14 (bodies and discs), the mid-sagittal slice of the VB3 and VB2 training cases
(bodies), and the midline slice of fewshot CT 11 and 13 (bodies). One slice per case. VB1, IVD, tptbox,
vesal 15-19, VB3 27-31, VB2 12-14 and fewshot CT 36 are held out.

Modalities: offsets are fitted per modality only when every modality with training slices has at least
:data:`MIN_CASES_PER_MODALITY` of them for that class; otherwise one offset is fitted on all of them pooled
and applied to every modality that has training slices (MR and CT). X-ray has no real training data and
stays uncalibrated. The result goes into the model card: ``inputs.logit_bias`` ({modality: {class: offset}})
and a note with the Dice-by-offset tables. ``neurospine train slice2d`` runs this after every export and
``--calibrate-only`` recalibrates an exported model.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import numpy.typing as npt

from neurospine.slice2d import data as d
from neurospine.slice2d.io2d import Plane2D, load_input, unknown_spacing_mm
from neurospine.slice2d.segment import plane_logits, semantic_from_logits

log = logging.getLogger(__name__)

#: reference codes on the plane grid (as in the benchmark): 0 background, 1 body, 2 disc
CLASSES: dict[str, int] = {"vertebral_body": 1, "intervertebral_disc": 2}
#: first candidate offsets (added to the class's logits); 0 = uncalibrated
OFFSETS: tuple[float, ...] = tuple(float(x) for x in np.round(np.arange(-3.0, 1.51, 0.25), 2))
EXTEND_STEP = 0.25
MAX_ABS_OFFSET = 6.0
#: fewer training slices than this in any modality -> one pooled offset set
MIN_CASES_PER_MODALITY = 5
#: modalities with real training slices (the ones a fitted offset is applied to)
CALIBRATED_MODALITIES: tuple[str, ...] = ("mr", "ct")
NOTE_MARKER = "Outline calibration:"


@dataclass
class CalSlice:
    """Logits of one training slice (model grid) and its reference (0/1/2, plane grid)."""

    name: str
    source: str
    modality: str
    logits: npt.NDArray[np.float32]
    reference: npt.NDArray[np.uint8]
    labelled: frozenset[str]  # class names with a real reference on this slice


# ---- Dice -----------------------------------------------------------------------------------


def reference_rows(reference: npt.NDArray[np.uint8]) -> slice:
    """Rows spanned by the reference labels (the sets leave levels above/below unlabelled)."""
    rows = np.flatnonzero((reference > 0).any(axis=1))
    if rows.size == 0:
        return slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1)


def binary_dice(pred: npt.NDArray[np.bool_], ref: npt.NDArray[np.bool_]) -> float:
    denom = int(pred.sum()) + int(ref.sum())
    return 2.0 * float((pred & ref).sum()) / denom if denom else 1.0


def slice_dice(cs: CalSlice, class_name: str, offset: float) -> float:
    """Dice of ``class_name`` on one slice when ``offset`` is added to its logits."""
    shape = (int(cs.reference.shape[0]), int(cs.reference.shape[1]))
    labels = semantic_from_logits(cs.logits, shape, {class_name: offset}).labels
    rows = reference_rows(cs.reference)
    code = CLASSES[class_name]
    return binary_dice(labels[rows] == code, cs.reference[rows] == code)


# ---- fitting --------------------------------------------------------------------------------


def choose_offset(table: dict[float, float]) -> float:
    """Best mean Dice; ties (within 1e-4) go to the offset closest to 0."""
    best = max(table.values())
    return min((o for o, v in table.items() if v >= best - 1e-4), key=abs)


def fit_offset(
    score: Callable[[float], float],
    offsets: Sequence[float] = OFFSETS,
    *,
    step: float = EXTEND_STEP,
    max_abs: float = MAX_ABS_OFFSET,
) -> tuple[float, dict[float, float]]:
    """Best offset for ``score`` (mean Dice at an offset) over ``offsets``, extending the grid past an edge
    optimum in ``step`` steps up to ``max_abs``. Returns (chosen offset, {offset: score})."""
    table = {float(o): score(float(o)) for o in offsets}
    while True:
        chosen = choose_offset(table)
        lo, hi = min(table), max(table)
        if chosen == lo and lo - step >= -max_abs - 1e-9:
            nxt = round(lo - step, 4)
        elif chosen == hi and hi + step <= max_abs + 1e-9:
            nxt = round(hi + step, 4)
        else:
            return chosen, dict(sorted(table.items()))
        table[nxt] = score(nxt)


def mean_dice_fn(slices: Sequence[CalSlice], class_name: str) -> Callable[[float], float]:
    def score(offset: float) -> float:
        return float(np.mean([slice_dice(cs, class_name, offset) for cs in slices]))

    return score


def fit_class(slices: Sequence[CalSlice], class_name: str, offsets: Sequence[float] = OFFSETS) -> dict[str, Any]:
    """Fit one class: pooled when any modality has too few slices, else per modality (see module doc)."""
    usable = [s for s in slices if class_name in s.labelled]
    by_mod: dict[str, list[CalSlice]] = {}
    for s in usable:
        by_mod.setdefault(s.modality, []).append(s)
    counts = {m: len(v) for m, v in sorted(by_mod.items())}
    if not usable:
        return {"offsets": {}, "tables": {}, "cases": {}, "pooled": True}
    per_modality = all(n >= MIN_CASES_PER_MODALITY for n in counts.values())
    tables: dict[str, dict[float, float]] = {}
    chosen: dict[str, float] = {}
    if per_modality:
        for m, group in sorted(by_mod.items()):
            chosen[m], tables[m] = fit_offset(mean_dice_fn(group, class_name), offsets)
    else:
        pooled, tables["pooled"] = fit_offset(mean_dice_fn(usable, class_name), offsets)
        chosen = dict.fromkeys(CALIBRATED_MODALITIES, pooled)
        for m, group in sorted(by_mod.items()):  # for information only
            tables[f"{m} only (not used)"] = {o: mean_dice_fn(group, class_name)(o) for o in tables["pooled"]}
    return {
        "offsets": chosen,
        "tables": tables,
        "cases": {m: [s.name for s in v] for m, v in sorted(by_mod.items())},
        "pooled": not per_modality,
    }


def calibrate(slices: Sequence[CalSlice], offsets: Sequence[float] = OFFSETS) -> dict[str, Any]:
    """Fit every class; returns ``logit_bias`` ({modality: {class: offset}}) and the evidence."""
    bias: dict[str, dict[str, float]] = {}
    fits: dict[str, Any] = {}
    for class_name in CLASSES:
        fit = fit_class(slices, class_name, offsets)
        fits[class_name] = fit
        for m, o in fit["offsets"].items():
            bias.setdefault(m, {})[class_name] = float(o)
        log.info("%s", format_table(class_name, fit))
    return {"logit_bias": bias, "fits": fits}


def format_table(class_name: str, fit: dict[str, Any]) -> str:
    """The Dice-by-offset table of one class as text (one row per offset, one column per fit)."""
    cols = list(fit["tables"])
    if not cols:
        return f"{class_name}: no training slices with a reference"
    lines = [f"{class_name}: chosen {fit['offsets']} (cases { ({m: len(v) for m, v in fit['cases'].items()}) })"]
    lines.append("offset | " + " | ".join(cols))
    for o in fit["tables"][cols[0]]:
        cells = " | ".join(f"{fit['tables'][c].get(o, math.nan):.4f}" for c in cols)
        lines.append(f"{o:+.2f} | {cells}")
    return "\n".join(lines)


# ---- training slices ------------------------------------------------------------------------


def _ipl(path: Path) -> npt.NDArray[Any]:
    from neurospine.io import Volume, reorient

    img: Any = nib.load(str(path))
    return np.asarray(reorient(Volume(np.asarray(img.dataobj), img.affine), "IPL")[0].data)


def _with_unknown_spacing(plane: Plane2D) -> Plane2D:
    s = unknown_spacing_mm(plane.shape)
    return Plane2D(plane.pixels, (s, s), spacing_known=False, orientation_known=plane.orientation_known)


def _make(
    session: Any, name: str, source: str, modality: str, plane: Plane2D, ref: Any, labelled: set[str]
) -> CalSlice:
    logits = plane_logits(session, plane, modality).astype(np.float32)
    return CalSlice(name, source, modality, logits, np.asarray(ref, np.uint8), frozenset(labelled))


def vesal_training_slices(session: Any, root: Path) -> list[CalSlice]:
    out = []
    folder = root / "vesal_mri2d"
    for i in range(20):
        if i in d.VESAL_SKIP or i in d.VESAL_TEST:
            continue
        loaded = load_input(folder / f"vesal-{i:02d}_img.nii.gz")
        assert loaded.plane is not None
        img: Any = nib.load(str(folder / f"vesal-{i:02d}_discvert.nii.gz"))
        lab = np.asarray(img.dataobj)[:, :, 0]
        ref = np.where(lab == 2, 1, np.where(lab == 1, 2, 0))
        plane = _with_unknown_spacing(loaded.plane)
        out.append(_make(session, f"vesal-{i:02d}", "vesal_mri2d", "mr", plane, ref, set(CLASSES)))
    return out


def fcs_training_slices(session: Any, root: Path, folder: str, held_out: set[str]) -> list[CalSlice]:
    """Mid-sagittal slice (most body area) of each training case of a body-only fcs set."""
    out = []
    for rec in d._manifest(root / folder):
        case = str(rec["case"])
        img_file, lab_file = root / folder / f"{case}_img.nii.gz", root / folder / f"{case}_vertbody.nii.gz"
        if case in held_out or not img_file.exists() or not lab_file.exists():
            continue
        lab = _ipl(lab_file)
        k = d._best_slice(lab > 0)
        plane = load_input(img_file).slice_plane(k)
        out.append(_make(session, case, folder, "mr", plane, (lab[:, :, k] > 0), {"vertebral_body"}))
    return out


def fewshot_training_slices(session: Any, root: Path, cases: Sequence[str] = d.FEWSHOT_TRAIN) -> list[CalSlice]:
    """Midline slice with separable bodies of each fewshot CT training case (as the benchmark picks it)."""
    out = []
    for case in cases:
        loaded = load_input(root / "fewshot_ct_sag" / f"{case}_img.nii.gz")
        lab = _ipl(root / "fewshot_ct_sag" / f"{case}_spine.nii.gz") > 0
        k0 = int(np.rint(float(np.argwhere(lab)[:, 2].mean())))
        for k in (k0, k0 - 1, k0 + 1, k0 - 2, k0 + 2):
            bodies, _post = d.split_posterior(lab[:, :, k])
            if d.plausible_bodies(bodies):
                plane = _with_unknown_spacing(loaded.slice_plane(k))
                out.append(_make(session, case, "fewshot_ct_sag", "ct", plane, bodies, {"vertebral_body"}))
                break
        else:
            log.warning("%s: no midline slice with separable bodies; not used", case)
    return out


def training_slices(session: Any, root: Path) -> list[CalSlice]:
    """All real training slices used for the calibration (held-out cases excluded)."""
    slices = vesal_training_slices(session, root)
    slices += fcs_training_slices(session, root, "fcs_vb3_myosegmentum_lumbar", d.VB3_TEST)
    slices += fcs_training_slices(session, root, "fcs_vb2_chu_lumbar_t2", d.VB2_TEST)
    slices += fewshot_training_slices(session, root)
    held = d.VB3_TEST | d.VB2_TEST | set(d.FEWSHOT_TEST) | {f"vesal-{i:02d}" for i in d.VESAL_TEST}
    leaked = sorted({s.name for s in slices} & held)
    if leaked:
        raise RuntimeError(f"held-out cases in the calibration set: {leaked}")
    return slices


# ---- model card -----------------------------------------------------------------------------


def card_note(result: dict[str, Any]) -> str:
    """One paragraph for the card's ``notes``: the method, chosen offsets and Dice-by-offset tables."""
    fits = {
        c: {
            "chosen": f["offsets"],
            "pooled_over_modalities": f["pooled"],
            "n_cases": {m: len(v) for m, v in f["cases"].items()},
            "mean_dice_by_offset": {
                t: {f"{o:g}": round(v, 4) for o, v in tab.items()} for t, tab in f["tables"].items()
            },
        }
        for c, f in result["fits"].items()
    }
    return (
        f"{NOTE_MARKER} per-class logit offsets (inputs.logit_bias, per modality; added before the softmax) "
        "with the best mean semantic Dice on the real training slices only (neurospine.slice2d.calibration; "
        "`neurospine train slice2d --calibrate-only`); X-ray uncalibrated (no real training data). "
        + json.dumps(fits, separators=(",", ":"))
    )


def write_into_card(card_path: Path, result: dict[str, Any]) -> None:
    """Store the offsets in ``inputs.logit_bias`` and replace the calibration note (atomic write)."""
    from neurospine.io import write_text_atomic

    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("inputs", {})["logit_bias"] = result["logit_bias"]
    notes = str(card.get("notes", "")).split(NOTE_MARKER)[0].rstrip()
    card["notes"] = (notes + " " if notes else "") + card_note(result)
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")


def calibrate_run(onnx_path: Path, card_path: Path, root: Path, *, threads: int = 1) -> dict[str, Any]:
    """Calibrate an exported model and write the result into its card."""
    from neurospine.inference.onnx import session_for_file

    session = session_for_file(onnx_path, threads=threads)
    slices = training_slices(session, root)
    log.info("calibration slices: %s", {s.name: s.modality for s in slices})
    result = calibrate(slices)
    write_into_card(card_path, result)
    return result
