"""Plausibility of a ``neurospine cord`` input: an MRI showing the spinal cord (any contrast, axial or sagittal).

Refused before the model runs: CT (Hounsfield units; the cord cannot be told from the canal on CT). Refused
after the spine model's reading (the level estimate's, before any output is installed): an image whose bones are
its brightest tissue (CT without Hounsfield units: :func:`neurospine.plausibility.spine.bright_bone_lift`, over
at least :data:`~neurospine.plausibility.spine.MIN_BONE_MM3` of bone; docs/decisions/cord-ct-refusal-bone.md).
Flagged: a head MRI (skull vertex in view: only the top of the cervical cord, if any, is measured); a
trunk-wide field of view at coarse resolution (abdomen or chest survey, the cord a few voxels across); after
the model, a "cord" whose mean cross-section is far from a spinal cord's (about 40-100 mm2 from C1 to the
conus; brainstem or noise otherwise).

``drop_sacrum_notes`` keeps the cord tool from repeating the spine naming's sacrum remarks when the column it
named is cervical-sized (the sacrum cannot be in a cervical field of view).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from neurospine.io import Volume
from neurospine.plausibility.common import Evidence, evidence, refuse_label_map
from neurospine.plausibility.verdict import Verdict

EXPECTS = "an MRI showing the spinal cord (any contrast, axial or sagittal)"
#: mean cord cross-sectional area (mm2): adults 45-95 at C2-C3, smaller at T and the conus; wide margins
CORD_CSA_MM2 = (15.0, 180.0)
#: in-plane voxel coarser than this makes the cord (about 8 x 12 mm) a few voxels across (mm)
COARSE_INPLANE_MM = 2.0
#: a column whose median body is shallower than this is cervical (C3-C7 bodies are 14-18 mm deep): no sacrum
CERVICAL_DEPTH_MM = 20.0


def pre_check(image: Volume, ev: Evidence | None = None) -> Verdict:
    """Header and intensity evidence, before the model runs."""
    ev = evidence(image) if ev is None else ev
    v = Verdict("cord", expects=EXPECTS)
    refuse_label_map(v, ev.label_map)
    if ev.hounsfield:
        v.refuse("a CT image", "Hounsfield units: the cord is not visible on CT")
    if ev.head_in_view:
        v.flag("a head MRI (top of the skull in view): only the cord inside the field of view is measured")
    inplane = sorted(ev.spacing_mm)[:2]
    if ev.trunk_width and max(inplane) >= COARSE_INPLANE_MM:
        v.flag(
            f"a trunk-wide field of view ({ev.object_mm[0]:.0f} mm) at {max(inplane):.1f} mm voxels: the cord is a "
            "few voxels across"
        )
    return v


def mean_csa_mm2(cord_mask: npt.NDArray[np.generic], spacing_mm: tuple[float, float, float]) -> float | None:
    """Cord volume / cord length along its main axis (mm2); None for fewer than 10 voxels."""
    idx = np.argwhere(np.asarray(cord_mask) > 0)
    if len(idx) < 10:
        return None
    pts = idx[:: max(1, len(idx) // 20000)].astype(np.float64) * np.asarray(spacing_mm)
    pts -= pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts, full_matrices=False)
    axis = vt[0]
    proj = pts @ axis
    step = float(np.abs(axis) @ np.asarray(spacing_mm))  # one voxel along the axis
    length = float(proj.max() - proj.min()) + step
    return float(len(idx) * np.prod(spacing_mm)) / max(length, 1e-6)


def post_check(
    v: Verdict,
    cord_mask: npt.NDArray[np.generic],
    spacing_mm: tuple[float, float, float],
    csa_mm2: float | None = None,
) -> Verdict:
    """Flags from the model's output (in place; returns ``v``). ``csa_mm2``: the mean CSA the outputs report (so the
    flag quotes the user's number); without it, the mask's volume over its length (:func:`mean_csa_mm2`)."""
    csa = csa_mm2 if csa_mm2 is not None else mean_csa_mm2(cord_mask, spacing_mm)
    if csa is not None and not CORD_CSA_MM2[0] <= csa <= CORD_CSA_MM2[1]:
        v.flag(f"the segmented 'cord' is {csa:.0f} mm2 in cross-section (a spinal cord: about 40-100 mm2)")
    return v


def drop_sacrum_notes(warnings: list[str], median_depth_mm: float | None) -> list[str]:
    """``warnings`` without the spine naming's sacrum remarks when the named bodies are cervical-sized."""
    if median_depth_mm is None or median_depth_mm >= CERVICAL_DEPTH_MM:
        return warnings
    kept = [w for w in warnings if "sacrum" not in w.lower()]
    if len(kept) < len(warnings):
        kept.append(
            f"cervical-sized vertebral bodies (median {median_depth_mm:.0f} mm deep) and no C2 anchor found: the "
            "level names are positional (top body taken as C2); check the QC image or give --levels VERT_MASK"
        )
    return kept


def bone_check(v: Verdict, lift: float) -> Verdict:
    """Refuse a CT-like image from the spine segmentation's bright-bone lift (in place; returns ``v``)."""
    from neurospine.plausibility.spine import ct_like_evidence

    if reason := ct_like_evidence(lift, "the cord is not visible on CT"):
        v.refuse("CT without Hounsfield units", reason)
    return v
