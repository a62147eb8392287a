"""Slices just above a caudal end of the segmented cord that lies inside the image (docs/decisions/cord-lost-end.md).

Above the conus the spinal cord does not end: when the segmented cord stops while the image goes on below it,
the segmentation lost the cord there, usually where the signal fades (the bottom of a head coil). It does not
lose it at once: the areas shrink over the last centimetres before the end (IXI head T1w: the flagged slices read
about 0.81 of the mid-cord area; a simulated fall-off on errsm_30 shrank them to 0.93 of the same slices without it,
and left the slices farther up alone). Those slices are flagged and left out of the summaries. At the conus,
where the cord does end inside the image, its last centimetres taper and are no cord CSA to compare either.

A caudal end at the image's last slices is the field's edge, not the cord's, and flags nothing, except on a head
MRI: there the cord in view ends in the head coil's fall-off whether or not the segmentation lost it (IXI cords
that reach the field's bottom read 0.80 of their mid-cord area over their lowest 20 mm), so its lowest 20 mm are
flagged wherever it ends. A stack of thick slices (over 3 mm apart along the cord, e.g. a 2D axial T2*w) is never
flagged: 20 mm there are one to three slices, and nothing here measured a fade on them.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Name of the per-slice flag column in ``<stem>_csa.csv``.
FLAG_COLUMN = "near_lost_end"
#: slices less than this far above a lost caudal end are flagged
FADE_MM = 20.0
#: a caudal end counts as inside the image when at least this much image lies below it
MIN_BELOW_MM = 4.0
#: slices farther apart than this (along the cord) are never flagged
MAX_SLICE_MM = 3.0


def flagged_slices(cord_slices: Sequence[int], slice_mm: float, *, field_bottom_fades: bool = False) -> set[int]:
    """The flagged members of ``cord_slices`` (indices along an axis that grows superiorly, 0 the image's most
    caudal slice; ``slice_mm`` their spacing): those less than :data:`FADE_MM` above the lowest one, when at least
    :data:`MIN_BELOW_MM` (and one slice) of image lies below it, or wherever it lies when ``field_bottom_fades``
    (a head MRI: docs/decisions/cord-lost-end.md, amendment 1), and the slices are at most :data:`MAX_SLICE_MM`
    apart; else none."""
    if not cord_slices or slice_mm > MAX_SLICE_MM:
        return set()
    lowest = min(cord_slices)
    if not field_bottom_fades and (lowest < 1 or lowest * slice_mm < MIN_BELOW_MM):
        return set()
    return {k for k in cord_slices if (k - lowest) * slice_mm < FADE_MM}


def flag_warning(
    image: str, flags: Sequence[bool], *, csv_name: str, perlevel_name: str, qc: str, head: bool = False
) -> str | None:
    """One warning for the slices of ``image`` flagged near a lost end (``flags``: one per cord slice; ``head``: a
    head MRI, whose cord is flagged wherever it ends)."""
    n = sum(bool(f) for f in flags)
    if not n:
        return None
    where = (
        "on a head MRI ends in the head coil's fall-off, and its areas shrink"
        if head
        else "ends inside the image, above its lowest slice, and its areas shrink (the signal fades, or the cord "
        "tapers to the conus)"
    )
    return (
        f"{image}: the segmented cord {where} over the {FADE_MM:.0f} mm above its end. Those {n} of {len(flags)} "
        f"cord slices are flagged {FLAG_COLUMN}=1 in {csv_name} and left out of {perlevel_name} and the mean CSA; "
        f"check the QC image {qc}"
    )
