"""The empty-mask policy: what every metric returns when a mask is empty.

A metric compares a prediction with a reference. When one or both are empty, the usual formulas
divide by zero or have no surface to measure from, so the answer is a *choice*. neurospine makes
that choice explicit and the same for every metric:

==========================  =================  ===================  =========================
case                        Dice / IoU         precision / recall   ASSD / HD95 / HD (mm)
==========================  =================  ===================  =========================
both non-empty              formula            formula              formula
reference empty, pred not   0.0                precision 0.0,       ``inf``
                                               recall ``nan``
prediction empty, ref not   0.0                precision ``nan``,   ``inf``
                                               recall 0.0
both empty                  ``policy``         ``policy``           ``policy``
==========================  =================  ===================  =========================

*Both empty* follows the :class:`EmptyPolicy` argument:

* ``EmptyPolicy.NAN`` (default) - ``nan`` everywhere: there was nothing to find and nothing was
  found, so there is nothing to score. ``nan`` drops out of ``np.nanmean`` and is visible in CSVs
  (nnU-Net's evaluation does the same for Dice).
* ``EmptyPolicy.PERFECT`` - overlap metrics 1.0 and distances 0.0: a correct "absent" call counts
  as a perfect score (MONAI ``ignore_empty=False`` style). This inflates means over structures that
  are often absent; use it only when the absence itself is what is being scored.

*One side empty* does not depend on the policy. Overlap is 0. Distances are ``inf`` because there
is no surface to measure to: a missed or hallucinated structure is infinitely wrong, not
"unmeasured". ``inf`` keeps means honest (a mean over a missed structure is ``inf``); report a
median or drop ``inf`` explicitly if that is what you want. Precision with no predicted voxels and
recall with no reference voxels are undefined (``nan``).

Instance metrics (:mod:`neurospine.metrics.instances`) follow the same rule: with no instance on
either side, PQ/SQ/RQ follow the policy; with instances but no true positive, RQ = SQ = PQ = 0
(as panoptica's default edge-case handler does for IoU/Dice).
"""

from __future__ import annotations

import math
from enum import Enum

#: Distance returned when exactly one of the two masks is empty.
ONE_EMPTY_DISTANCE_MM = math.inf


class EmptyPolicy(Enum):
    """What a metric returns when both prediction and reference are empty."""

    NAN = "nan"
    PERFECT = "perfect"

    @property
    def overlap(self) -> float:
        """Dice/IoU/precision/recall/PQ when both masks are empty."""
        return math.nan if self is EmptyPolicy.NAN else 1.0

    @property
    def distance_mm(self) -> float:
        """ASSD/HD95/HD when both masks are empty."""
        return math.nan if self is EmptyPolicy.NAN else 0.0

    @classmethod
    def parse(cls, value: EmptyPolicy | str) -> EmptyPolicy:
        """Accept the enum or its name/value (``"nan"``, ``"perfect"``; ``"one"`` is an alias)."""
        if isinstance(value, EmptyPolicy):
            return value
        key = str(value).strip().lower()
        if key in ("one", "1", "1.0"):
            return cls.PERFECT
        for member in cls:
            if key in (member.value, member.name.lower()):
                return member
        raise ValueError(f"unknown empty-mask policy {value!r}; use 'nan' or 'perfect'")
