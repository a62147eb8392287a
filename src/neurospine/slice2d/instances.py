"""Body and disc instances from semantic labels, and their level ids.

Bodies: connected components of the body class after removing pixels where the disc probability is
high (this cuts bodies merged across a thin disc), then grown back inside the body mask. Discs:
connected components of the disc class. Small components are dropped (areas in mm^2).

Ids follow ``neurospine.labels``: vertebra ids for bodies and ``100 + id of the vertebra above`` for
discs. Levels are only known from an anchor: ``lowest_level`` (e.g. ``"S1"`` when the most inferior
body in view is S1). Without one, bodies get positional ids 1..N from superior to inferior (flagged
``positional``; they are not C1..).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.labels import DISC_OFFSET, VERTEBRA_IDS, VERTEBRA_NAMES

MIN_BODY_MM2 = 60.0
MIN_DISC_MM2 = 15.0
SPLIT_DISC_PROB = 0.35

#: Standard column used to name levels from an anchor (no T13/L6).
STANDARD_LEVELS: tuple[int, ...] = (*range(1, 8), *range(8, 20), *range(20, 25), 26, 29, 30, 31, 32)


@dataclass
class Instance:
    value: int
    kind: str  # "body" or "disc"
    name: str
    mask: npt.NDArray[np.bool_]
    centroid_rc: tuple[float, float]


@dataclass
class Instances2D:
    label_map: npt.NDArray[np.int16]
    bodies: list[Instance] = field(default_factory=list)
    discs: list[Instance] = field(default_factory=list)
    naming: str = "positional"  # or "anchored"


def _components(mask: npt.NDArray[np.bool_], min_px: int) -> list[npt.NDArray[np.bool_]]:
    lab, n = ndimage.label(mask)
    if n == 0:
        return []
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
    return [lab == i + 1 for i in range(n) if sizes[i] >= min_px]


def split_bodies(
    body: npt.NDArray[np.bool_], disc_prob: npt.NDArray[np.float32], min_px: int
) -> list[npt.NDArray[np.bool_]]:
    """Body components; bodies bridged by a likely disc are cut there and regrown inside ``body``."""
    seeds = body & (disc_prob < SPLIT_DISC_PROB)
    seeds = ndimage.binary_erosion(seeds, iterations=1)  # also cuts one-pixel bridges
    lab, n = ndimage.label(seeds)
    if n == 0:
        return _components(body, min_px)
    sizes = ndimage.sum_labels(seeds, lab, index=np.arange(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= max(4, min_px // 4)
    lab = np.where(keep[lab], lab, 0)
    # grow seeds back over the whole body mask (nearest seed)
    _, (ri, ci) = ndimage.distance_transform_edt(lab == 0, return_indices=True)
    grown = np.where(body, lab[ri, ci], 0)
    out = []
    for v in np.unique(grown):
        if v == 0:
            continue
        m = grown == v
        if m.sum() >= min_px:
            out.append(m)
    return out


def _centroid(m: npt.NDArray[np.bool_]) -> tuple[float, float]:
    pts = np.argwhere(m)
    return float(pts[:, 0].mean()), float(pts[:, 1].mean())


def build_instances(
    labels: npt.NDArray[np.uint8],
    probs: npt.NDArray[np.float32],
    spacing_mm: tuple[float, float],
    *,
    lowest_level: str | None = None,
) -> Instances2D:
    """Instances from semantic ``labels`` (0/1/2) and probabilities (3, H, W)."""
    px_mm2 = spacing_mm[0] * spacing_mm[1]
    bodies = split_bodies(labels == 1, probs[2], int(np.ceil(MIN_BODY_MM2 / px_mm2)))
    discs = _components(labels == 2, int(np.ceil(MIN_DISC_MM2 / px_mm2)))
    bodies.sort(key=lambda m: _centroid(m)[0])
    discs.sort(key=lambda m: _centroid(m)[0])
    body_rows = [_centroid(m)[0] for m in bodies]
    naming = "positional"
    ids: list[int]
    if lowest_level is not None and bodies:
        lowest = VERTEBRA_IDS[lowest_level.upper()]
        pos = STANDARD_LEVELS.index(lowest)
        if pos + 1 >= len(bodies):
            ids = [STANDARD_LEVELS[pos - (len(bodies) - 1 - i)] for i in range(len(bodies))]
            naming = "anchored"
        else:
            ids = list(range(1, len(bodies) + 1))
    else:
        first = 1
        if discs and bodies and _centroid(discs[0])[0] < body_rows[0]:
            first = 2  # a disc above the top body needs a body id above it
        ids = list(range(first, first + len(bodies)))
    out = Instances2D(np.zeros(labels.shape, np.int16), naming=naming)
    for m, v in zip(bodies, ids, strict=True):
        name = VERTEBRA_NAMES.get(v, f"body{v}") if naming == "anchored" else f"body{v}"
        out.bodies.append(Instance(v, "body", name, m, _centroid(m)))
        out.label_map[m] = v
    used: set[int] = set()
    for m in discs:
        r = _centroid(m)[0]
        above = [i for i, br in enumerate(body_rows) if br < r]
        if above:
            v_above = ids[above[-1]]
        elif bodies:
            v_above = _previous_id(ids[0], naming)
        else:
            v_above = len(used) + 1
        value = DISC_OFFSET + v_above
        if value in used:  # two disc pieces between the same bodies: merge them
            prev = next(d for d in out.discs if d.value == value)
            prev.mask = prev.mask | m
            prev.centroid_rc = _centroid(prev.mask)
            out.label_map[m] = value
            continue
        used.add(value)
        below = [i for i, br in enumerate(body_rows) if br > r]
        if naming == "anchored" and v_above in VERTEBRA_NAMES:
            low = VERTEBRA_NAMES[ids[below[0]]] if below else "?"
            name = f"{VERTEBRA_NAMES[v_above]}-{low}"
        else:
            name = f"disc{v_above}"
        out.discs.append(Instance(value, "disc", name, m, _centroid(m)))
        out.label_map[m] = value
    return out


def _previous_id(v: int, naming: str) -> int:
    if naming == "anchored" and v in STANDARD_LEVELS and STANDARD_LEVELS.index(v) > 0:
        return STANDARD_LEVELS[STANDARD_LEVELS.index(v) - 1]
    return max(0, v - 1)
