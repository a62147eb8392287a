"""Plausibility of a ``neurospine slice2d`` input: a sagittal MR/CT slice or a lateral radiograph of the spine.

Refused: a 3D head MRI (skull vertex in view); a radiograph whose "bodies" are much wider than tall (an AP/PA
view: a lumbar body is about 1.6-1.9 times as wide as tall seen from the front, 1.1-1.4 times as deep as tall
seen from the side). The issue's AP radiographs gave 7 "bodies" on the lung, shoulder and pelvis.
Flagged: a 2D NIfTI whose header puts it in the axial or coronal plane; a 2D image that is left-right mirror
symmetric about a vertical axis (AP/PA radiographs and axial slices are, a lateral view or sagittal slice is
not: the spine lies to one side of the trunk; a flag only, as synthetic phantoms are symmetric too); an
axial slab volume; and outputs that are not a column: fewer than two bodies, bodies off a smooth head-to-foot
curve, neighbours far from regular spacing, bodies of very different sizes, or (with a known pixel size)
bodies of implausible size. The AP refusal needs a radiograph known as one (modality given or guessed with
certainty): a CT or MR slice exported as a picture may be guessed "xray" with doubt (the fewshot CT slices as PNG
were), and an uncertain guess is no ground to refuse a supported image, so it is flagged instead. Two doubts
together are flagged too: the modality guess is uncertain and the network is unsure of its bodies (mean body
probability below the body-count threshold, ``slice2d.count_confidence.PROB_MIN``); the header-less AP pelvis
picture of the benchmark shows both, no real image of the corpus does without another flag.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.plausibility.common import (
    Evidence,
    evidence,
    gap_stats,
    irregular_gaps,
    label_map_reason,
    refuse_label_map,
)
from neurospine.plausibility.verdict import Verdict

EXPECTS = "a sagittal MR/CT slice or volume, or a lateral radiograph, of the spine"
#: correlation of an image with its mirror image at the best vertical axis; AP radiographs and axial slices
#: are symmetric, lateral and sagittal views are not
MIRROR_SYMMETRIC = 0.85
#: radiographs: median body width / height at or above this is a frontal (AP/PA) view
AP_WIDTH_RATIO = 1.6
#: long side of the coarse copy used for the symmetry measure (pixels)
SYMMETRY_PX = 128
#: body centroids lie within this share of the median body width of a smooth (quadratic) curve
MAX_OFF_CURVE = 1.0
#: neighbouring centroids: within these ratios of the median centre-to-centre distance
#: body areas vary along a column (C3 to L5 about x3); beyond this ratio of largest to smallest, not a column
MAX_AREA_RATIO = 25.0
#: with a known pixel size: body height and depth (mm), C3-L5 with wide margins
BODY_SIZE_MM = (5.0, 70.0)


def mirror_symmetry(pixels: npt.ArrayLike) -> float:
    """Highest correlation between an image and its left-right mirror about a vertical axis in its middle third."""
    a = np.asarray(pixels, dtype=np.float32)
    if a.ndim != 2 or min(a.shape) < 8:
        return 0.0
    zoom = SYMMETRY_PX / max(a.shape)
    small = ndimage.zoom(a, zoom, order=1) if zoom < 1 else a
    lo, hi = np.percentile(small, [1, 99])
    small = np.clip((small - lo) / max(hi - lo, 1e-6), 0, 1)
    w = small.shape[1]
    best = -1.0
    for c0 in range(int(w * 0.33), int(w * 0.67) + 1):
        half = min(c0, w - c0)
        if half < w // 4:
            continue
        left = small[:, c0 - half : c0][:, ::-1].ravel()
        right = small[:, c0 : c0 + half].ravel()
        if left.std() < 1e-6 or right.std() < 1e-6:
            continue
        best = max(best, float(np.corrcoef(left, right)[0, 1]))
    return best


def body_stats(inst: Any, spacing_mm: tuple[float, float]) -> dict[str, float]:
    """Column statistics of the detected bodies (centroids and sizes in mm)."""
    bodies = list(inst.bodies)
    out: dict[str, float] = {"n_bodies": float(len(bodies))}
    if not bodies:
        return out
    sp = np.asarray(spacing_mm, dtype=np.float64)
    cent = np.array([np.asarray(b.centroid_rc, dtype=np.float64) * sp for b in bodies])
    areas = np.array([float(b.mask.sum()) * float(sp.prod()) for b in bodies])
    heights, widths = [], []
    for b in bodies:
        rows = np.nonzero(b.mask.any(axis=1))[0]
        cols = np.nonzero(b.mask.any(axis=0))[0]
        heights.append(float(rows.max() - rows.min() + 1) * sp[0])
        widths.append(float(cols.max() - cols.min() + 1) * sp[1])
    out["median_height_mm"] = float(np.median(heights))
    out["median_width_mm"] = float(np.median(widths))
    out["area_ratio"] = float(areas.max() / max(areas.min(), 1e-6))
    if len(bodies) >= 2:
        order = np.argsort(cent[:, 0])
        out.update(gap_stats(cent[order]))
    if len(bodies) >= 4:
        coef = np.polyfit(cent[:, 0], cent[:, 1], 2)
        resid = np.abs(np.polyval(coef, cent[:, 0]) - cent[:, 1])
        out["off_curve"] = float(resid.max() / max(out["median_width_mm"], 1e-6))
    return out


def pre_check(
    pixels: npt.ArrayLike | None, *, is_2d: bool, ev: Evidence | None = None, header_plane: str | None = None
) -> Verdict:
    """Evidence from the input before the model runs (``ev``: 3D volumes only; ``header_plane``: the plane a 2D
    NIfTI header gives, "sagittal", "coronal" or "axial")."""
    v = Verdict("slice2d", expects=EXPECTS)
    if header_plane in ("axial", "coronal"):
        v.looks_like = "an axial slice" if header_plane == "axial" else "a coronal (frontal, AP/PA) image"
        v.flag(f"the file header puts this 2D image in the {header_plane} plane")
    if ev is not None:
        refuse_label_map(v, ev.label_map)
        if ev.head_in_view:
            v.refuse("a head (brain) MRI", f"top of a {ev.head_width_mm:.0f} x {ev.head_length_mm:.0f} mm head in view")
        if ev.axial_slab:
            v.flag(f"an axial slab covering {ev.fov_mm[2]:.0f} mm head to foot: the sagittal slice is that short")
    if is_2d and pixels is not None:
        refuse_label_map(v, label_map_reason(pixels))
        sym = mirror_symmetry(pixels)
        if sym >= MIRROR_SYMMETRIC:
            v.flag(
                f"the image is left-right mirror symmetric (correlation {sym:.2f} with its mirror image), like an "
                "AP/PA radiograph or an axial slice"
            )
    return v


def pre_check_loaded(loaded: Any) -> Verdict:
    """:func:`pre_check` on a ``slice2d.io2d.LoadedInput``."""
    if loaded.kind == "volume":
        return pre_check(None, is_2d=False, ev=evidence(loaded.volume))
    plane = None
    if loaded.file_format == "nifti2d" and loaded.affine2d is not None:
        import nibabel as nib

        world = int(nib.orientations.io_orientation(loaded.affine2d)[loaded.singleton_axis, 0])
        plane = ("sagittal", "coronal", "axial")[world]
    return pre_check(loaded.plane.pixels, is_2d=True, header_plane=plane)


def post_check(
    v: Verdict,
    inst: Any,
    spacing_mm: tuple[float, float],
    *,
    modality: str,
    spacing_known: bool,
    is_2d: bool = True,
    modality_certain: bool = True,
    body_probability: float | None = None,
) -> Verdict:
    """Refusal and flags from the detected bodies (in place; returns ``v``); call before writing outputs.

    Wide bodies refuse a radiograph; on another 2D image (an MR or CT slice saved as a picture) they are
    flagged only, as a sagittal L5 may come close to the threshold; so are those of a radiograph whose modality
    was only guessed with doubt (``modality_certain`` False). ``body_probability``: the mean network probability
    inside the bodies (:class:`neurospine.slice2d.count_confidence.CountConfidence`)."""
    from neurospine.slice2d.count_confidence import PROB_MIN

    if not modality_certain and body_probability is not None and body_probability < PROB_MIN:
        v.flag(
            f"neither the kind of image (modality guess uncertain) nor the bodies (mean body probability "
            f"{body_probability:.2f} < {PROB_MIN}) look like what the model learned"
        )
    st = body_stats(inst, spacing_mm)
    n = int(st["n_bodies"])
    wide = n >= 2 and st["median_width_mm"] >= AP_WIDTH_RATIO * st["median_height_mm"]
    aspect = st.get("median_width_mm", 0.0) / max(st.get("median_height_mm", 1.0), 1e-6)
    ratio = f"the detected bodies are {aspect:.1f} times as wide as tall (seen from the side: about 1.1-1.4)"
    if wide and modality == "xray" and modality_certain:
        v.refuse("an AP/PA (frontal) radiograph", ratio)
    elif wide and is_2d:
        v.flag(f"{ratio}, like a frontal view or an axial slice")
    if n < 2:
        v.flag(f"{n} vertebral bod{'y' if n == 1 else 'ies'} found: not a view along the column")
    if n >= 4 and st["off_curve"] > MAX_OFF_CURVE:
        v.flag(f"the bodies do not lie on a smooth column (one is {st['off_curve']:.1f} body widths off the curve)")
    if n >= 3 and (irregular := irregular_gaps(st)):
        v.flag(irregular)
    if n >= 2 and st["area_ratio"] > MAX_AREA_RATIO:
        v.flag(f"body areas differ {st['area_ratio']:.0f}-fold")
    if n and spacing_known:
        h, w = st["median_height_mm"], st["median_width_mm"]
        if not (BODY_SIZE_MM[0] <= h <= BODY_SIZE_MM[1] and BODY_SIZE_MM[0] <= w <= BODY_SIZE_MM[1]):
            v.flag(f"bodies of implausible size (median {h:.0f} x {w:.0f} mm)")
    return v
