"""Plausibility of a ``neurospine spine`` input: a sagittal or isotropic spine MRI.

Refused: a head MRI (skull vertex in view, head-sized, the vertebral column, if any, covering less than
half of the head-to-foot field of view): the issue's brain T1w gave "3 vertebrae [C2 C3 C4]".
Flagged: CT intensities (the model learned MRI), in Hounsfield units or rescaled (bone is the brightest
tissue: on MRI cortical bone is a signal void, on CT it is the brightest thing in view); an axial slab covering
< 100 mm head to foot; an output that is not a vertebral column (no body; bodies of implausible size; spacing
between neighbours far from regular; a column running across rather than head to foot; no canal behind most of
the column).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import Volume
from neurospine.plausibility.common import Evidence, evidence, gap_stats, irregular_gaps, refuse_label_map
from neurospine.plausibility.verdict import Verdict

EXPECTS = "a sagittal or 3D isotropic MRI of the spine"
#: vertebral body sizes (mm) from C3 to L5 with wide margins: depth 14-50, height 12-45
BODY_DEPTH_MM = (8.0, 70.0)
BODY_HEIGHT_MM = (5.0, 65.0)
#: centre-to-centre distance of neighbouring bodies: 15 (C3) to 45 mm (L3), wide
NEIGHBOUR_GAP_MM = (10.0, 60.0)
#: one gap may be a missed body (x2) or a split one (x0.5); beyond these ratios to the median it is irregular
#: the column runs within this angle (degrees) of head-to-foot
MAX_TILT_DEG = 60.0
#: share of the column's rows with canal (or cord) voxels
MIN_CANAL_SHARE = 0.5
#: on a head MRI the column, if any, covers less than this share of the head-to-foot field of view
HEAD_COLUMN_SHARE = 0.5
#: CT without Hounsfield units (8-bit, min-max rescaled): the brightest voxels lie in or on the bones this many
#: times more often than bone's share of the body would give. Measured: CT 4.4-6.4 (5 scans), MRI <= 1.3 (56)
BRIGHT_BONE_LIFT = 3.0
#: the lift counts only over this much labelled bone (mm^3; about one whole cervical vertebra): on a few cm^3 of
#: "bone" in a head MRI's neck it is a ratio of small counts (IXI443: 2.47; docs/decisions/cord-ct-refusal-bone.md)
MIN_BONE_MM3 = 10_000.0
#: share of the body's voxels taken as "brightest"
BRIGHT_QUANTILE = 99.5


def bone_mask(classes: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
    """The bone of a spine class map (model grid): every labelled class but canal, cord and disc."""
    from neurospine.spine import classes as C

    return (classes > 0) & ~np.isin(classes, (C.CANAL, C.CORD, C.DISC))


def bone_mm3(seg: Any, bone: npt.NDArray[np.bool_] | None = None) -> float:
    """Volume (mm^3) of the bone the spine segmentation ``seg`` labelled on its model grid (``bone``: its
    :func:`bone_mask`, when already computed)."""
    mask = bone_mask(np.asarray(seg.classes)) if bone is None else bone
    return float(mask.sum()) * float(np.prod(np.asarray(seg.grid.spacing_mm, dtype=np.float64)))


def bright_bone_lift(seg: Any, min_bone_mm3: float = MIN_BONE_MM3) -> float:
    """How much more often the brightest voxels lie in or next to labelled bone than bone's share predicts.

    On MRI cortical bone is dark and fat or fluid is brightest (lift about 0-1); on CT, with or without
    Hounsfield units, bone is the brightest tissue (lift well above 3). 0.0 when no bone or less than
    ``min_bone_mm3`` of it was segmented (no evidence either way).
    """
    bone = bone_mask(np.asarray(seg.classes))
    if not bone.any() or bone_mm3(seg, bone) < min_bone_mm3:
        return 0.0
    img = np.asarray(seg.grid.image, dtype=np.float32)
    sample = img.ravel()[:: max(1, img.size // 1_000_000)]  # thresholds from about a million voxels
    floor = float(np.percentile(sample, 5))
    body_sample = sample[sample > floor]
    if body_sample.size == 0:  # a constant image
        return 0.0
    body = img > floor
    top = body & (img >= np.percentile(body_sample, BRIGHT_QUANTILE))
    # the dilation only where bone is (its bounding box, one voxel wider)
    box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in ndimage.find_objects(bone.astype(np.uint8))[0])
    near_bone = np.zeros_like(bone)
    near_bone[box] = ndimage.binary_dilation(bone[box], iterations=1)
    share_top = float((top & near_bone).sum()) / max(int(top.sum()), 1)
    share_bone = float((near_bone & body).sum()) / max(int(body.sum()), 1)
    return share_top / max(share_bone, 1e-6)


def ct_like_evidence(lift: float, consequence: str) -> str | None:
    """Why a CT-like :func:`bright_bone_lift` says CT, and what follows (None below :data:`BRIGHT_BONE_LIFT`)."""
    if lift < BRIGHT_BONE_LIFT:
        return None
    return (
        f"the bones are the brightest tissue ({lift:.1f}x their share of the brightest voxels; on MRI cortical bone "
        f"is dark): {consequence}"
    )


def ct_like_reason(lift: float, consequence: str) -> str | None:
    """The flag text for a CT-like :func:`bright_bone_lift` (None below :data:`BRIGHT_BONE_LIFT`)."""
    evidence = ct_like_evidence(lift, consequence)
    return None if evidence is None else f"looks like CT: {evidence}"


def column_stats(seg: Any) -> dict[str, float]:
    """Output statistics of a ``SpineSegmentation`` (model grid, PIR)."""
    from neurospine.spine import classes as C

    sp = np.asarray(seg.grid.spacing_mm, dtype=np.float64)
    verts = seg.instances.vertebrae
    out: dict[str, float] = {"n_bodies": float(len(verts)), "fov_si_mm": float(seg.classes.shape[1] * sp[1])}
    if not verts:
        return out
    cent = np.array([np.asarray(v.centroid_vox, dtype=np.float64) * sp for v in verts])
    out["median_depth_mm"] = float(np.median([v.depth_mm for v in verts]))
    out["median_height_mm"] = float(np.median([v.height_mm for v in verts]))
    top = min(v.top_row for v in verts)
    bottom = max(v.bottom_row for v in verts)
    out["column_si_mm"] = float(bottom - top + 1) * float(sp[1])
    if len(verts) >= 2:
        out.update(gap_stats(cent))
        d = cent[-1] - cent[0]
        out["tilt_deg"] = float(np.degrees(np.arccos(min(1.0, abs(d[1]) / max(np.linalg.norm(d), 1e-6)))))
    rows = np.arange(int(np.floor(top)), int(np.ceil(bottom)) + 1)
    rows = rows[(rows >= 0) & (rows < seg.classes.shape[1])]
    if rows.size:
        canal = np.isin(seg.classes[:, rows, :], (C.CANAL, C.CORD)).any(axis=(0, 2))
        out["canal_share"] = float(canal.mean())
    return out


def pre_check(ev: Evidence) -> Verdict:
    """What can be refused before the model runs (a label map given as the image)."""
    v = Verdict("spine", expects=EXPECTS)
    refuse_label_map(v, ev.label_map)
    return v


def check(vol: Volume, seg: Any, ev: Evidence | None = None) -> Verdict:
    """The verdict on ``vol`` given the pipeline's segmentation ``seg`` (nothing written yet); a label map given as
    the image is refused before the model runs (:func:`pre_check`)."""
    ev = evidence(vol) if ev is None else ev
    st = column_stats(seg)
    v = Verdict("spine", expects=EXPECTS)
    share = st.get("column_si_mm", 0.0) / max(st["fov_si_mm"], 1e-6)
    if ev.head_in_view and share < HEAD_COLUMN_SHARE:
        v.refuse(
            "a head (brain) MRI",
            f"top of a {ev.head_width_mm:.0f} x {ev.head_length_mm:.0f} mm head in view; vertebral bodies cover "
            f"{100 * share:.0f} % of the head-to-foot field of view",
        )
    if ev.hounsfield:
        v.flag("CT intensities (Hounsfield units): the spine model was trained on MRI")
    elif reason := ct_like_reason(bright_bone_lift(seg), "the spine model was trained on MRI"):
        v.flag(reason)
    if ev.axial_slab:
        v.flag(f"an axial slab covering {ev.fov_mm[2]:.0f} mm head to foot across {ev.fov_mm[0]:.0f} mm")
    column_checks(st, v)
    return v


def column_checks(st: dict[str, float], v: Verdict) -> None:
    """Flags from the output column statistics (see :func:`column_stats`)."""
    n = int(st["n_bodies"])
    if n == 0:
        v.flag("no vertebral body found")
        return
    depth, height = st["median_depth_mm"], st["median_height_mm"]
    if not BODY_DEPTH_MM[0] <= depth <= BODY_DEPTH_MM[1] or not BODY_HEIGHT_MM[0] <= height <= BODY_HEIGHT_MM[1]:
        v.flag(f"vertebral bodies of implausible size (median {height:.0f} mm high, {depth:.0f} mm deep)")
    if n >= 2:
        gap = st["median_gap_mm"]
        if not NEIGHBOUR_GAP_MM[0] <= gap <= NEIGHBOUR_GAP_MM[1]:
            v.flag(
                f"neighbouring bodies {gap:.0f} mm apart (a column: {NEIGHBOUR_GAP_MM[0]:.0f}-"
                f"{NEIGHBOUR_GAP_MM[1]:.0f} mm)"
            )
        if st["tilt_deg"] > MAX_TILT_DEG:
            v.flag(f"the bodies line up {st['tilt_deg']:.0f} degrees away from head-to-foot")
    if n >= 3 and (irregular := irregular_gaps(st)):
        v.flag(irregular)
    if n >= 2 and st.get("canal_share", 1.0) < MIN_CANAL_SHARE:
        v.flag(f"no spinal canal behind {100 * (1 - st['canal_share']):.0f} % of the column")
