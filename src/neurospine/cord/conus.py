"""Slices whose vertebral level lies below where the spinal cord usually ends (the conus medullaris).

In adults the conus medullaris ends at about L1-L2, rarely L2-L3; below it the canal holds the cauda
equina, whose clumped nerve roots a cord segmentation readily traces as "cord". Its CSA there means
nothing. This module does not detect the conus: it flags a slice by its level name only, so a slice
at L3 or lower (L3-L6, the sacrum, the coccyx) is flagged and L2 is not (the conus can end at L2-L3).
A slice without a level is neither flagged nor cleared.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Name of the per-slice flag column in ``<stem>_csa.csv``.
FLAG_COLUMN = "below_conus_level"
#: Level names flagged, cranial first: L3 and everything below it (the conus rarely reaches below L2-L3).
BELOW_CONUS_LEVELS: tuple[str, ...] = ("L3", "L4", "L5", "L6", "S1", "S2", "S3", "S4", "S5", "S6", "Cocc")


def below_conus(level: str) -> bool | None:
    """Whether a slice at ``level`` lies at L3 or lower; ``None`` when the level is unknown (``""``)."""
    if not level:
        return None
    return level in BELOW_CONUS_LEVELS


def flag_text(level: str) -> str:
    """The CSV value of the flag: ``1`` (L3 or lower), ``0`` (above) or empty (level unknown)."""
    flag = below_conus(level)
    return "" if flag is None else str(int(flag))


def flag_warning(
    image: str, levels: Sequence[str], *, csv_name: str, perlevel_name: str, qc: str, positional: bool
) -> str | None:
    """One warning for the slices of ``image`` flagged below the conus (``levels``: one name per cord slice)."""
    flagged = [lv for lv in levels if below_conus(lv)]
    if not flagged:
        return None
    names = "/".join(name for name in BELOW_CONUS_LEVELS if name in flagged)
    msg = (
        f"{image}: {len(flagged)} of {len(levels)} cord slices lie at {names} (L3 or lower), below "
        "where the conus medullaris usually ends (L1-L2, rarely L2-L3); the segmented 'cord' there is likely "
        f"cauda equina. They are flagged {FLAG_COLUMN}=1 in {csv_name} and left out of {perlevel_name} and the "
        f"mean CSA; check the QC image {qc}"
    )
    if positional:
        msg += " (the level names are positional, not anchored: the flag may be off by a level)"
    return msg
