"""How sure the 2D tool is of the number of vertebral bodies it reports (``count_confidence``, ``count_flag``).

Rules written before scoring (benchmarks/slice2d_count.py measures them on held-out slices; no fit):
the confidence starts at :data:`BASE` and is multiplied by one factor per piece of evidence against the count:

- spacing: consecutive body centroids (mm) with a gap over :data:`GAP_HIGH` x or under :data:`GAP_LOW` x the
  median gap (a body missing, or one body split in two);
- size: a body (not cut by the border) whose area is over :data:`AREA_HIGH` x or under :data:`AREA_LOW` x the
  median (two bodies merged, or a fragment);
- border: each body touching the image border (cut: it may or may not be counted), at most two;
- discs: when the model finds discs at all, more than half of the neighbouring body pairs without a disc between;
- probability: mean body probability inside the bodies under :data:`PROB_MIN`.

Fewer than three bodies leaves spacing and size unjudgeable: :data:`FEW_BODIES`. No body: 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from neurospine.slice2d.instances import Instances2D

BASE = 0.95
GAP_HIGH, GAP_LOW, GAP_FACTOR = 1.5, 0.6, 0.5
AREA_HIGH, AREA_LOW, AREA_FACTOR = 1.8, 0.45, 0.6
BORDER_FACTOR = 0.85
DISC_FACTOR = 0.8
PROB_MIN, PROB_FACTOR = 0.8, 0.7
FEW_BODIES = 0.3
#: below this the count is flagged (``count_flag``; threshold from benchmarks/results/slice2d_count.md)
FLAG_BELOW = 0.5


@dataclass
class CountConfidence:
    confidence: float
    reasons: list[str] = field(default_factory=list)
    body_probability: float | None = None  # mean network body probability inside the bodies (None: no body)

    @property
    def flagged(self) -> bool:
        return self.confidence < FLAG_BELOW


def _touches_border(m: npt.NDArray[np.bool_]) -> bool:
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def count_confidence(
    inst: Instances2D, probs: npt.NDArray[np.float32], spacing_mm: tuple[float, float]
) -> CountConfidence:
    """Confidence (0-1) in ``len(inst.bodies)``; ``probs`` is the network output (3, H, W), class 1 = body."""
    bodies = inst.bodies
    if not bodies:
        return CountConfidence(0.0, ["no body found"])
    conf = BASE
    reasons: list[str] = []
    cut = [_touches_border(b.mask) for b in bodies]
    n_cut = min(2, sum(cut))
    if n_cut:
        conf *= BORDER_FACTOR**n_cut
        reasons.append(f"{sum(cut)} body(ies) cut by the image border")
    inside = np.zeros(probs.shape[1:], bool)
    for b in bodies:
        inside |= b.mask
    p_mean = float(probs[1][inside].mean())
    if p_mean < PROB_MIN:
        conf *= PROB_FACTOR
        reasons.append(f"mean body probability {p_mean:.2f} < {PROB_MIN}")
    if len(bodies) < 3:
        conf = min(conf, FEW_BODIES)
        reasons.append(f"only {len(bodies)} body(ies): spacing and size cannot be checked")
        return CountConfidence(round(conf, 3), reasons, p_mean)
    sp = np.asarray(spacing_mm, float)
    cents = np.asarray([b.centroid_rc for b in bodies], float) * sp
    gaps = np.linalg.norm(np.diff(cents, axis=0), axis=1)
    g_med = float(np.median(gaps))
    if g_med > 0 and (gaps.max() > GAP_HIGH * g_med or gaps.min() < GAP_LOW * g_med):
        conf *= GAP_FACTOR
        reasons.append("irregular spacing between bodies")
    areas = np.asarray([float(b.mask.sum()) for b, c in zip(bodies, cut, strict=True) if not c])
    if areas.size >= 2:
        a_med = float(np.median(areas))
        if areas.max() > AREA_HIGH * a_med or areas.min() < AREA_LOW * a_med:
            conf *= AREA_FACTOR
            reasons.append("irregular body sizes")
    if inst.discs:
        rows = [b.centroid_rc[0] for b in bodies]
        drows = [dd.centroid_rc[0] for dd in inst.discs]
        missing = sum(1 for a, b in pairwise(rows) if not any(a < r < b for r in drows))
        if missing > 0.5 * (len(rows) - 1):
            conf *= DISC_FACTOR
            reasons.append(f"{missing} of {len(rows) - 1} neighbouring bodies without a disc between")
    return CountConfidence(round(conf, 3), reasons, p_mean)
