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

import numpy as np
import numpy.typing as npt
from scipy import ndimage, optimize

from neurospine.metrics._arrays import check_pair, check_spacing
from neurospine.metrics.policy import ONE_EMPTY_DISTANCE_MM, EmptyPolicy
from neurospine.metrics.surface import surface_metrics

IntArray = npt.NDArray[np.int64]


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
    """Validate an integer label map (non-negative, integral values) and return it as int64."""
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
    out = a.astype(np.int64, copy=False)
    if out.size and int(out.min()) < 0:
        raise ValueError(f"{what} holds negative labels")
    return out


def keep_labels(inst: IntArray, labels: Iterable[int] | None) -> IntArray:
    """Zero every id not in ``labels`` (``None`` keeps all)."""
    if labels is None:
        return inst
    keep = np.array(sorted({int(v) for v in labels}), dtype=np.int64)
    return np.where(np.isin(inst, keep), inst, 0)


def _counts(inst: IntArray) -> dict[int, int]:
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}


def _intersections(pred: IntArray, ref: IntArray) -> dict[tuple[int, int], int]:
    both = (pred > 0) & (ref > 0)
    if not both.any():
        return {}
    width = int(pred.max()) + 1
    codes = ref[both] * width + pred[both]
    uniq, counts = np.unique(codes, return_counts=True)
    return {(int(c // width), int(c % width)): int(n) for c, n in zip(uniq, counts, strict=True)}


def match_instances(
    pred_inst: npt.ArrayLike,
    ref_inst: npt.ArrayLike,
    *,
    method: MatchMethod | str = MatchMethod.IOU,
    threshold: float = 0.5,
) -> Matching:
    """Pair reference and predicted instances one-to-one (see the module docstring for methods)."""
    how = MatchMethod.parse(method)
    pred = as_instance_map(pred_inst, "prediction")
    ref = as_instance_map(ref_inst, "reference")
    check_pair(pred, ref)
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


def _bbox_of(objects: list[tuple[slice, ...] | None], label: int) -> tuple[slice, ...] | None:
    return objects[label - 1] if 0 < label <= len(objects) else None


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
    pred = keep_labels(as_instance_map(pred_inst, "prediction"), labels)
    ref = keep_labels(as_instance_map(ref_inst, "reference"), labels)
    check_pair(pred, ref)
    spacing = check_spacing(spacing_mm, ref.ndim)
    voxel_mm3 = float(np.prod(spacing))
    matching = match_instances(pred, ref, method=method, threshold=threshold)
    quality = panoptic_quality(matching, empty=empty)
    ref_obj = ndimage.find_objects(ref) if ref.any() else []
    pred_obj = ndimage.find_objects(pred) if pred.any() else []

    scores: list[InstanceScore] = []
    for pr in matching.pairs:
        if distances:
            rb, pb = _bbox_of(ref_obj, pr.ref_id), _bbox_of(pred_obj, pr.pred_id)
            assert rb is not None and pb is not None
            box = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(rb, pb, strict=True))
            sm = surface_metrics(pred[box] == pr.pred_id, ref[box] == pr.ref_id, spacing)
            assd, hd95, hd = sm.assd_mm, sm.hd95_mm, sm.hd_mm
        else:
            assd = hd95 = hd = math.nan
        scores.append(
            InstanceScore(
                pr.ref_id, pr.pred_id, pr.dice, pr.iou, assd, hd95, hd,
                pr.ref_voxels * voxel_mm3, pr.pred_voxels * voxel_mm3,
            )
        )
    miss = ONE_EMPTY_DISTANCE_MM if distances else math.nan
    for r in matching.unmatched_ref:
        scores.append(InstanceScore(r, None, 0.0, 0.0, miss, miss, miss, matching.ref_voxels[r] * voxel_mm3, 0.0))
    for p in matching.unmatched_pred:
        scores.append(InstanceScore(None, p, 0.0, 0.0, miss, miss, miss, 0.0, matching.pred_voxels[p] * voxel_mm3))
    return InstanceEvaluation(matching, quality, tuple(scores))
