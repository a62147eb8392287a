"""Public API of the whole-spine pipeline: ``run_file(image_path, out_dir) -> TaskResult``.

Steps: load and check the input; model grid (PIR, 1 mm sagittal plane); phase 1 semantic ONNX model on
sagittal slices; clean-up and left/right split; phase 2 instances (bodies, posterior elements, discs,
endplates); level naming (S1 / C2 anchors); back to the input's exact grid; write the five outputs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.errors import InputError, WeightsIntegrityError
from neurospine.io import Volume, load_volume, save_like, stem_of
from neurospine.labels import DISC_OFFSET, ENDPLATE_OFFSET, VERTEBRA_IDS, VERTEBRA_NAMES
from neurospine.results import TaskResult
from neurospine.spine import classes as C
from neurospine.spine.cleanup import CleanupReport, clean_anatomy, drop_unassigned
from neurospine.spine.cordfusion import CORD_MODEL, CordFusion, fuse
from neurospine.spine.endplates import endplate_thickness_mm, relabel_endplates
from neurospine.spine.instances import (
    POSTERIOR_JUMP_MM,
    SACRUM_TMP,
    InstanceResult,
    build_instances,
    settle_sacral_arch,
)
from neurospine.spine.naming import (
    CONFIDENT,
    EXTRA_VERTEBRA_CHOICES,
    L5_MIN_DEPTH_MM,
    SACRUM_MIN_MM3,
    BodyInfo,
    Naming,
    disc_above_top,
    name_levels,
)
from neurospine.spine.preprocess import ModelGrid, check_input, to_model_grid
from neurospine.spine.semantic import (
    BodyRefiner,
    clean_classes,
    logit_bias_vector,
    predict_classes_cropped,
    to_spineps_values,
)

log = logging.getLogger(__name__)

TASK = "spine"
SEMANTIC_MODEL = "spine_semantic"
#: the sacrum counts as "right below" the lowest vertebra within this gap (mm)
SACRUM_GAP_MM = 30.0

OUTPUT_SUFFIXES = {
    "semantic": "_seg-spine_msk.nii.gz",
    "instances": "_seg-vert_msk.nii.gz",
    "centroids": "_seg-spine_ctd.json",
    "snapshot": "_seg-spine_snp.png",
    "table": "_spine.csv",
}


def output_paths(image_path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Where ``run_file`` writes each output for ``image_path``."""
    stem = stem_of(image_path)
    return {key: Path(out_dir) / f"{stem}{suffix}" for key, suffix in OUTPUT_SUFFIXES.items()}


@lru_cache(maxsize=4)
def _session(name: str, sha256: str, threads: int) -> Any:
    from neurospine.inference.onnx import onnx_session
    from neurospine.models import load_card

    return onnx_session(load_card(name), threads=threads)


def body_refiner(spec: Any, threads: int) -> BodyRefiner | None:
    """The refiner named by a semantic card's ``inputs.body_refiner`` ({"model": name, "weight": w}), if any."""
    from neurospine.models import load_card

    if not spec:
        return None
    card = load_card(str(spec["model"]))
    pinned = str(spec.get("sha256", ""))
    if pinned and not card.sha256.startswith(pinned):
        raise WeightsIntegrityError(
            f"the semantic model's outline calibration was fitted with {card.name} sha256 {pinned[:12]}, but the "
            f"{card.name} found is {card.version} (sha256 {card.sha256[:12]}); reinstall neurospine or point "
            "NEUROSPINE_MODELS_DIR at a folder whose models were calibrated together"
        )
    return BodyRefiner(_session(card.name, card.sha256, int(threads)), float(spec.get("weight", 1.0)))


@dataclass
class SpineSegmentation:
    """Everything the pipeline computed, on the model grid and on the input grid."""

    grid: ModelGrid
    classes: npt.NDArray[np.uint8]  # network classes on the model grid (its own cord, before the cord fusion)
    instances: InstanceResult
    naming: Naming
    seg_vert_model: npt.NDArray[np.int16]
    semantic_input: npt.NDArray[np.uint8]
    seg_vert_input: npt.NDArray[np.int16]
    body_input: npt.NDArray[np.int16]  # vertebral bodies (corpus + endplate) by level id, input grid
    names: dict[int, str]
    model_version: str
    timings_s: dict[str, float]
    models: dict[str, str] = field(default_factory=dict)  # every model card used: name -> version
    cleanup: CleanupReport = field(default_factory=CleanupReport)  # voxels the anatomy clean-up removed
    cord: CordFusion | None = None  # the cord taken from the cord model (None: the network's own cord)


def _sacrum_below(inst: InstanceResult, classes: npt.NDArray[np.uint8], spacing_mm: tuple[float, float, float]) -> bool:
    sacrum = classes == C.SACRUM
    if not sacrum.any() or not inst.vertebrae:
        return False
    low = inst.vertebrae[-1]
    rows = np.nonzero(sacrum.any(axis=(0, 2)))[0]
    gap_mm = (float(rows.min()) - low.bottom_row) * spacing_mm[1]
    below_centre = float(np.nonzero(sacrum)[1].mean()) > low.centroid_vox[1]
    return gap_mm <= SACRUM_GAP_MM and below_centre


def name_instances(
    inst: InstanceResult,
    classes: npt.NDArray[np.uint8],
    spacing_mm: tuple[float, float, float],
    extra_vertebra: str | None = None,
) -> Naming:
    vox = float(np.prod(spacing_mm))
    n = len(inst.vertebrae)
    counts = np.bincount(np.asarray(inst.instances, dtype=np.int64).ravel(), minlength=DISC_OFFSET + n + 1)
    last_row = inst.instances.shape[1] - 1
    bodies = [
        BodyInfo(
            v.height_mm,
            v.depth_mm,
            float(v.centroid_vox[1]) * spacing_mm[1],
            v.body_voxels * vox,
            float(counts[DISC_OFFSET + v.index]) * vox,
            v.bottom_row >= last_row - 2,
            float(v.top_row) * spacing_mm[1],
        )
        for v in inst.vertebrae
    ]
    sacrum_mm3 = inst.sacrum_voxels * float(np.prod(spacing_mm))
    return name_levels(
        bodies,
        sacrum_mm3=sacrum_mm3,
        sacrum_below=_sacrum_below(inst, classes, spacing_mm),
        extra_vertebra=extra_vertebra,
    )


def drop_unused_sacrum(
    inst: InstanceResult, classes: npt.NDArray[np.uint8], naming: Naming, spacing_mm: tuple[float, float, float]
) -> None:
    """Remove a small sacrum the naming did not accept as the S1 anchor, under a column of bodies too small to
    include L5 (in place, with a flag).

    A sacrum under cervical or upper-thoracic bodies is a false positive of the semantic model. Under
    lumbar-sized bodies a small sacrum may be a real sliver at the edge of the field of view and is kept;
    so is a large one. Sacral bodies named from the disc pattern keep their S1 instance label."""
    sacrum_mm3 = inst.sacrum_voxels * float(np.prod(spacing_mm))
    if not inst.sacrum_voxels or naming.anchor in ("S1", "S1+C2") or sacrum_mm3 >= SACRUM_MIN_MM3:
        return
    depths = sorted(v.depth_mm for v in inst.vertebrae)
    if depths and depths[len(depths) // 2] >= L5_MIN_DEPTH_MM:
        return
    where = inst.instances == SACRUM_TMP
    classes[where & (classes == C.SACRUM)] = C.BG
    inst.instances[where] = 0
    inst.sacrum_voxels = 0
    naming.flags.append(f"a small sacrum-like region ({sacrum_mm3:.0f} mm3) not used as the anchor was removed")


def relabel(inst: InstanceResult, naming: Naming) -> tuple[npt.NDArray[np.int16], dict[int, str]]:
    """Temporary instance ids (1..N, 100+k, 200+k) -> SPINEPS level ids (20 = L1, 120, 220, 26)."""
    n = len(inst.vertebrae)
    lut = np.zeros(ENDPLATE_OFFSET + n + 1, dtype=np.int16)
    names: dict[int, str] = {}
    levels = naming.levels
    for k in range(1, n + 1):
        lvl = levels[k - 1] if k - 1 < len(levels) else 0
        lut[k] = lvl
        if lvl:
            names[lvl] = VERTEBRA_NAMES[lvl]
    above_top = disc_above_top(levels[0]) if levels and levels[0] else 0
    for k in range(0, n + 1):
        lvl = (levels[k - 1] if k - 1 < len(levels) else 0) if k >= 1 else above_top
        if lvl == VERTEBRA_IDS["S1"]:  # sacral segments named from the disc pattern: no disc/endplate below S1
            lvl = 0
        lut[DISC_OFFSET + k] = DISC_OFFSET + lvl if lvl else 0
        lut[ENDPLATE_OFFSET + k] = ENDPLATE_OFFSET + lvl if lvl else 0
    src = inst.instances.astype(np.int64)
    out = np.zeros(src.shape, dtype=np.int16)
    sac = src == SACRUM_TMP
    ok = (src > 0) & (src < lut.size) & ~sac
    out[ok] = lut[src[ok]]
    out[sac] = 26
    if inst.sacrum_voxels:
        names[26] = "S1"
    return out, names


def segment(
    vol: Volume,
    *,
    threads: int = 2,
    model: str = SEMANTIC_MODEL,
    extra_vertebra: str | None = None,
    cleanup: bool = True,
    cord: bool = True,
) -> SpineSegmentation:
    """Run both phases and naming on a loaded volume (no files written).

    ``extra_vertebra`` ("l6", "t13" or None): name of the 24th presacral vertebra, see ``naming.name_levels``.
    ``cleanup``: the anatomy clean-up of ``neurospine.spine.cleanup`` and the sacral arch given to the sacrum
    (``instances.build_instances(sacral_arch=)``); off only to measure what they change.
    ``cord``: the cord (60) from the cord model (:mod:`neurospine.spine.cordfusion`); off, the network's own."""
    from neurospine.models import load_card

    timings: dict[str, float] = {}
    t = time.perf_counter()
    check_input(vol)
    card = load_card(model, task="spine")
    session = _session(card.name, card.sha256, int(threads))
    grid = to_model_grid(vol, inplane_mm=float(card.inputs.get("inplane_mm", 1.0)))
    timings["preprocess"] = time.perf_counter() - t
    t = time.perf_counter()
    bias = logit_bias_vector(card.inputs.get("logit_bias"))
    refiner = body_refiner(card.inputs.get("body_refiner"), threads)
    models = {card.name: card.version}
    if refiner is not None:
        spec = card.inputs["body_refiner"]
        models[str(spec["model"])] = str(spec.get("version", "?"))
    raw = predict_classes_cropped(session, grid.image, grid.spacing_mm, logit_bias=bias, refiner=refiner)
    timings["semantic_model"] = time.perf_counter() - t
    t = time.perf_counter()
    cls = clean_classes(raw, grid.spacing_mm)
    report = CleanupReport(voxel_mm3=float(np.prod(grid.spacing_mm)))
    if cleanup:
        cls, report = clean_anatomy(cls, grid.spacing_mm)
    inst = build_instances(
        cls,
        grid.spacing_mm,
        posterior_jump_mm=POSTERIOR_JUMP_MM if cleanup else float("inf"),
        sacral_arch=cleanup,
    )
    if cleanup:  # body, posterior and sacrum voxels no vertebra took are not spine
        drop_unassigned(cls, inst.instances, report)
    else:  # sacrum voxels the instance phase left unassigned (not the column's sacrum) are not sacrum
        cls[(cls == C.SACRUM) & (inst.instances == 0)] = C.BG
    naming = name_instances(inst, cls, grid.spacing_mm, extra_vertebra)
    drop_unused_sacrum(inst, cls, naming, grid.spacing_mm)
    settle_sacral_arch(cls, inst)  # after the naming, which reads the sacrum without its arch
    relabel_endplates(cls, inst, grid.spacing_mm, endplate_thickness_mm(grid.input_spacing_mm[1]))
    values = to_spineps_values(cls)
    seg_vert, names = relabel(inst, naming)
    timings["instances_naming"] = time.perf_counter() - t
    t = time.perf_counter()
    sem_in = grid.to_input(values)
    vert_in = grid.to_input(seg_vert)
    body_in = grid.to_input(body_levels(inst, naming))
    timings["to_input_grid"] = time.perf_counter() - t
    fusion = None
    if cord:
        t = time.perf_counter()
        sem_in, fusion = _cord_from_model(vol, np.asarray(sem_in, dtype=np.uint8), body_in, naming, threads)
        if fusion.ran:
            models[CORD_MODEL] = fusion.model_version
        timings["cord_model"] = time.perf_counter() - t
    return SpineSegmentation(
        grid,
        cls,
        inst,
        naming,
        seg_vert,
        sem_in.astype(np.uint8),
        vert_in.astype(np.int16),
        body_in.astype(np.int16),
        names,
        card.version,
        timings,
        models,
        report,
        fusion,
    )


def _cord_from_model(
    vol: Volume, semantic: npt.NDArray[np.uint8], body_in: npt.NDArray[np.generic], naming: Naming, threads: int
) -> tuple[npt.NDArray[np.uint8], CordFusion]:
    from neurospine.models import load_card

    card = load_card(CORD_MODEL, task="cord")
    return fuse(
        vol,
        semantic,
        np.asarray(body_in, dtype=np.int16),
        card,
        lambda: _session(card.name, card.sha256, int(threads)),
        use_levels=not naming.positional,
    )


def body_levels(inst: InstanceResult, naming: Naming) -> npt.NDArray[np.int16]:
    """The body map (corpus + endplates per vertebra) with level ids; unnamed bodies get 300 + rank."""
    n = len(inst.vertebrae)
    lut = np.zeros(n + 1, dtype=np.int16)
    for k in range(1, n + 1):
        level = naming.levels[k - 1] if k - 1 < len(naming.levels) else 0
        lut[k] = level if level else 300 + k
    return lut[np.asarray(inst.body, dtype=np.int64)]


def snapshot_names(seg: SpineSegmentation) -> dict[int, str]:
    """Level names for the snapshot: a name whose level is uncertain (or every name, when the naming confidence is
    below the snapshot's doubt line) carries a "?"."""
    doubtful = seg.naming.confidence < CONFIDENT or seg.naming.positional
    uncertain = set(seg.naming.uncertain_levels)
    return {k: f"{v}?" if doubtful or k in uncertain else v for k, v in seg.names.items()}


def naming_doubt(naming: Naming) -> str:
    """Why the names may be wrong, for the snapshot: the note of the uncertain levels, else the latest flag (the
    flags are added as the naming goes, so the last one is the latest doubt)."""
    if naming.uncertain_levels:
        return naming.uncertain_note
    return naming.flags[-1] if naming.flags else ""


def uncertain_notes(naming: Naming) -> dict[int, str]:
    """CSV notes for the ``seg-vert`` labels whose names rest on an unresolved choice (vertebrae and their discs)."""
    notes: dict[int, str] = {}
    for level in naming.uncertain_levels:
        notes[level] = notes[DISC_OFFSET + level] = naming.uncertain_note
    return notes


def run_file(image_path: str | Path, out_dir: str | Path, *, threads: int = 2, **options: Any) -> TaskResult:
    """Segment the spine in ``image_path`` and write the five outputs into ``out_dir``.

    Options: ``model`` (card name, default ``spine_semantic``), ``snapshot`` (bool, default True),
    ``extra_vertebra`` ("l6" or "t13": what to call the extra vertebra when 24 presacral vertebrae lie between
    C2 and S1; default None = L6, flagged as undecidable without rib information), ``force`` (run an input the
    plausibility check refuses, flagged; :mod:`neurospine.plausibility.spine`), ``cord`` (bool, default True:
    the cord label from the cord model, :mod:`neurospine.spine.cordfusion`).
    Returns a :class:`~neurospine.results.TaskResult` with output paths, per-level measures, model
    versions, timings and naming warnings.
    """
    from neurospine.spine import outputs as O

    t0 = time.perf_counter()
    extra = options.get("extra_vertebra")
    if extra is not None and str(extra).lower() not in EXTRA_VERTEBRA_CHOICES:
        raise InputError(None, f"extra_vertebra={extra!r} is not a known choice", "use 'l6', 't13' or leave it unset")
    extra_vertebra = None if extra is None else str(extra).lower()
    vol = load_volume(image_path)
    from neurospine.plausibility import enforce
    from neurospine.plausibility import spine as plaus
    from neurospine.plausibility.common import evidence

    ev = evidence(vol)
    force = bool(options.get("force", False))
    before = enforce(plaus.pre_check(ev), image_path, force=force)  # before the model runs (a label map)
    seg = segment(
        vol,
        threads=threads,
        model=str(options.get("model", SEMANTIC_MODEL)),
        extra_vertebra=extra_vertebra,
        cord=bool(options.get("cord", True)),
    )
    verdict = enforce(plaus.check(vol, seg, ev), image_path, force=force).merge(before)
    paths = output_paths(image_path, out_dir)
    t = time.perf_counter()
    save_like(seg.semantic_input, vol, paths["semantic"])
    save_like(seg.seg_vert_input, vol, paths["instances"])
    rows = O.structure_rows(seg.seg_vert_input, seg.semantic_input, vol, seg.body_input)
    info = {
        "pipeline": "neurospine spine",
        "models": dict(seg.models),
        "naming": {
            "anchor": seg.naming.anchor,
            "confidence": round(seg.naming.confidence, 3),
            "positional": seg.naming.positional,
            "flags": seg.naming.flags,
            "extra_vertebra": extra_vertebra,
        },
        "cleanup": seg.cleanup.as_dict(),
        "cord": seg.cord.as_dict(vol.voxel_volume_mm3) if seg.cord is not None else None,
        "source": str(image_path),
        "plausibility": verdict.field,
        "centroid": "vertebral body (corpus) centre of mass; sacrum for S1",
    }
    O.write_centroids(paths["centroids"], rows, vol, info)
    O.write_table(paths["table"], rows, positional=seg.naming.positional, notes=uncertain_notes(seg.naming))
    outputs = dict(paths)
    if options.get("snapshot", True):
        O.write_snapshot(
            paths["snapshot"],
            seg.grid.image,
            seg.seg_vert_model,
            seg.grid.spacing_mm,
            snapshot_names(seg),
            f"{stem_of(image_path)}: mid-sagittal slice; right, the segmentation with level names",
            naming_line=O.naming_sentence(
                seg.naming.anchor,
                seg.naming.confidence,
                naming_doubt(seg.naming),
                uncertain=bool(seg.naming.uncertain_levels),
            ),
            body_pir=np.isin(seg.classes, (C.CORPUS, C.ENDPLATE)),
        )
    else:
        outputs.pop("snapshot")
    timings = dict(seg.timings_s)
    timings["write_outputs"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    measures: dict[str, float | int | str | None] = {
        "n_vertebrae": sum(1 for r in rows if r.kind == "vertebra"),
        "levels": " ".join(r.level for r in rows if r.kind in ("vertebra", "sacrum")),
        "naming_anchor": seg.naming.anchor,
        "naming_confidence": round(seg.naming.confidence, 3),
        "naming_positional": int(seg.naming.positional),
        "plausibility": verdict.field,
        "cleanup_removed_mm3": round(seg.cleanup.total_voxels * seg.cleanup.voxel_mm3, 1),
    }
    for r in rows:
        if r.kind in ("vertebra", "sacrum", "disc"):
            measures[f"volume_mm3_{r.level}"] = round(r.volume_mm3, 1)
        if r.body_volume_mm3 is not None:
            measures[f"body_volume_mm3_{r.level}"] = round(r.body_volume_mm3, 1)
    # cut by the field of view: their volumes are partial (whole vertebra; vertebral body); after the volumes, which
    # the QC page shows first
    measures["levels_at_field_edge"] = " ".join(
        r.level for r in rows if r.kind in ("vertebra", "sacrum") and r.field_edge
    )
    measures["bodies_at_field_edge"] = " ".join(r.level for r in rows if r.body_field_edge)
    warnings = list(seg.naming.flags)
    if seg.cord is not None and seg.cord.canal_note:
        warnings.append(f"cord ({CORD_MODEL}): {seg.cord.canal_note}")
    if seg.cord is not None and seg.cord.ran and not seg.cord.written_voxels:
        warnings.append(f"the cord model ({CORD_MODEL}) gave no spinal cord: the mask has no cord label")
    if not rows:
        warnings.append("no vertebra, disc or sacrum found")
    if verdict.note:
        warnings.append(verdict.note)
    log.info(
        "spine: %s -> %d vertebrae (%s) in %.2f s",
        image_path,
        measures["n_vertebrae"],
        seg.naming.anchor,
        timings["total"],
    )
    return TaskResult(
        TASK,
        str(image_path),
        outputs,
        measures,
        dict(seg.models),
        timings,
        warnings,
        {"naming": info["naming"], "split_bodies": seg.instances.split_bodies, "cleanup": info["cleanup"]},
    )
