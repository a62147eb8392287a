"""Plausibility of a ``neurospine brainage t1`` input: a whole-head T1-weighted MRI.

The CNN crops a 160 x 192 x 176 mm box down from the top of the head, so it needs the head's top in the field
of view and a head-sized object under it. Refused before the model runs: no head (a narrow slab such as a
sagittal spine series, a trunk-wide body, an object running out of the top of the field of view), and CT.
"""

from __future__ import annotations

from neurospine.io import Volume
from neurospine.plausibility.common import HEAD_LENGTH_MM, HEAD_WIDTH_MM, Evidence, evidence, refuse_label_map
from neurospine.plausibility.verdict import Verdict

EXPECTS = "a whole-head T1-weighted MRI (top of the head in view)"


def check(vol: Volume, ev: Evidence | None = None) -> Verdict:
    """The verdict on a T1w input, before the model runs."""
    ev = evidence(vol) if ev is None else ev
    v = Verdict("brainage t1", expects=EXPECTS)
    refuse_label_map(v, ev.label_map)
    if ev.hounsfield:
        v.refuse("a CT image", "Hounsfield units: the model reads T1-weighted MRI")
    if ev.head_in_view:
        return v
    if ev.trunk_width:
        v.refuse(f"a trunk image (body {ev.object_mm[0]:.0f} mm wide)", ev.describe())
    elif ev.fov_mm[0] < HEAD_WIDTH_MM[0] or ev.object_mm[0] < HEAD_WIDTH_MM[0]:
        v.refuse(
            "a spine or other narrow-field image",
            f"{ev.describe()}; the object is {ev.object_mm[0]:.0f} mm wide, a head {HEAD_WIDTH_MM[0]:.0f} mm or more",
        )
    elif ev.top_air_mm <= 0.0:
        v.refuse(
            "an image without the top of the head", f"{ev.describe()}; the object runs out of the top of the field"
        )
    else:
        v.refuse(
            "an image without a head-sized object",
            f"{ev.describe()}; 30-60 mm below its top the object is {ev.head_width_mm:.0f} x "
            f"{ev.head_length_mm:.0f} mm (a head: {HEAD_WIDTH_MM[0]:.0f}-{HEAD_WIDTH_MM[1]:.0f} x "
            f"{HEAD_LENGTH_MM[0]:.0f}-{HEAD_LENGTH_MM[1]:.0f} mm)",
        )
    return v
