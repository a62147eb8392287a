"""Public API: ``run_file`` segments the cord in one image and measures it."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from neurospine.cord.conus import below_conus, flag_warning
from neurospine.cord.disclevels import cervical_levels
from neurospine.cord.headmidline import midline_test
from neurospine.cord.incanal import ensure_in_canal, not_found_reason
from neurospine.cord.levelconfidence import calibrated_confidence, level_group
from neurospine.cord.levelconfidence import describe as describe_level_confidence
from neurospine.cord.levels import level_name
from neurospine.cord.lostend import flag_warning as lost_end_warning
from neurospine.cord.morphometry import left_out, measure_cord
from neurospine.cord.segment import (
    MODEL_NAME,
    CordSegmentation,
    SegmentOptions,
    onnx_predictor,
    segment_volume,
)
from neurospine.cord.spinelevels import (
    LEVELS_FIX,
    LevelEstimate,
    SpineReading,
    estimate_levels,
    levels_from_mask,
    read_spine,
)
from neurospine.errors import GeometryError, InputError, NoStructureFoundError
from neurospine.io import Volume, load_volume, resample_like, save_like, write_text_atomic
from neurospine.results import TaskResult

log = logging.getLogger(__name__)
#: level names possible on a head MRI
CERVICAL = frozenset(f"C{i}" for i in range(1, 8))
#: QC footnote for the tiles of slices left out of the summaries
LEFT_OUT_NOTE = "'*': left out of the per-level CSA and the mean (below the conus, or where the cord fades out)"

TASK = "cord"


def output_paths(stem: str, out_dir: Path) -> dict[str, Path]:
    return {
        "cord_soft": out_dir / f"{stem}_seg-cord_soft.nii.gz",
        "cord_mask": out_dir / f"{stem}_seg-cord_msk.nii.gz",
        "canal_mask": out_dir / f"{stem}_seg-canal_msk.nii.gz",
        "csa": out_dir / f"{stem}_csa.csv",
        "csa_perlevel": out_dir / f"{stem}_csa_perlevel.csv",
        "qc": out_dir / f"{stem}_qc-cord.png",
        "gm_mask": out_dir / f"{stem}_seg-gm_msk.nii.gz",  # written with the ``gm`` option only
    }


def load_levels(path: str | Path, image: Volume) -> Volume:
    """A level mask on the image grid (resampled with nearest neighbour when its grid differs)."""
    lev = load_volume(path, check_intensity=False)
    if not np.issubdtype(np.asarray(lev.data).dtype, np.integer) and not np.allclose(lev.data, np.round(lev.data)):
        raise InputError(path, "the level mask holds non-integer values", "give a label map with vertebra ids")
    if not np.any(lev.data):
        raise InputError(path, "the level mask is empty", "give a seg-vert mask or a cord-by-level mask")
    from neurospine.plausibility.common import LABEL_MAP_MAX_VALUES

    n_values = np.unique(np.asarray(lev.data)).size
    if n_values > LABEL_MAP_MAX_VALUES:
        raise InputError(
            path,
            f"the level mask holds {n_values} distinct values, like an image (a level mask has a few label ids)",
            "give a seg-vert mask (neurospine spine) or a cord-by-level mask, not the image",
        )
    if lev.same_grid(image):
        return lev
    log.warning("%s is not on the image grid: resampled (nearest neighbour)", path)
    out = resample_like(lev, image, order=0)
    if not np.any(out.data):
        raise GeometryError(path, "the level mask does not overlap the image", "give the mask made from this image")
    return out


def _levels(
    image: Volume,
    soft: np.ndarray,
    level_vol: Volume | None,
    auto: bool,
    threads: int,
    reading: SpineReading | None = None,
    *,
    head: bool = False,
) -> tuple[Volume | None, LevelEstimate]:
    """The level mask to measure with and its provenance (``--levels`` first, then the spine model, whose run
    on the image ``reading`` may already hold). On a head MRI (``head``) the spine model's names count only when
    they are counted down from C2 or all cervical (docs/decisions/cord-head-levels.md)."""
    if level_vol is not None:
        given = levels_from_mask(level_vol.data, soft, image)
        return (level_vol if given.mask is None else image.with_data(given.mask)), given
    if not auto:
        return None, LevelEstimate(None, "none")
    est = estimate_levels(image, soft, threads=threads, reading=reading)
    reason = _head_naming_problem(est) if head else None
    if reason is not None:
        est = _without_names(est, f"{reason}; {LEVELS_FIX}")
    if est.mask is None:
        est = _disc_fallback(image, soft, est)
        if reason is not None and est.from_discs:  # say which names were not used, and why
            est.warnings.insert(0, reason)
    return (None if est.mask is None else image.with_data(est.mask)), est


def _cervical_only(mask: npt.NDArray[np.integer]) -> bool:
    """Whether every level a cord-by-level mask names is C1-C7."""
    ids = [int(v) for v in np.unique(np.asarray(mask)) if v]
    return all(level_name(v) in CERVICAL for v in ids)


def _head_naming_problem(est: LevelEstimate) -> str | None:
    """Why the spine model's names cannot name a head MRI's cord (``None``: they can). A head MRI's field ends in
    the neck: a naming counted down from C2 may reach T1-T2 there, any other must stay cervical (on one IXI head T1w
    looked at, the tongue had been named L2-L5; docs/decisions/cord-head-levels.md, amendments 1 and 2)."""
    if est.mask is None or "C2" in est.anchor or _cervical_only(est.mask):
        return None
    names = " ".join(level_name(int(v)) for v in np.unique(np.asarray(est.mask)) if v)
    log.info("cord levels of the spine model dropped on a head MRI (anchor %s: %s)", est.anchor, names)
    return (
        f"no vertebral levels from the whole-spine model: a head MRI shows cervical vertebrae only, and it named "
        f"{names} without counting down from C2 (naming {est.anchor}, confidence {est.confidence or 0.0:.2f})"
    )


def _without_names(est: LevelEstimate, warning: str) -> LevelEstimate:
    """``est`` with its names dropped (source ``none``) and ``warning`` in place of its warnings."""
    return LevelEstimate(
        None,
        "none",
        est.anchor,
        est.confidence,
        warnings=[warning],
        seconds=est.seconds,
        models=dict(est.models),
    )


def _disc_fallback(image: Volume, soft: np.ndarray, est: LevelEstimate) -> LevelEstimate:
    """When the spine model names nothing: cervical levels from the discs in front of the cord (positional)."""
    t0 = time.perf_counter()
    found = cervical_levels(image, soft)
    if found.mask is None:
        log.info("no disc-based cervical levels: %s", found.reason)
        return est
    names = " ".join(dict.fromkeys(level_name(int(v)) for v in np.unique(found.mask) if v))
    warning = (
        f"vertebral levels named from {len(found.discs_mm)} discs seen in front of the cord ({names}; spacing "
        f"{found.period_mm:.0f} mm), because the whole-spine model gave no names to use; the naming is positional: "
        "the top disc seen is taken as C2/C3, so the names are too high if the image starts below C2; check the QC "
        "image or give --levels VERT_MASK"
    )
    return LevelEstimate(
        found.mask.astype(np.int16),
        "estimated",
        "positional",
        0.2,
        warnings=[warning],
        seconds=est.seconds + time.perf_counter() - t0,
        models=est.models,
        from_discs=True,
    )


def run_file(
    image_path: str | Path,
    out_dir: str | Path,
    *,
    threads: int = 2,
    levels: str | Path | None = None,
    auto_levels: bool = True,
    **options: Any,
) -> TaskResult:
    """Segment the cord (soft) and canal in ``image_path``, write masks, CSA tables and a QC PNG to ``out_dir``.

    ``levels`` is a vertebral level mask (``seg-vert`` or cord-by-level) that names slices in the
    CSV and gives per-level CSA. Without it and with ``auto_levels``, levels are estimated with the
    whole-spine model when it can read the image (:mod:`neurospine.cord.spinelevels`); the CSVs and the
    result say where the levels came from (``levels_source``: mask, estimated or none). Slices at L3 or
    lower (below where the conus usually ends; :mod:`neurospine.cord.conus`) are flagged in the CSV, left
    out of the per-level CSV, the ``all`` row and ``csa_mm2_mean``, and named in one warning; so are the slices
    less than 20 mm above a caudal end of the cord inside the image, or on a head MRI above the cord's lowest slice
    wherever it lies (:mod:`neurospine.cord.lostend`).
    ``options``: ``model`` (card name), ``fine_spacing_mm``,
    ``coarse_spacing_mm``, ``window_mm``, ``threshold``, ``slab_mm`` (0: no slab), ``bandwidth_mm``,
    ``predictor`` (a callable replacing the ONNX model, for tests), ``gm`` (also the grey matter: model
    ``cord_gm``, axial T2*w only; ``gm_predictor`` replaces its model in tests), ``force`` (run an input the
    plausibility check refuses, flagged; :mod:`neurospine.plausibility.cord`), ``canal_check`` (default true:
    when the spine model ran, a cord found in its bone is re-detected in its canal or refused;
    :mod:`neurospine.cord.incanal`; false only to measure what the check changes). Raises ``NoStructureFoundError``
    (after writing the QC image) when no cord is found.
    """
    from neurospine.cord.qc import write_qc

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out = Path(out_dir)
    image = load_volume(image_path)
    level_vol = load_levels(levels, image) if levels is not None else None
    paths = output_paths(image.name, out)
    gm_path = paths.pop("gm_mask")  # back in the result only when the grey matter is written
    timings["load_s"] = time.perf_counter() - t0
    from neurospine.plausibility import cord as plaus
    from neurospine.plausibility import enforce
    from neurospine.plausibility.common import evidence

    ev = evidence(image)
    verdict = enforce(plaus.pre_check(image, ev), image_path, force=bool(options.get("force", False)))
    # on a head MRI the cord leaves the skull on the midline (docs/decisions/cord-head-midline.md)
    cord_test = midline_test(image) if ev.head_in_view else None

    t = time.perf_counter()
    reading = read_spine(image, threads=threads) if level_vol is None and auto_levels else None
    timings["spine_s"] = time.perf_counter() - t
    if reading is not None and reading.seg is not None:  # CT without Hounsfield units: refused before the cord model
        from neurospine.plausibility import Verdict
        from neurospine.plausibility.spine import bright_bone_lift

        ct = plaus.bone_check(Verdict("cord", expects=plaus.EXPECTS), bright_bone_lift(reading.seg))
        verdict.merge(enforce(ct, image_path, force=bool(options.get("force", False))))  # its own reason only

    t = time.perf_counter()
    predictor = options.get("predictor")
    models: dict[str, str] = {}
    if predictor is None:
        from neurospine.inference.onnx import onnx_session
        from neurospine.models import load_card

        card = load_card(str(options.get("model", MODEL_NAME)), task="cord")
        predictor = onnx_predictor(onnx_session(card, threads=threads))
        seg_opt = SegmentOptions.from_card(card, **options)
        models[card.name] = card.version
    else:
        seg_opt = replace(
            SegmentOptions(),
            **{k: float(v) for k, v in options.items() if k in SegmentOptions.__dataclass_fields__ and v is not None},
        )
    seg: CordSegmentation = segment_volume(image, predictor, seg_opt, cord_test=cord_test)
    timings["segment_s"] = time.perf_counter() - t

    canal_check = None
    if reading is not None and reading.seg is not None and options.get("canal_check", True):
        t = time.perf_counter()
        canal_check = ensure_in_canal(image, predictor, seg_opt, seg, reading.seg.semantic_input)
        timings["canal_check_s"] = time.perf_counter() - t
        if canal_check.segmentation is not None:
            seg = canal_check.segmentation
    cord_mm3 = float(seg.cord_mask.sum()) * image.voxel_volume_mm3
    if canal_check is not None and canal_check.segmentation is None:  # a cord in bone, none found in the canal
        write_qc(image, seg.cord_mask, seg.canal_mask, paths["qc"], title=f"{image.name}: cord found in bone only")
        raise NoStructureFoundError(
            f"{image_path}: no spinal cord kept: {canal_check.warning()}. The cord model's cord (drawn on the QC "
            f"image) lies in the vertebrae the spine model found. Check that the image shows the spinal cord, or "
            f"give --levels VERT_MASK to skip this check; QC image: {paths['qc']}"
        )
    why = not_found_reason(seg, image.voxel_volume_mm3)
    if why is not None:
        write_qc(image, seg.cord_mask, seg.canal_mask, paths["qc"], title=f"{image.name}: no spinal cord found")
        raise NoStructureFoundError(
            f"{image_path}: no spinal cord found ({why}). Check "
            f"that the image shows the spinal cord (cervical to lumbar, any contrast); QC image: {paths['qc']}"
        )

    t = time.perf_counter()
    save_like(seg.cord_soft, image, paths["cord_soft"], is_label=False)
    save_like(seg.cord_mask, image, paths["cord_mask"])
    save_like(seg.canal_mask, image, paths["canal_mask"])
    timings["write_masks_s"] = time.perf_counter() - t

    gm = None
    if options.get("gm"):
        from neurospine.cord.gm import grey_matter

        t = time.perf_counter()
        gm = grey_matter(image, seg.cord_mask > 0, threads=threads, predictor=options.get("gm_predictor"))
        models.update(gm.models)
        if gm.mask is not None:
            paths["gm_mask"] = gm_path
            save_like(gm.mask, image, gm_path)
        timings["gm_s"] = time.perf_counter() - t
    gm_vol = None if gm is None or gm.mask is None else image.with_data(gm.mask)

    t = time.perf_counter()
    level_used, provenance = _levels(
        image, seg.cord_soft, level_vol, auto_levels, threads, reading, head=ev.head_in_view
    )
    models.update(provenance.models)
    timings["levels_s"] = time.perf_counter() - t

    t = time.perf_counter()
    bw = options.get("bandwidth_mm")
    kw: dict[str, Any] = {} if bw is None else {"bandwidth_mm": float(bw)}
    if provenance.mask is not None:
        kw["level_gap_mm"] = 0.0  # a painted cord-by-level mask: no gap filling beyond the projected spans
    morph = measure_cord(
        image.with_data(seg.cord_soft),
        levels=level_used,
        canal=image.with_data(seg.canal_mask),
        gm=gm_vol,
        field_bottom_fades=ev.head_in_view,  # docs/decisions/cord-lost-end.md, amendment 1
        **kw,
    )
    morph = replace(morph, levels_source=provenance.source, levels_positional=provenance.positional)
    write_text_atomic(paths["csa"], morph.csv())
    write_text_atomic(paths["csa_perlevel"], morph.per_level_csv(with_total=True))
    timings["morphometry_s"] = time.perf_counter() - t
    mean_csa = morph.mean_csa_mm2()  # the flag quotes the mean the summary reports
    if mean_csa is None:
        mean_csa = morph.mean_csa_mm2(all_slices=True)
    plaus.post_check(verdict, seg.cord_mask, image.spacing_mm, mean_csa)

    t = time.perf_counter()
    write_qc(
        image,
        seg.cord_mask,
        seg.canal_mask,
        paths["qc"],
        title=f"{image.name}: axial slices of the cord (left), sagittal view (right)",
        slice_labels=[
            (r.position_mm, r.slice, " ".join(filter(None, (r.level, "*" if left_out(r) else ""))))
            for r in morph.slices
        ],
        gm_mask=None if gm is None else gm.mask,
        footnote=LEFT_OUT_NOTE if any(left_out(r) for r in morph.slices) else "",
    )
    timings["qc_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0

    group = level_group(
        provenance.source, provenance.anchor, provenance.confidence, provenance.from_discs, provenance.naming_method
    )
    level_confidence = calibrated_confidence(group, provenance.confidence)
    warnings: list[str] = plaus.drop_sacrum_notes(list(provenance.warnings), provenance.median_body_depth_mm)
    canal_note = None if canal_check is None else canal_check.warning()
    if canal_note is not None:
        warnings.append(canal_note)
    if level_confidence is not None:
        warnings.append(describe_level_confidence(group, level_confidence))
    if verdict.note:
        warnings.append(verdict.note)
    if gm is not None:
        warnings += [w for w in (gm.note, gm.check) if w is not None]
    if level_vol is not None and not any(r.level for r in morph.slices):
        warnings.append("the level mask names no slice that holds cord; per-level CSA is empty")
    outputs = {"csv_name": paths["csa"].name, "perlevel_name": paths["csa_perlevel"].name, "qc": str(paths["qc"])}
    flags = (
        flag_warning(str(image_path), [r.level for r in morph.slices], positional=provenance.positional, **outputs),
        lost_end_warning(
            str(image_path), [bool(r.near_lost_end) for r in morph.slices], head=ev.head_in_view, **outputs
        ),
    )
    warnings += [w for w in flags if w is not None]
    measures: dict[str, float | int | str | None] = {
        "cord_volume_mm3": round(cord_mm3, 2),
        "n_slices": len(morph.slices),
        "n_slices_below_conus_level": sum(bool(below_conus(r.level)) for r in morph.slices),
        "n_slices_near_lost_end": sum(r.near_lost_end for r in morph.slices),
        # flagged slices (L3 or lower, near a lost end) are left out of the summaries
        "csa_mm2_mean": morph.mean_csa_mm2(),
        # every segmented slice, as before the flags (for tables that mix versions)
        "csa_mm2_mean_all_slices": morph.mean_csa_mm2(all_slices=True),
        "levels_source": provenance.source,
        "levels_positional": int(provenance.positional),
        "plausibility": verdict.field,
    }
    if gm is not None and gm_vol is not None:
        gm_areas = [r.gm_area_mm2 for r in morph.cord_slices()]  # as the `all` row of the per-level CSV
        measures["gm_area_mm2_mean"] = round(float(np.mean(gm_areas)), 3) if gm_areas else None
        measures["gm_wm_intensity_ratio"] = round(gm.gm_wm_ratio, 3) if np.isfinite(gm.gm_wm_ratio) else None
    if provenance.source == "estimated":
        measures["levels_anchor"] = provenance.anchor
        measures["levels_confidence"] = level_confidence
        measures["levels_naming_confidence"] = provenance.confidence
    for lv in morph.per_level():
        measures[f"csa_mm2_{lv.level}"] = round(lv.csa_mm2_mean, 3)
    return TaskResult(
        task=TASK,
        input_path=str(image_path),
        outputs=paths,
        measures=measures,
        models=models,
        timings_s={k: round(v, 4) for k, v in timings.items()},
        warnings=warnings,
        extra={
            "detected_slices": seg.detected_slices,
            "cord_in_bone": None if canal_check is None else canal_check.as_dict(),
            "plane": image.plane,
            "levels": {
                "source": provenance.source,
                "anchor": provenance.anchor,
                "confidence": level_confidence,
                "naming_confidence": provenance.confidence,
                "group": group,
                "positional": provenance.positional,
                "spans_mm": [
                    [level_name(sp.level), round(sp.lower_mm, 2), round(sp.upper_mm, 2)] for sp in provenance.spans
                ],
            },
        },
    )
