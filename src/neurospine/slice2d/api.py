"""Public API: ``run_file`` segments one image and writes mask, overlay, radiomics and heights."""

from __future__ import annotations

import csv
import io
import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from neurospine.errors import InputError
from neurospine.io import Volume, atomic_path, save_like, stem_of, write_text_atomic
from neurospine.results import TaskResult
from neurospine.slice2d import heights as hgt
from neurospine.slice2d.count_confidence import FLAG_BELOW as COUNT_FLAG_BELOW
from neurospine.slice2d.count_confidence import count_confidence
from neurospine.slice2d.instances import Instances2D, build_instances
from neurospine.slice2d.io2d import (
    ASSUMED_FOV_MM,
    LoadedInput,
    Plane2D,
    canonical_slice_index,
    input_slice_index,
    load_input,
)
from neurospine.slice2d.modality import ModalityGuess, guess_modality
from neurospine.slice2d.normalize import normalize_image
from neurospine.slice2d.qc import write_overlay
from neurospine.slice2d.radiomics import DEFAULT_OUTLIER_SIGMA, FEATURES, image_binning, region_features
from neurospine.slice2d.segment import MODEL_NAME, card_logit_bias, segment_plane
from neurospine.slice2d.slice_choice import body_score, choose_slice

log = logging.getLogger(__name__)

TASK = "slice2d"
#: Text of the ``lordosis_definition`` column of ``<stem>_heights.csv``.
LORDOSIS_DEFINITION = (
    "Cobb angle in the image plane between the L1 superior endplate and the {lower} endplate "
    "(lines fitted in mm to the middle 80 % of each endplate boundary); degrees, positive = lordotic"
)
#: ``lordosis_definition`` of a withheld angle (the reason is in ``lordosis_note``).
LORDOSIS_WITHHELD = "not measured: no reliable L1 superior and S1 superior / L5 inferior endplate (see lordosis_note)"
#: Levels whose presence (anchored naming) makes the heights CSV carry a lordosis row, measured or not.
_LUMBAR_SACRAL = frozenset({"L1", "L2", "L3", "L4", "L5", "S1"})


#: Output key -> file name suffix after ``<stem>``.
OUTPUT_SUFFIXES: dict[str, str] = {
    "mask": "_slice2d_msk.nii.gz",
    "overlay": "_slice2d.png",
    "radiomics": "_radiomics.csv",
    "heights": "_heights.csv",
}


def output_paths(image_path: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Where ``run_file`` writes each output for ``image_path``."""
    stem = stem_of(image_path)
    return {key: Path(out_dir) / f"{stem}{suffix}" for key, suffix in OUTPUT_SUFFIXES.items()}


def run_file(
    image_path: str | Path,
    out_dir: str | Path,
    *,
    threads: int = 2,
    modality: str | None = None,
    slice_index: int | None = None,
    lowest_level: str | None = None,
    outlier_sigma: float | None = DEFAULT_OUTLIER_SIGMA,
    pixel_mm: float | None = None,
    force: bool = False,
) -> TaskResult:
    """Segment vertebral bodies and discs on one 2D image or one sagittal slice of a 3D volume.

    ``slice_index`` is the 0-based index along the input's stored left-right voxel axis (3D inputs only;
    default: automatic choice). ``lowest_level`` (e.g. ``"S1"``) names the most inferior body in view and
    so all levels; without it ids are positional. Outputs in ``out_dir``: ``<stem>_slice2d_msk.nii.gz``
    (3D input: a volume on the input grid with only the chosen slice filled; 2D input: the input's grid),
    ``<stem>_slice2d.png``, ``<stem>_radiomics.csv``, ``<stem>_heights.csv``. ``outlier_sigma``: radiomics
    re-segmentation (drop region pixels beyond mean +- that many sd; None = keep all; docs/radiomics.md).
    ``pixel_mm``: in-plane pixel size (mm) of a 2D input, replacing the stored one (or the one assumed when
    the file has none or an implausible one, see :mod:`neurospine.slice2d.io2d`). ``force``: run an input the
    plausibility check refuses, flagged (:mod:`neurospine.plausibility.slice2d`).
    """
    from neurospine.inference.onnx import onnx_session
    from neurospine.models import load_card

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    path = Path(image_path)
    out = Path(out_dir)
    loaded = load_input(path, pixel_mm=pixel_mm)
    timings["load_s"] = time.perf_counter() - t0
    from neurospine.plausibility import enforce
    from neurospine.plausibility import slice2d as plaus

    verdict = enforce(plaus.pre_check_loaded(loaded), path, force=force)
    warnings: list[str] = []
    card = load_card(MODEL_NAME)
    session = onnx_session(card, threads=threads)

    guess = input_modality(loaded, modality)
    mod, how = guess.modality, guess.how
    if not guess.certain:
        log.warning("%s: modality uncertain, taken as %s (%s); give --modality to override", path, mod, how)
        warnings.append(f"modality uncertain, taken as {mod} ({how}); give --modality mr|ct|xray to override")
    bias = card_logit_bias(card.inputs, mod)
    t1 = time.perf_counter()
    chosen: int | None = None
    choice_how = ""
    if loaded.kind == "volume":
        assert loaded.canonical is not None
        if slice_index is not None:
            if not 0 <= slice_index < loaded.n_slices():
                raise InputError(
                    path,
                    f"--slice {slice_index} is outside 0..{loaded.n_slices() - 1}",
                    "give an index along the image's left-right voxel axis",
                )
            chosen = canonical_slice_index(loaded, slice_index)
            choice_how = "given (--slice)"
        else:

            def score(k: int) -> tuple[int, float]:
                pl = loaded.slice_plane(k)
                sem = segment_plane(session, pl, mod, bias)
                inst = build_instances(sem.labels, sem.probs, pl.spacing_mm)
                px_mm2 = pl.spacing_mm[0] * pl.spacing_mm[1]
                return body_score([float(b.mask.sum()) * px_mm2 for b in inst.bodies])

            choice = choose_slice(loaded.n_slices(), loaded.canonical.spacing_mm[2], score)
            chosen, choice_how = choice.index, choice.how
        plane = loaded.slice_plane(chosen)
    else:
        if slice_index not in (None, 0):
            raise InputError(path, "--slice was given but the input is a single 2D image", "omit --slice")
        assert loaded.plane is not None
        plane = loaded.plane
    timings["slice_choice_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    sem = segment_plane(session, plane, mod, bias)
    inst = build_instances(sem.labels, sem.probs, plane.spacing_mm, lowest_level=lowest_level)
    timings["segment_s"] = time.perf_counter() - t2
    count_conf = count_confidence(inst, sem.probs, plane.spacing_mm)
    plaus.post_check(
        verdict,
        inst,
        plane.spacing_mm,
        modality=mod,
        spacing_known=plane.spacing_known,
        is_2d=loaded.kind != "volume",
        modality_certain=guess.certain,
        body_probability=count_conf.body_probability,
    )
    enforce(verdict, path, force=force)
    if not plane.spacing_known:
        why = f" ({plane.spacing_note})" if plane.spacing_note else ""
        warnings.append(
            f"pixel spacing unknown{why}: assumed {plane.spacing_mm[0]:.3f} mm (longest side = "
            f"{ASSUMED_FOV_MM:.0f} mm); heights are not in true mm; give --pixel-mm to set it"
        )
    if not plane.orientation_known:
        warnings.append("orientation unknown: image taken as displayed (top = superior, left = anterior)")
    if inst.naming == "positional":
        warnings.append(
            "levels not anchored: ids are positional (1 = most superior body); give lowest_level to name them"
        )
    if not inst.bodies:
        warnings.append("no vertebral body found")
    if verdict.note:
        warnings.append(verdict.note)
    if count_conf.flagged and inst.bodies:
        warnings.append(
            f"body count uncertain (count_confidence {count_conf.confidence:.2f} < {COUNT_FLAG_BELOW}: "
            f"{'; '.join(count_conf.reasons)}); check the overlay"
        )

    stem = stem_of(path)
    out.mkdir(parents=True, exist_ok=True)
    paths = output_paths(path, out)
    mask_path = paths["mask"]
    _write_mask(loaded, chosen, inst, mask_path)
    png_path = paths["overlay"]
    title = f"{stem}  {mod}" + (f"  slice {input_slice_index(loaded, chosen)}" if chosen is not None else "")
    write_overlay(png_path, normalize_image(plane.pixels, mod), inst, plane.spacing_mm, title)
    rad_rows = radiomics_rows(plane, inst, outlier_sigma=outlier_sigma)
    h_rows, lordosis = height_rows(plane, inst)
    rad_path = write_text_atomic(paths["radiomics"], _csv(rad_rows))
    h_path = write_text_atomic(paths["heights"], _csv(h_rows))
    px_anatomy = None
    if loaded.kind != "volume" and mod == "xray":  # radiographs: check the scale against the anatomy
        from neurospine.plausibility.scale import scale_warning

        px_anatomy = anatomy_pixel_mm(session, plane, mod, bias)
        scale_note = scale_warning(px_anatomy, plane.spacing_mm[1], given=plane.spacing_known)
        if scale_note:
            warnings.append(scale_note)
    timings["total_s"] = time.perf_counter() - t0

    measures: dict[str, float | int | str | None] = {
        "n_bodies": len(inst.bodies),
        "n_discs": len(inst.discs),
        "modality": mod,
        "naming": inst.naming,
        "plausibility": verdict.field,
        "pixel_mm_anatomy": None if px_anatomy is None else round(px_anatomy, 4),
    }
    if lordosis is not None:
        measures["lordosis_deg"] = round(lordosis, 2)
    for r in h_rows:
        if r["kind"] == "angle":
            if r["lordosis_note"]:
                measures["lordosis_note"] = r["lordosis_note"]
            if r["lordosis_deg"] == "":
                warnings.append(f"lumbar lordosis not measured: {r['lordosis_note']}")
    for r in h_rows:
        if r["kind"] == "body":
            measures[f"wedge_ratio_{r['name']}"] = r["wedge_ratio"]
    # appended last: existing columns keep their order (benchmarks/results/slice2d_count.md)
    measures["count_confidence"] = count_conf.confidence
    measures["count_flag"] = count_conf.flagged
    return TaskResult(
        task=TASK,
        input_path=str(path),
        outputs={"mask": mask_path, "overlay": png_path, "radiomics": rad_path, "heights": h_path},
        measures=measures,
        models={card.name: card.version},
        timings_s={k: round(v, 4) for k, v in timings.items()},
        warnings=warnings,
        extra={
            "modality_how": how,
            "slice_canonical": chosen,
            "slice_input": None if chosen is None else input_slice_index(loaded, chosen),
            "slice_how": choice_how,
            "spacing_mm": plane.spacing_mm,
            "spacing_known": plane.spacing_known,
            "spacing_note": plane.spacing_note,
            "radiomics_outlier_sigma": outlier_sigma,
        },
    )


#: long side (pixels) of the copy of a radiograph on which trial pixel sizes are run (the model reads 1.25 mm)
SCALE_TRIAL_PX = 480


def anatomy_pixel_mm(session: Any, plane: Plane2D, modality: str, bias: Any) -> float | None:
    """The pixel size (mm) at which the bodies the model finds have adult depth, independent of ``plane``'s own
    (:func:`neurospine.plausibility.scale.self_consistent_pixel_mm`, run on a reduced copy; trial sizes of
    radiographs for ``modality`` "xray", of MR/CT sections otherwise)."""
    from neurospine.plausibility.scale import SECTION_GRID_MM, radiograph_grid_mm, self_consistent_pixel_mm

    small, shrink = _shrunk(plane.pixels)

    def rows_at(pixel: float) -> list[dict[str, Any]]:
        trial = replace(plane, pixels=small, spacing_mm=(pixel * shrink, pixel * shrink))
        sem_t = segment_plane(session, trial, modality, bias)
        return height_rows(trial, build_instances(sem_t.labels, sem_t.probs, trial.spacing_mm))[0]

    grid = radiograph_grid_mm(max(plane.pixels.shape)) if modality == "xray" else SECTION_GRID_MM
    return self_consistent_pixel_mm(rows_at, grid)


def _shrunk(pixels: Any) -> tuple[Any, float]:
    """``pixels`` reduced to at most :data:`SCALE_TRIAL_PX` on the long side, and the factor its pixels grew by."""
    from scipy import ndimage

    long_side = max(pixels.shape)
    if long_side <= SCALE_TRIAL_PX:
        return pixels, 1.0
    zoom = SCALE_TRIAL_PX / long_side
    small = ndimage.zoom(np.asarray(pixels, dtype=np.float32), zoom, order=1)
    return small, float(pixels.shape[0]) / float(small.shape[0])


def input_modality(loaded: LoadedInput, override: str | None = None) -> ModalityGuess:
    """The modality of a loaded input as ``run_file`` decides it (``override`` = ``--modality``)."""
    if loaded.canonical is not None:
        return guess_modality(
            np.asarray(loaded.canonical.data), is_volume=True, dicom_modality=loaded.modality_tag, override=override
        )
    assert loaded.plane is not None
    return plane_modality(loaded.plane, dicom_modality=loaded.modality_tag, override=override)


def plane_modality(plane: Plane2D, *, dicom_modality: str | None = None, override: str | None = None) -> ModalityGuess:
    """The modality of one 2D plane (a 2D file, or a slice exported from a volume), as ``run_file`` decides it."""
    return guess_modality(
        plane.pixels,
        is_volume=False,
        dicom_modality=dicom_modality,
        override=override,
        spacing_mm=plane.spacing_mm if plane.spacing_known else None,
    )


def _write_mask(loaded: LoadedInput, chosen: int | None, inst: Instances2D, path: Path) -> None:
    lab = inst.label_map.astype(np.int16)
    if loaded.kind == "volume":
        assert (
            loaded.canonical is not None
            and loaded.record is not None
            and loaded.volume is not None
            and chosen is not None
        )
        vol = np.zeros(loaded.canonical.shape, np.int16)
        vol[:, :, chosen] = lab
        save_like(loaded.record.undo(vol), loaded.volume, path)
        return
    assert loaded.plane is not None and loaded.affine2d is not None
    arr2d = loaded.plane.from_canonical(lab)
    arr = np.moveaxis(arr2d[:, :, None], 2, loaded.singleton_axis)
    dtype = np.uint8 if int(lab.max(initial=0)) < 256 else np.int16
    img = nib.Nifti1Image(np.ascontiguousarray(arr).astype(dtype), loaded.affine2d)
    img.set_qform(loaded.affine2d, code=1)
    img.set_sform(loaded.affine2d, code=1)
    img.header.set_intent("label")
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def radiomics_rows(
    plane: Plane2D, inst: Instances2D, *, outlier_sigma: float | None = DEFAULT_OUTLIER_SIGMA
) -> list[dict[str, Any]]:
    rows = []
    binning = image_binning(plane.pixels)  # one intensity scale for every region of the image
    for item in [*inst.bodies, *inst.discs]:
        feats = region_features(plane.pixels, item.mask, binning, outlier_sigma=outlier_sigma)
        rows.append({"label": item.value, "name": item.name, "kind": item.kind, **{k: _r(feats[k]) for k in FEATURES}})
    return rows


def height_rows(plane: Plane2D, inst: Instances2D) -> tuple[list[dict[str, Any]], float | None]:
    sp = plane.spacing_mm
    frames = hgt.neighbour_frames([b.centroid_rc for b in inst.bodies], sp)
    rows: list[dict[str, Any]] = []
    for b, fr in zip(inst.bodies, frames, strict=True):
        m = hgt.body_measures(b.mask, sp, fr)
        rows.append({"label": b.value, "name": b.name, "kind": "body", **{k: _r(v) for k, v in m.items()}})
    body_rows = [b.centroid_rc for b in inst.bodies]
    for dsc in inst.discs:
        # frame from the bodies around the disc
        r = dsc.centroid_rc[0]
        above = [c for c in body_rows if c[0] < r]
        below = [c for c in body_rows if c[0] > r]
        fr = None
        if above and below:
            fr = hgt.frame_from_direction((np.asarray(below[0]) - np.asarray(above[-1])) * np.asarray(sp))
        m = hgt.disc_measures(dsc.mask, sp, fr)
        rows.append(
            {
                "label": dsc.value,
                "name": dsc.name,
                "kind": "disc",
                **{
                    "anterior_height_mm": _r(m["anterior_height_mm"]),
                    "middle_height_mm": _r(m["centre_height_mm"]),
                    "posterior_height_mm": _r(m["posterior_height_mm"]),
                    "mean_height_mm": _r(m["mean_height_mm"]),
                    "ap_width_mm": _r(m["ap_width_mm"]),
                    "area_mm2": _r(m["area_mm2"]),
                },
            }
        )
    lordosis = None
    if inst.naming == "anchored" and _LUMBAR_SACRAL & {b.name for b in inst.bodies}:
        column = [hgt.ColumnBody(b.name, b.mask, b.centroid_rc) for b in inst.bodies]
        # no disc found at all: the disc class is not usable here, so the disc check is off
        discs = {d.name for d in inst.discs} or None
        res = hgt.lumbar_lordosis(column, sp, discs)
        if res.deg is not None:
            lordosis = res.deg
            which = "S1 superior" if res.lower == "S1" else "L5 inferior"
            rows.append(
                {
                    "label": "",
                    "name": f"lumbar_lordosis_L1_{res.lower}",
                    "kind": "angle",
                    "lordosis_deg": _r(lordosis),
                    "lordosis_definition": LORDOSIS_DEFINITION.format(lower=which),
                    "lordosis_note": res.note,
                }
            )
        else:
            log.info("lumbar lordosis withheld: %s", res.note)
            rows.append(
                {
                    "label": "",
                    "name": "lumbar_lordosis",
                    "kind": "angle",
                    "lordosis_deg": "",
                    "lordosis_definition": LORDOSIS_WITHHELD,
                    "lordosis_note": res.note,
                }
            )
    return rows, lordosis


def _r(v: float) -> float:
    return float("nan") if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), 5)


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "label,name,kind\n"
    keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in keys:
                keys.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in keys})
    return buf.getvalue()


def load_volume_mask(path: str | Path) -> Volume:
    """Read a written mask back (helper for tests and QC)."""
    from neurospine.io import load_volume

    return load_volume(path, check_intensity=False)
