"""Overlap metrics (Dice, IoU, precision, recall, soft Dice) and physical volumes.

Inputs are arrays of the same shape; any non-zero voxel is foreground. Empty masks follow
:mod:`neurospine.metrics.policy`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from neurospine.metrics._arrays import as_mask, check_pair, check_spacing
from neurospine.metrics.policy import EmptyPolicy


@dataclass(frozen=True)
class Confusion:
    """Voxel counts of one binary comparison."""

    tp: int
    fp: int
    fn: int

    @property
    def n_pred(self) -> int:
        return self.tp + self.fp

    @property
    def n_ref(self) -> int:
        return self.tp + self.fn

    def dice(self, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
        denom = 2 * self.tp + self.fp + self.fn
        if denom == 0:
            return EmptyPolicy.parse(empty).overlap
        return 2.0 * self.tp / denom

    def jaccard(self, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
        denom = self.tp + self.fp + self.fn
        if denom == 0:
            return EmptyPolicy.parse(empty).overlap
        return self.tp / denom

    def precision(self, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
        if self.n_pred == 0:
            return EmptyPolicy.parse(empty).overlap if self.n_ref == 0 else math.nan
        return self.tp / self.n_pred

    def recall(self, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
        if self.n_ref == 0:
            return EmptyPolicy.parse(empty).overlap if self.n_pred == 0 else math.nan
        return self.tp / self.n_ref


def confusion(pred: npt.ArrayLike, ref: npt.ArrayLike) -> Confusion:
    """True-positive, false-positive and false-negative voxel counts."""
    p, r = as_mask(pred), as_mask(ref)
    check_pair(p, r)
    tp = int(np.count_nonzero(p & r))
    return Confusion(tp=tp, fp=int(np.count_nonzero(p)) - tp, fn=int(np.count_nonzero(r)) - tp)


def dice(pred: npt.ArrayLike, ref: npt.ArrayLike, *, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
    """Dice similarity coefficient 2|P∩R| / (|P| + |R|)."""
    return confusion(pred, ref).dice(empty)


def jaccard(pred: npt.ArrayLike, ref: npt.ArrayLike, *, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
    """Intersection over union |P∩R| / |P∪R| (equals Dice / (2 - Dice))."""
    return confusion(pred, ref).jaccard(empty)


def precision(pred: npt.ArrayLike, ref: npt.ArrayLike, *, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
    """|P∩R| / |P| (positive predictive value); ``nan`` when only the prediction is empty."""
    return confusion(pred, ref).precision(empty)


def recall(pred: npt.ArrayLike, ref: npt.ArrayLike, *, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
    """|P∩R| / |R| (sensitivity); ``nan`` when only the reference is empty."""
    return confusion(pred, ref).recall(empty)


def soft_dice(pred_prob: npt.ArrayLike, ref: npt.ArrayLike, *, empty: EmptyPolicy | str = EmptyPolicy.NAN) -> float:
    """Dice of a soft prediction (values in [0, 1]) against a binary or soft reference.

    ``2 Σ p·r / (Σ p + Σ r)``; equals :func:`dice` when both inputs are binary.
    """
    p = np.asarray(pred_prob, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    check_pair(p, r)
    for name, a in (("pred_prob", p), ("ref", r)):
        if a.size and (not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1):
            raise ValueError(f"{name} must hold finite values in [0, 1]")
    denom = float(p.sum() + r.sum())
    if denom == 0.0:
        return EmptyPolicy.parse(empty).overlap
    return 2.0 * float((p * r).sum()) / denom


def volume_mm3(mask: npt.ArrayLike, spacing_mm: Sequence[float]) -> float:
    """Foreground volume in mm³ (voxel count × voxel volume)."""
    m = as_mask(mask)
    sp = check_spacing(spacing_mm, m.ndim)
    return float(np.count_nonzero(m)) * float(np.prod(sp))
