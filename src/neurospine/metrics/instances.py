"""Instance matching and panoptic quality (PQ = SQ x RQ).

Instance maps are integer arrays: 0 is background, every other value one instance (e.g. SPINEPS
``seg-vert``: vertebra ids, 100+id discs, 200+id endplates). Matching pairs reference and predicted
instances one-to-one:

* ``MatchMethod.IOU`` (default) - a pair matches when IoU > ``threshold`` (0.5). With threshold
  ≥ 0.5 and non-overlapping instances the matching is unique (Kirillov et al., *Panoptic
  Segmentation*, CVPR 2019) and equals panoptica's ``NaiveThresholdMatching(IOU, 0.5)``. Below 0.5
  pairs are taken greedily by decreasing IoU.
* ``MatchMethod.HUNGARIAN`` - the assignment maximising the summed Dice
  (``scipy.optimize.linear_sum_assignment``); pairs with Dice ≤ ``threshold`` are then dropped.
* ``MatchMethod.LABEL`` - the ids already correspond (panoptica's *matched instance* input): an id
  present in both maps is a pair whatever its overlap.

With TP matched pairs, FP unmatched predictions and FN unmatched references:
RQ = TP / (TP + FP/2 + FN/2) (the F1 score), SQ = mean IoU of the matched pairs (panoptica's
``sq``; its ``sq_dsc`` is the mean Dice, given here as ``sq_dice``), PQ = SQ x RQ.
Edge cases: no instance on either side -> :class:`EmptyPolicy`; instances but TP = 0 -> RQ = SQ =
PQ = 0 (panoptica's default for IoU/Dice).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize

from neurospine.metrics._arrays import LabelBoxes, bbox, check_pair, check_spacing
from neurospine.metrics.policy import ONE_EMPTY_DISTANCE_MM, EmptyPolicy
from neurospine.metrics.surface import surface_metrics

IntArray = npt.NDArray[np.integer[Any]]


class MatchMethod(Enum):
    """How reference and predicted instances are paired."""

    IOU = "iou"
    HUNGARIAN = "hungarian"
    LABEL = "label"

    @classmethod
    def parse(cls, value: MatchMethod | str) -> MatchMethod:
        if isinstance(value, MatchMethod):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ValueError(f"unknown match method {value!r}; use 'iou', 'hungarian' or 'label'") from None


@dataclass(frozen=True)
class InstancePair:
    """One matched (reference, prediction) pair with its voxel overlap."""

    ref_id: int
    pred_id: int
    intersection: int
    ref_voxels: int
    pred_voxels: int

    @property
    def iou(self) -> float:
        return self.intersection / (self.ref_voxels + self.pred_voxels - self.intersection)

    @property
    def dice(self) -> float:
        return 2.0 * self.intersection / (self.ref_voxels + self.pred_voxels)


@dataclass(frozen=True)
class Matching:
    """Result of :func:`match_instances`."""

    pairs: tuple[InstancePair, ...]
    unmatched_ref: tuple[int, ...]
    unmatched_pred: tuple[int, ...]
    ref_voxels: dict[int, int] = field(default_factory=dict)
    pred_voxels: dict[int, int] = field(default_factory=dict)

    @property
    def tp(self) -> int:
        return len(self.pairs)

    @property
    def fp(self) -> int:
        return len(self.unmatched_pred)

    @property
    def fn(self) -> int:
        return len(self.unmatched_ref)

    def merged(self, other: Matching) -> Matching:
        """Pool two matchings of disjoint id sets (e.g. vertebrae and discs)."""
        return Matching(
            self.pairs + other.pairs,
            self.unmatched_ref + other.unmatched_ref,
            self.unmatched_pred + other.unmatched_pred,
            {**self.ref_voxels, **other.ref_voxels},
            {**self.pred_voxels, **other.pred_voxels},
        )


@dataclass(frozen=True)
class PanopticQuality:
    """Detection and segmentation quality of one matching."""

    tp: int
    fp: int
    fn: int
    rq: float
    sq: float
    pq: float
    sq_dice: float
    pq_dice: float


def as_instance_map(arr: npt.ArrayLike, what: str = "instance map") -> IntArray:
    """Validate a label map (non-negative, integral values) and return it as an integer array.

    Integer arrays are returned as they are (no copy); bool, float and uint64 maps become int64.
    """
    a = np.asarray(arr)
    if a.dtype == np.bool_:
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} contains NaN/inf")
        if not np.array_equal(a, np.round(a)):
            raise ValueError(f"{what} holds non-integer values: it looks like a probability map, not labels")
    elif not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} has unsupported dtype {a.dtype}")
    signed = np.issubdtype(a.dtype, np.signedinteger) or np.issubdtype(a.dtype, np.floating)
    if a.size and signed and a.min() < 0:
        raise ValueError(f"{what} holds negative labels")
    if a.dtype in (np.uint8, np.uint16, np.uint32, np.int8, np.int16, np.int32, np.int64):
        return a
    return a.astype(np.int64)


def label_values(inst: IntArray) -> list[int]:
    """Sorted non-zero values present in a label map."""
    if inst.size == 0:
        return []
    if int(inst.max()) < 2**24:
        return [int(v) for v in np.flatnonzero(np.bincount(inst.ravel())) if v > 0]
    return [int(v) for v in np.unique(inst) if v > 0]


def keep_labels(inst: IntArray, labels: Iterable[int] | None) -> IntArray:
    """Zero every id not in ``labels`` (``None`` keeps all)."""
    if labels is None or inst.size == 0:
        return inst
    top = int(inst.max())
    keep = [v for v in {int(v) for v in labels} if 0 < v <= top]
    if top < 2**24:  # lookup table: one pass, no sorting
        lut = np.zeros(top + 1, dtype=np.int64)
        lut[keep] = keep
        return lut[inst]
    return np.where(np.isin(inst, np.array(sorted(keep), dtype=np.int64)), inst, 0)


def _counts(inst: IntArray) -> dict[int, int]:
    if inst.size and int(inst.max()) < 2**24:
        counts = np.bincount(inst.ravel().astype(np.intp, copy=False))
        return {int(i): int(counts[i]) for i in np.flatnonzero(counts) if i > 0}
    ids, n = np.unique(inst[inst > 0], return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, n, strict=True)}


def _intersections(pred: IntArray, ref: IntArray) -> dict[tuple[int, int], int]:
    """Voxel count of every overlapping (reference id, prediction id) pair."""
    both = (pred > 0) & (ref > 0)
    if not both.any():
        return {}
    rv, pv = ref[both], pred[both]
    if int(rv.max()) < 2**30 and int(pv.max()) < 2**30:
        r_ids, r_code = None, rv.astype(np.int64)
        p_ids, p_code = None, pv.astype(np.int64)
        width = int(pv.max()) + 1
    else:  # huge ids: number them compactly first so the pair code cannot overflow
        r_ids, r_inv = np.unique(rv, return_inverse=True)
        p_ids, p_inv = np.unique(pv, return_inverse=True)
        r_code, p_code = r_inv.astype(np.int64), p_inv.astype(np.int64)
        width = len(p_ids)
    uniq, counts = np.unique(r_code * width + p_code, return_counts=True)
    out: dict[tuple[int, int], int] = {}
    for code, n in zip(uniq.tolist(), counts.tolist(), strict=True):
        r, p = divmod(code, width)
        key = (int(r_ids[r]) if r_ids is not None else r, int(p_ids[p]) if p_ids is not None else p)
        out[key] = int(n)
    return out


def _foreground_crop(pred: IntArray, ref: IntArray) -> tuple[IntArray, IntArray]:
    """Both maps cut to the bounding box of their joint foreground (all counts are unchanged)."""
    box = bbox((pred > 0) | (ref > 0))
    if box is None:
        return pred, ref
    return pred[box], ref[box]


def match_instances(
    pred_inst: npt.ArrayLike,
    ref_inst: npt.ArrayLike,
    *,
    method: MatchMethod | str = MatchMethod.IOU,
    threshold: float = 0.5,
) -> Matching:
    """Pair reference and predicted instances one-to-one (see the module docstring for methods)."""
    how = MatchMethod.parse(method)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(f"matching threshold must be in [0, 1), got {threshold}")
    pred = as_instance_map(pred_inst, "prediction")
    ref = as_instance_map(ref_inst, "reference")
    check_pair(pred, ref)
    pred, ref = _foreground_crop(pred, ref)
    ref_n, pred_n = _counts(ref), _counts(pred)
    inter = _intersections(pred, ref)

    def pair(r: int, p: int) -> InstancePair:
        return InstancePair(r, p, inter.get((r, p), 0), ref_n[r], pred_n[p])

    chosen: list[InstancePair] = []
    if how is MatchMethod.LABEL:
        chosen = [pair(i, i) for i in sorted(ref_n.keys() & pred_n.keys())]
    elif how is MatchMethod.IOU:
        candidates = sorted((pair(r, p) for r, p in inter), key=lambda c: (-c.iou, c.ref_id, c.pred_id))
        used_r: set[int] = set()
        used_p: set[int] = set()
        for c in candidates:
            if c.iou > threshold and c.ref_id not in used_r and c.pred_id not in used_p:
                chosen.append(c)
                used_r.add(c.ref_id)
                used_p.add(c.pred_id)
    else:
        r_ids = sorted({r for r, _ in inter})
        p_ids = sorted({p for _, p in inter})
        if r_ids:
            score = np.zeros((len(r_ids), len(p_ids)))
            r_pos = {r: i for i, r in enumerate(r_ids)}
            p_pos = {p: j for j, p in enumerate(p_ids)}
            for (r, p), n in inter.items():
                score[r_pos[r], p_pos[p]] = 2.0 * n / (ref_n[r] + pred_n[p])
            rows, cols = optimize.linear_sum_assignment(score, maximize=True)
            for i, j in zip(rows, cols, strict=True):
                if score[i, j] > threshold:
                    chosen.append(pair(r_ids[i], p_ids[j]))
    chosen.sort(key=lambda c: c.ref_id)
    matched_r = {c.ref_id for c in chosen}
    matched_p = {c.pred_id for c in chosen}
    return Matching(
        tuple(chosen),
        tuple(r for r in sorted(ref_n) if r not in matched_r),
        tuple(p for p in sorted(pred_n) if p not in matched_p),
        ref_n,
        pred_n,
    )


def panoptic_quality(matching: Matching, *, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> PanopticQuality:
    """RQ, SQ (mean IoU), PQ and their Dice variants from a matching."""
    tp, fp, fn = matching.tp, matching.fp, matching.fn
    if tp + fp + fn == 0:
        v = EmptyPolicy.parse(empty).overlap
        return PanopticQuality(0, 0, 0, v, v, v, v, v)
    rq = tp / (tp + 0.5 * fp + 0.5 * fn)
    if tp == 0:
        return PanopticQuality(tp, fp, fn, rq, 0.0, 0.0, 0.0, 0.0)
    sq = float(np.mean([p.iou for p in matching.pairs]))
    sq_dice = float(np.mean([p.dice for p in matching.pairs]))
    return PanopticQuality(tp, fp, fn, rq, sq, sq * rq, sq_dice, sq_dice * rq)


@dataclass(frozen=True)
class InstanceScore:
    """Per-instance result: a matched pair, a missed reference (pred_id None) or a false positive (ref_id None)."""

    ref_id: int | None
    pred_id: int | None
    dice: float
    iou: float
    assd_mm: float
    hd95_mm: float
    hd_mm: float
    volume_ref_mm3: float
    volume_pred_mm3: float


@dataclass(frozen=True)
class InstanceEvaluation:
    """Everything :func:`evaluate_instances` measured."""

    matching: Matching
    quality: PanopticQuality
    instances: tuple[InstanceScore, ...]


def evaluate_instances(
    pred_inst: npt.ArrayLike,
    ref_inst: npt.ArrayLike,
    spacing_mm: Sequence[float],
    labels: Iterable[int] | None = None,
    *,
    method: MatchMethod | str = MatchMethod.IOU,
    threshold: float = 0.5,
    empty: EmptyPolicy | str = EmptyPolicy.NAN,
    distances: bool = True,
) -> InstanceEvaluation:
    """Match instances, score PQ/SQ/RQ and every instance (Dice, IoU, ASSD, HD95, HD, volumes).

    ``labels`` restricts the evaluation to those ids (others become background in both maps).
    ``distances=False`` skips the surface distances (they are then ``nan``).
    """
    pred = as_instance_map(pred_inst, "prediction")
    ref = as_instance_map(ref_inst, "reference")
    check_pair(pred, ref)
    spacing = check_spacing(spacing_mm, ref.ndim)
    pred, ref = _foreground_crop(pred, ref)
    pred, ref = _foreground_crop(keep_labels(pred, labels), keep_labels(ref, labels))
    voxel_mm3 = float(np.prod(spacing))
    matching = match_instances(pred, ref, method=method, threshold=threshold)
    quality = panoptic_quality(matching, empty=empty)
    ref_box, pred_box = LabelBoxes(ref), LabelBoxes(pred)

    scores: list[InstanceScore] = []
    for pr in matching.pairs:
        if distances:
            rb, pb = ref_box(pr.ref_id), pred_box(pr.pred_id)
            assert rb is not None and pb is not None
            box = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(rb, pb, strict=True))
            sm = surface_metrics(pred[box] == pr.pred_id, ref[box] == pr.ref_id, spacing)
            assd, hd95, hd = sm.assd_mm, sm.hd95_mm, sm.hd_mm
        else:
            assd = hd95 = hd = math.nan
        scores.append(
            InstanceScore(
                pr.ref_id,
                pr.pred_id,
                pr.dice,
                pr.iou,
                assd,
                hd95,
                hd,
                pr.ref_voxels * voxel_mm3,
                pr.pred_voxels * voxel_mm3,
            )
        )
    miss = ONE_EMPTY_DISTANCE_MM if distances else math.nan
    for r in matching.unmatched_ref:
        scores.append(InstanceScore(r, None, 0.0, 0.0, miss, miss, miss, matching.ref_voxels[r] * voxel_mm3, 0.0))
    for p in matching.unmatched_pred:
        scores.append(InstanceScore(None, p, 0.0, 0.0, miss, miss, miss, 0.0, matching.pred_voxels[p] * voxel_mm3))
    return InstanceEvaluation(matching, quality, tuple(scores))
