"""Evidence every tool can read from a volume: a head in view, Hounsfield units, an axial slab, a label map.

All sizes are in mm on the volume reoriented to RAS and sub-sampled to about 3 mm (the checks take well under
a second). Thresholds are physical and wide: an adult head is 130-165 mm wide and 165-210 mm long; a spine
exam covers several vertebrae (about 30 mm each) head to foot; MRI magnitudes are never far below zero,
while CT air is -1000 HU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import Volume, reorient
from neurospine.plausibility.verdict import Verdict

#: grid (mm) of the coarse copy the checks work on
COARSE_MM = 3.0
#: the top of the head counts as in view with at least this much air above it (mm)
HEAD_TOP_AIR_MM = 6.0
#: head width (left-right) and length (anterior-posterior) 30-60 mm below its top, wide bounds (mm)
HEAD_WIDTH_MM = (105.0, 230.0)
HEAD_LENGTH_MM = (125.0, 270.0)
#: a cross-section wider than this is a trunk (chest, abdomen, pelvis), not a neck or a head (mm)
TRUNK_WIDTH_MM = 250.0
#: an image covering less than this head to foot, and at least twice as wide, is an axial slab (mm)
SLAB_MAX_SI_MM = 100.0
#: Hounsfield units: air far below zero and bone well above it
HU_AIR = -500.0
HU_BONE = 300.0
#: share of voxels below -200 (air, lung, fat in HU) needed to call an image CT
HU_NEGATIVE_SHARE = 0.005
#: a label map (segmentation mask) given as the image: integer values only, at most this many distinct values on the
#: coarse copy (every image in ../shared/data has 187 or more there, 8-bit ones included; every label map 42 or
#: fewer; a whole-spine SPINEPS instance map about 75) ...
LABEL_MAP_MAX_VALUES = 128
#: ... zero (the background) on at least this share of the voxels ...
LABEL_MAP_BACKGROUND_SHARE = 0.5
#: ... and each value in few connected pieces (median over the values): 0-9 on every shared label map, 52 or more
#: on every shared image quantised to 20-127 grey levels (each grey level of an image is scattered speckle)
LABEL_MAP_MAX_PIECES = 20.0


@dataclass(frozen=True)
class Evidence:
    """Header and intensity evidence of one volume (RAS, mm)."""

    fov_mm: tuple[float, float, float]  # R, A, S extent of the field of view
    spacing_mm: tuple[float, float, float]  # R, A, S voxel size
    object_mm: tuple[float, float, float]  # R, A, S extent of the largest bright object
    top_air_mm: float  # air between the object's top and the top of the field of view
    head_width_mm: float  # object extent 30-60 mm below its top, left-right ...
    head_length_mm: float  # ... and anterior-posterior
    hounsfield: bool  # CT intensities (air near -1000, bone above 300)
    label_map: str | None = None  # why the "image" looks like a label map (None: it does not)

    @property
    def head_in_view(self) -> bool:
        """The top of a head (skull vertex with air above it) of adult head size is in the field of view."""
        return (
            self.top_air_mm >= HEAD_TOP_AIR_MM
            and HEAD_WIDTH_MM[0] <= self.head_width_mm <= HEAD_WIDTH_MM[1]
            and HEAD_LENGTH_MM[0] <= self.head_length_mm <= HEAD_LENGTH_MM[1]
        )

    @property
    def trunk_width(self) -> bool:
        """The imaged body is wider than a neck or a head (chest, abdomen or pelvis)."""
        return self.object_mm[0] > TRUNK_WIDTH_MM

    @property
    def axial_slab(self) -> bool:
        """A short head-to-foot coverage across a wide field (an axial stack of a few slices)."""
        si, lr = self.fov_mm[2], self.fov_mm[0]
        return si < SLAB_MAX_SI_MM and lr >= 2.0 * si

    def describe(self) -> str:
        r, a, s = self.fov_mm
        return f"field of view {r:.0f} x {a:.0f} x {s:.0f} mm (R-L x A-P x S-I)"


def label_map_reason(data: npt.ArrayLike) -> str | None:
    """Why ``data`` looks like a label map rather than an image (a few integer values, zero the most frequent, each
    value in a few connected regions), or None. The checks pass the coarse copy (3D) or the pixels (2D)."""
    arr = np.asarray(data)
    u, counts = np.unique(arr, return_counts=True)
    if u.size > LABEL_MAP_MAX_VALUES or not np.array_equal(u, np.round(u)) or u[counts.argmax()] != 0:
        return None
    share = float(counts.max()) / float(counts.sum())
    if share < LABEL_MAP_BACKGROUND_SHARE:
        return None
    pieces = [int(ndimage.label(arr == value)[1]) for value in u if value != 0]
    median_pieces = float(np.median(pieces)) if pieces else 0.0
    if median_pieces > LABEL_MAP_MAX_PIECES:
        return None
    return (
        f"{u.size} distinct integer values, {100.0 * share:.0f} % of voxels 0, each value in {median_pieces:g} "
        "connected regions (median)"
    )


def refuse_label_map(v: Verdict, reason: str | None) -> None:
    """Refuse in ``v`` when ``reason`` (:func:`label_map_reason`, ``Evidence.label_map``) says the input is a label
    map: a mask given where the image belongs."""
    if reason:
        v.refuse("a label map (segmentation mask), not an image", reason)


def is_hounsfield(data: npt.ArrayLike) -> bool:
    """CT in Hounsfield units: values far below zero (air) and above bone level, on a share of voxels."""
    a = np.asarray(data)
    sample = a.ravel()[:: max(1, a.size // 1_000_000)].astype(np.float32)
    if float(sample.min()) > HU_AIR or float(sample.max()) < HU_BONE:
        return False
    return float(np.mean(sample < -200.0)) >= HU_NEGATIVE_SHARE


def otsu_threshold(values: npt.NDArray[np.floating[Any]], bins: int = 256) -> float:
    """Otsu's threshold of ``values`` (1D), computed on a ``bins``-bin histogram."""
    hist, edges = np.histogram(values, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight = hist.astype(np.float64)
    w0 = np.cumsum(weight)
    w1 = w0[-1] - w0
    m0 = np.cumsum(weight * centres)
    mean0 = np.divide(m0, w0, out=np.zeros_like(m0), where=w0 > 0)
    mean1 = np.divide(m0[-1] - m0, w1, out=np.zeros_like(m0), where=w1 > 0)
    between = w0 * w1 * (mean0 - mean1) ** 2
    return float(centres[int(np.argmax(between))])


def largest_object(x: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Largest connected component above 25 % of the 99.5th percentile of the lightly smoothed image."""
    p = float(np.percentile(x, 99.5))
    lo = float(np.percentile(x, 0.5))
    if p <= lo:
        return np.zeros(x.shape, dtype=bool)
    s = ndimage.gaussian_filter(np.clip((x - lo) / (p - lo), 0, 1), 1.0)
    lab, n = ndimage.label(s > 0.25)
    if n == 0:
        return np.zeros(x.shape, dtype=bool)
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return np.asarray(lab == int(sizes.argmax()))


def _extent(mask: npt.NDArray[np.bool_], axis: int, spacing: float) -> float:
    other = tuple(i for i in range(3) if i != axis)
    idx = np.nonzero(mask.any(axis=other))[0]
    return 0.0 if idx.size == 0 else float(idx.max() - idx.min() + 1) * spacing


def evidence(vol: Volume) -> Evidence:
    """Measure :class:`Evidence` on ``vol`` (any orientation)."""
    ras, _ = reorient(vol, "RAS")
    sp = np.asarray(ras.spacing_mm, dtype=np.float64)
    step = [max(1, round(COARSE_MM / s)) for s in sp]
    x = np.asarray(ras.data, dtype=np.float32)[:: step[0], :: step[1], :: step[2]]
    sp = sp * np.asarray(step)
    fov = tuple(float(v) for v in np.asarray(ras.shape) * np.asarray(ras.spacing_mm))
    m = largest_object(x)
    obj = tuple(_extent(m, ax, float(sp[ax])) for ax in range(3))
    width = length = top_air = 0.0
    zs = np.nonzero(m.any(axis=(0, 1)))[0]
    if zs.size:
        top = int(zs.max())
        top_air = float(m.shape[2] - 1 - top) * float(sp[2])
        lo = max(0, int(top - 60.0 / sp[2]))
        hi = max(lo + 1, int(top - 30.0 / sp[2]) + 1)
        slab = m[:, :, lo:hi]
        width, length = _extent(slab, 0, float(sp[0])), _extent(slab, 1, float(sp[1]))
    return Evidence(
        fov,  # type: ignore[arg-type]
        tuple(float(v) for v in ras.spacing_mm),  # type: ignore[arg-type]
        obj,  # type: ignore[arg-type]
        top_air,
        width,
        length,
        is_hounsfield(ras.data),
        label_map_reason(x),
    )


#: neighbouring bodies of a column: their spacing stays within these multiples of the median spacing
GAP_RATIO = (0.35, 2.6)


def gap_stats(centres_mm: npt.NDArray[np.float64]) -> dict[str, float]:
    """Median spacing of consecutive body centres (rows, in mm, in column order) and the extreme ratios to it."""
    gaps = np.linalg.norm(np.diff(centres_mm, axis=0), axis=1)
    med = float(np.median(gaps))
    return {
        "median_gap_mm": med,
        "min_gap_ratio": float(gaps.min() / med) if med > 0 else 0.0,
        "max_gap_ratio": float(gaps.max() / med) if med > 0 else 0.0,
    }


def irregular_gaps(st: dict[str, float]) -> str | None:
    """The flag text when :func:`gap_stats` shows a missing, split or merged body (3 or more bodies), else None."""
    if GAP_RATIO[0] <= st["min_gap_ratio"] and st["max_gap_ratio"] <= GAP_RATIO[1]:
        return None
    lo, hi = st["min_gap_ratio"], st["max_gap_ratio"]
    return f"irregular spacing between neighbouring bodies ({lo:.2f}-{hi:.2f} x the median)"
