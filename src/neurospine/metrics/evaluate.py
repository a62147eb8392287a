"""Whole-volume evaluation: one tidy row per structure or instance, and CSV output.

``evaluate_volumes(pred, ref)`` compares two label maps on the same grid and returns rows (dicts
with the keys of :data:`COLUMNS`):

* ``mode="semantic"`` - one ``level="structure"`` row per label value: Dice, IoU, precision,
  recall, ASSD/HD95/HD in mm, volumes in mm³.
* ``mode="instance"`` - instances are matched within each group (vertebrae 1-99, discs 100-199,
  endplates 200-299, others ≥ 300); one ``level="instance"`` row per reference instance (matched
  ``status="tp"`` or missed ``"fn"``) and per unmatched prediction (``"fp"``), then one
  ``level="summary"`` row per group and one for ``"all"`` with TP/FP/FN, RQ, SQ (mean IoU),
  PQ and SQ/PQ on Dice.
* ``mode="auto"`` - ``instance`` when a value is a SPINEPS instance id that is not a semantic
  value (vertebra ids 1-25, 27-40, discs 101-199, endplates 201-299), else ``semantic``.

Empty masks follow :mod:`neurospine.metrics.policy`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from neurospine.errors import GeometryError, InputError
from neurospine.io import Volume, write_text_atomic
from neurospine.metrics._arrays import LabelBoxes, check_spacing
from neurospine.metrics.instances import (
    InstanceEvaluation,
    Matching,
    MatchMethod,
    as_instance_map,
    evaluate_instances,
    label_values,
    panoptic_quality,
)
from neurospine.metrics.overlap import Confusion
from neurospine.metrics.policy import EmptyPolicy
from neurospine.metrics.surface import surface_metrics

log = logging.getLogger(__name__)

Mode = Literal["semantic", "instance", "auto"]
MODES: tuple[str, ...] = ("semantic", "instance", "auto")

#: Columns of every row, in CSV order.
COLUMNS: tuple[str, ...] = (
    "mode",
    "level",
    "group",
    "label",
    "pred_label",
    "name",
    "status",
    "dice",
    "iou",
    "precision",
    "recall",
    "assd_mm",
    "hd95_mm",
    "hd_mm",
    "volume_ref_mm3",
    "volume_pred_mm3",
    "tp",
    "fp",
    "fn",
    "rq",
    "sq",
    "pq",
    "sq_dice",
    "pq_dice",
)

#: A "label map" with more distinct values than this is taken for an image passed by mistake.
MAX_LABELS = 2000

#: Instance groups: name -> (first id, last id) inclusive.
INSTANCE_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("vertebra", 1, 99),
    ("disc", 100, 199),
    ("endplate", 200, 299),
    ("other", 300, 2**62),
)


def _row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown row keys {sorted(unknown)}")
    row.update(values)
    return row


def structure_name(value: int, mode: str) -> str:
    """Readable name of a label value from :mod:`neurospine.labels` (``label_<v>`` when unknown)."""
    from neurospine import labels as lab

    try:
        return lab.semantic_info(value).name if mode == "semantic" else lab.instance_name(value)
    except KeyError:
        return f"label_{value}"


def detect_mode(*label_maps: npt.NDArray[np.integer[Any]]) -> Literal["semantic", "instance"]:
    """``instance`` if any value is a SPINEPS instance id that is not also a semantic value."""
    from neurospine.labels import SEMANTIC_LABELS

    semantic = {info.value for info in SEMANTIC_LABELS}
    values: set[int] = set()
    for arr in label_maps:
        values |= set(label_values(arr))
    instance_only = {v for v in values if v not in semantic and (1 <= v <= 40 or 101 <= v <= 299)}
    return "instance" if instance_only else "semantic"


def _group_of(value: int) -> str:
    for name, lo, hi in INSTANCE_GROUPS:
        if lo <= value <= hi:
            return name
    raise ValueError(f"label {value} is outside every instance group")


def _summary_row(group: str, matching: Matching, empty: EmptyPolicy) -> dict[str, Any]:
    quality = dataclasses.asdict(panoptic_quality(matching, empty=empty))  # tp, fp, fn, rq, sq, pq, *_dice
    return _row(mode="instance", level="summary", group=group, name=group, **quality)


def _semantic_rows(
    pred: npt.NDArray[np.integer[Any]],
    ref: npt.NDArray[np.integer[Any]],
    spacing: tuple[float, ...],
    values: Sequence[int],
    empty: EmptyPolicy,
    distances: bool,
) -> list[dict[str, Any]]:
    voxel_mm3 = float(np.prod(spacing))
    finders = (LabelBoxes(ref), LabelBoxes(pred))
    rows = []
    for v in values:
        boxes = [b for b in (find(v) for find in finders) if b is not None]
        if boxes:
            box = tuple(slice(min(b[i].start for b in boxes), max(b[i].stop for b in boxes)) for i in range(ref.ndim))
            p, r = pred[box] == v, ref[box] == v
        else:
            p = r = np.zeros((1,) * ref.ndim, dtype=bool)
        tp = int(np.count_nonzero(p & r))
        c = Confusion(tp=tp, fp=int(np.count_nonzero(p)) - tp, fn=int(np.count_nonzero(r)) - tp)
        sm = surface_metrics(p, r, spacing, empty=empty) if distances else None
        rows.append(
            _row(
                mode="semantic",
                level="structure",
                label=v,
                name=structure_name(v, "semantic"),
                dice=c.dice(empty),
                iou=c.jaccard(empty),
                precision=c.precision(empty),
                recall=c.recall(empty),
                assd_mm=sm.assd_mm if sm else math.nan,
                hd95_mm=sm.hd95_mm if sm else math.nan,
                hd_mm=sm.hd_mm if sm else math.nan,
                volume_ref_mm3=c.n_ref * voxel_mm3,
                volume_pred_mm3=c.n_pred * voxel_mm3,
            )
        )
    return rows


def _instance_rows(group: str, ev: InstanceEvaluation) -> list[dict[str, Any]]:
    rows = []
    for s in ev.instances:
        status = "tp" if s.ref_id is not None and s.pred_id is not None else "fn" if s.pred_id is None else "fp"
        named = s.ref_id if s.ref_id is not None else s.pred_id
        assert named is not None
        scores = dataclasses.asdict(s)  # dice, iou, distances and volumes use the row's column names
        label, pred_label = scores.pop("ref_id"), scores.pop("pred_id")
        rows.append(
            _row(
                mode="instance",
                level="instance",
                group=group,
                label=label,
                pred_label=pred_label,
                name=structure_name(named, "instance"),
                status=status,
                **scores,
            )
        )
    return rows


def evaluate_arrays(
    pred: npt.ArrayLike,
    ref: npt.ArrayLike,
    spacing_mm: Sequence[float],
    *,
    mode: Mode | str = "auto",
    labels: Iterable[int] | None = None,
    empty: EmptyPolicy | str = EmptyPolicy.NAN,
    match: MatchMethod | str = MatchMethod.IOU,
    threshold: float = 0.5,
    distances: bool = True,
) -> list[dict[str, Any]]:
    """Rows for two label-map arrays on the same grid (see the module docstring).

    ``labels`` restricts the evaluation to those values (default: every value present in either
    map); in semantic mode a requested label absent from both maps still gets a row (scored by the
    empty-mask policy). ``distances=False`` skips ASSD/HD95/HD (``nan``).
    Raises ``ValueError`` for mismatched shapes or non-label arrays.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    policy = EmptyPolicy.parse(empty)
    p = as_instance_map(pred, "prediction")
    r = as_instance_map(ref, "reference")
    if p.shape != r.shape:
        raise ValueError(f"prediction shape {p.shape} differs from reference shape {r.shape}")
    spacing = check_spacing(spacing_mm, r.ndim)
    chosen = detect_mode(p, r) if mode == "auto" else mode
    if mode == "auto":
        log.info("evaluation mode: %s", chosen)
    wanted = None if labels is None else sorted({int(v) for v in labels})
    if chosen == "semantic":
        if wanted is None:
            wanted = sorted(set(label_values(r)) | set(label_values(p)))
        return _semantic_rows(p, r, spacing, wanted, policy, distances)

    present = set(label_values(r)) | set(label_values(p))
    ids = present if wanted is None else present & set(wanted)
    rows: list[dict[str, Any]] = []
    total: Matching | None = None
    for group, lo, hi in INSTANCE_GROUPS:
        group_ids = sorted(v for v in ids if lo <= v <= hi)
        if not group_ids:
            continue
        ev = evaluate_instances(
            p, r, spacing, group_ids, method=match, threshold=threshold, empty=policy, distances=distances
        )
        rows.extend(_instance_rows(group, ev))
        rows.append(_summary_row(group, ev.matching, policy))
        total = ev.matching if total is None else total.merged(ev.matching)
    rows.append(_summary_row("all", total if total is not None else Matching((), (), ()), policy))
    return rows


def evaluate_volumes(
    pred: Volume,
    ref: Volume,
    *,
    mode: Mode | str = "auto",
    labels: Iterable[int] | None = None,
    empty: EmptyPolicy | str = EmptyPolicy.NAN,
    match: MatchMethod | str = MatchMethod.IOU,
    threshold: float = 0.5,
    resample: bool = False,
    distances: bool = True,
) -> list[dict[str, Any]]:
    """Rows comparing two label-map volumes (spacing from the reference's affine).

    The prediction must lie on the reference grid (``Volume.same_grid``); ``resample=True``
    resamples it onto the reference grid with nearest neighbour first. Raises ``GeometryError``
    on a grid mismatch and ``InputError`` for arrays that are not label maps.
    """
    if not pred.same_grid(ref):
        if not resample:
            raise GeometryError(
                pred.source,
                f"prediction grid (shape {pred.shape}, spacing {_fmt(pred.spacing_mm)} mm, {''.join(pred.axcodes)}) "
                f"differs from reference {ref.source or '<array>'} (shape {ref.shape}, "
                f"spacing {_fmt(ref.spacing_mm)} mm, {''.join(ref.axcodes)})",
                "rerun with --resample (Python: resample=True) to resample the prediction onto the reference "
                "grid with nearest neighbour, or predict on the reference image itself",
            )
        from neurospine.io import resample_like

        log.info("resampling %s onto the grid of %s (nearest neighbour)", pred.source, ref.source)
        pred = Volume(resample_like(pred, ref, order=0).data, ref.affine, pred.source)
    for vol, what in ((pred, "prediction"), (ref, "reference")):
        try:
            n_values = len(label_values(as_instance_map(vol.data, what)))
        except ValueError as e:
            raise InputError(vol.source, f"{what} is not a label map: {e}", "give an integer label mask") from e
        if n_values > MAX_LABELS:
            raise InputError(
                vol.source,
                f"{what} holds {n_values} distinct values: it looks like an image, not a label map",
                "give the segmentation mask (e.g. *_seg-spine.nii.gz), not the MRI",
            )
    return evaluate_arrays(
        pred.data,
        ref.data,
        ref.spacing_mm,
        mode=mode,
        labels=labels,
        empty=empty,
        match=match,
        threshold=threshold,
        distances=distances,
    )


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{v:.4g}" for v in values)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.10g}"
    return str(value)


def rows_to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """CSV text (header + rows); ``None`` -> empty cell, NaN -> ``nan``, infinity -> ``inf``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path, columns: Sequence[str] = COLUMNS) -> Path:
    """Write rows as CSV atomically (the file appears whole or not at all)."""
    return write_text_atomic(path, rows_to_csv(rows, columns))


def evaluate_files(
    pred_path: str | Path,
    ref_path: str | Path,
    out_csv: str | Path | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Load two label maps, evaluate them (options as :func:`evaluate_volumes`), optionally write CSV."""
    from neurospine.io import load_volume

    ref = load_volume(ref_path, check_intensity=False)
    pred = load_volume(pred_path, check_intensity=False)
    rows = evaluate_volumes(pred, ref, **options)
    if out_csv is not None:
        write_csv(rows, out_csv)
    return rows
