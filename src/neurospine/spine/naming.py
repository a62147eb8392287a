"""Level naming: anchor on the sacrum (S1) and/or C2, count, detect one extra or missing vertebra.

Input: vertebrae ordered top to bottom with body measurements, whether a sacrum sits right below the
lowest one and whether the top one looks like C2 (tall body with the dens, small cervical depth).
Output: a level id (``neurospine.labels`` numbering, L1 = 20, S1 = 26) per vertebra, the anchor used,
a confidence in [0, 1] and flags.

24 presacral vertebrae between C2 and S1 are named with an L6 unless the caller says the extra vertebra is a
T13 (``extra_vertebra``): the semantic model labels lumbar transverse and thoracic costal processes alike
(43/44) and ribs are not segmented (the synthetic engine paints them as unlabelled tissue), so the pipeline has
no evidence that tells a rib-bearing T13 from an L6. Without the caller's choice the case is flagged
(:data:`EXTRA_VERTEBRA_FLAG`) and the L1-L6 names are listed as uncertain.

Transitional lumbosacral anatomy (a sacralised L5, a lumbarised S1): the lowest mobile body looks like a sacral
segment (small against the bodies above, and with a rudimentary or no disc below it; :func:`transition_signs`).
The segment may then be L5 or S1 (or an L6), which a lumbar field of view cannot tell, so every name counted from
the sacrum may be one level off: the confidence drops below :data:`CONFIDENT` and the names are listed as uncertain
(:data:`TRANSITIONAL_FLAG`). A 22-vertebra count between C2 and S1 (11 thoracic or 4 lumbar vertebrae) is
flagged the same way. Four or six ordinary lumbar vertebrae with no such sign and no C2 in view cannot be seen
from the image (ribs are not segmented); ``benchmarks/spine_naming.py`` measures how often that happens. When C2
is in view but not recognised by its shape, a cervical-sized top body with image and no body above it is presumed
to be C2 (:func:`presumed_c2`): a count from the sacrum that does not name it C2 is flagged
(:data:`CERVICAL_TOP_FLAG`; bodies missed in between, or a transitional count).

Without any anchor the naming is *positional* (flagged): the lowest body is
L5 in a lumbar-sized column, the top body is placed by the shape of the column's depth profile when the column
rises like the thoracic spine, and is C2 otherwise. The flag says why no sacrum anchored it (none found, not
right below the lowest vertebra, too small, ...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from neurospine.labels import CRANIOCAUDAL_ORDER, VERTEBRA_IDS, VERTEBRA_NAMES

log = logging.getLogger(__name__)

#: names at a naming confidence below this are *flagged* (uncertain): the outputs say so and a benchmark counts a
#: wrong name at or above it as a confident wrong name
CONFIDENT = 0.8
#: presacral vertebrae visible on MRI from C2 to L5 (C1 has no body)
STANDARD_C2_TO_L5 = 23
#: C2-C7 and T1-T12
C2_TO_T12 = 18
TOP_C2_LUMBAR_FLAG = (
    "the column counted down from the top reaches the lumbar spine but no sacrum anchors its lower end: one missed "
    "or extra body shifts every name below it"
)
#: C2: body + dens at least this tall relative to its depth, and a small (cervical) depth
C2_HEIGHT_OVER_DEPTH = 1.35
C2_MAX_DEPTH_MM = 22.0
#: a cervical-sized top body with this much image above it (mm) and no body there is presumed to be C2 (C1 has no
#: body; the skull is above it): a count from the sacrum that does not reach C2 there is flagged
C2_ROOM_ABOVE_MM = 20.0
CERVICAL_TOP_FLAG = "the top body looks like C2 (cervical size, no body above it) but the count from the sacrum"
CERVICAL_TOP_CONFIDENCE = 0.5
#: sacrum volume (mm^3) from which it is trusted as an anchor with full confidence
SACRUM_MIN_MM3 = 8000.0
#: smallest sacrum (mm^3, model grid) used as an anchor at all (with lower confidence)
SACRUM_ANCHOR_MIN_MM3 = SACRUM_MIN_MM3 * 0.25
#: the caller's names for the 24th presacral vertebra (C2 and S1 both anchored); ``None`` = not known (L6, flagged)
EXTRA_VERTEBRA_CHOICES = ("l6", "t13")
EXTRA_VERTEBRA_FLAG = "24 presacral vertebrae: L6 or T13 cannot be told apart without rib information"
TRANSITIONAL_FLAG = (
    "transitional lumbosacral segment suspected (sacralised L5 or lumbarised S1): names counted from the sacrum "
    "may be one level off"
)
COUNT_22_FLAG = "22 presacral vertebrae: 11 thoracic or 4 lumbar vertebrae cannot be told apart without ribs"
#: the lowest mobile body looks sacral when its volume is below this fraction of the median of the (up to three)
#: bodies above it. Chosen on fresh synthetic scans (seeds 95001-95206, benchmarks/spine_naming.py): ordinary L5
#: 0.90-1.05, transitional segments (0.70-0.85 as tall) 0.62-0.76; bodies under 0.6 are sacral pieces
#: (``SACRAL_VOLUME_RATIO``)
TRANSITIONAL_VOLUME_RATIO = 0.8
#: ... and when the disc below it is smaller than this fraction of the median disc below those bodies (a
#: rudimentary or absent disc). Same scans: ordinary L5-S1 discs 0.86-1.17, rudimentary ones 0.41-0.77. Real
#: held-out L5-S1 discs measure 0.37-0.59 too (thin, degenerated discs are common), so this sign alone is not
#: specific: only both signs together flag the names (docs/decisions/spine-naming-transitional.md)
TRANSITIONAL_DISC_RATIO = 0.6
#: naming confidence with one of those signs (names kept, not flagged) / with both (flagged, below CONFIDENT)
TRANSITIONAL_CONFIDENCE = (0.85, 0.5)
#: a body this many times as tall as the median of its neighbours may be two vertebrae merged (a missed disc)
MERGED_HEIGHT_RATIO = 1.6
#: confidence cap, and the note of the names that rest on counting across such a body
MERGED_CONFIDENCE = 0.5
MERGED_FLAG = "a body about twice as tall as its neighbours may be two merged vertebrae: names may be one level off"
#: a disc at least this fraction of the median disc volume counts as a full (mobile) disc
LAST_DISC_RATIO = 0.35
#: lumbar bodies are at least this deep (mm); used only by the positional fallback
LUMBAR_MIN_DEPTH_MM = 28.0
#: a body taken as L5 by a bottom anchor must be at least this deep (mm): adult cervical bodies are about
#: 15-19 mm deep, upper thoracic 20-25, L5 30-37; a "last disc" above cervical bodies is not the L5-S1 disc
L5_MIN_DEPTH_MM = 24.0
#: ... or, in a lumbar-sized column (median body at least L5_MIN_DEPTH_MM deep), this fraction of its median depth
L5_RELATIVE_DEPTH = 0.85
#: when a bottom anchor shows the lumbosacral junction, bodies at the bottom of the column smaller than this
#: fraction of the median body volume are sacral pieces (the fused, tilted S1-S3 bodies are found only in part
#: by the semantic model), not L5. Chosen on the real *training* cases (VB2/VB3): L5 found right in 25/26 with
#: the outline-calibrated 0.2.0 model, against 19/26 for the disc pattern alone (0.7 gave the same).
SACRAL_VOLUME_RATIO = 0.6
#: typical adult mid-sagittal vertebral-body depth (mm), C2 to L5, from the published morphometry ranges (about
#: 15 mm through the cervical spine, growing steadily through the thoracic spine, 33-37 mm in the lumbar spine).
#: Only the positional fallback uses it, and only its shape matters (a per-subject scale is fitted).
REFERENCE_DEPTH_MM: tuple[tuple[str, float], ...] = (
    ("C2", 15.0), ("C3", 15.0), ("C4", 15.3), ("C5", 15.6), ("C6", 16.0), ("C7", 16.5),
    ("T1", 17.0), ("T2", 18.5), ("T3", 20.0), ("T4", 21.5), ("T5", 23.0), ("T6", 24.5),
    ("T7", 26.0), ("T8", 27.5), ("T9", 28.5), ("T10", 29.5), ("T11", 31.0), ("T12", 32.0),
    ("L1", 33.5), ("L2", 34.5), ("L3", 35.5), ("L4", 35.5), ("L5", 35.0),
)  # fmt: skip
_L1_DEPTH_MM = dict(REFERENCE_DEPTH_MM)["L1"]
#: a column whose body depth rises at least this much from its top to its bottom third spans the thoracic spine
#: (real lumbar columns of the VB2/VB3/IVD training cases: 0.85-1.04; synthetic thoracic fields of view
#: 1.22-1.79). In such a column a weak bottom anchor (the last-disc pattern, or a sacrum smaller than the median
#: body) is refused: a body cut by the field of view shows the same pattern (8 of 9 such anchors were false on
#: fresh synthetic thoracic scans), and the positional fallback fits the depth profile instead of assuming C2.
PROFILE_MIN_RISE = 1.2
#: a profile fit whose top is at most this index of ``REFERENCE_DEPTH_MM`` (C2, C3 or C4) keeps the C2-top assumption
PROFILE_C2_REACH = 2
#: per-subject size factor allowed in the profile fit
PROFILE_SCALE_RANGE = (0.8, 1.25)


@dataclass(frozen=True)
class BodyInfo:
    """Measurements of one vertebra, top to bottom."""

    height_mm: float
    depth_mm: float
    centroid_si_mm: float  # position along the superior->inferior axis (grows inferiorly)
    volume_mm3: float = 0.0
    disc_below_mm3: float = 0.0  # volume of the disc tied to this vertebra (the disc below it)
    touches_fov_bottom: bool = False
    room_above_mm: float = 0.0  # image extent above the body's top (superior-inferior, mm)


@dataclass
class Naming:
    levels: list[int]
    anchor: str  # "S1", "C2", "S1+C2" or "positional"
    confidence: float
    flags: list[str] = field(default_factory=list)
    #: level ids whose name rests on an unresolved choice (L1-L6 of an unconfirmed L6/T13 case)
    uncertain_levels: list[int] = field(default_factory=list)
    #: why those names are uncertain (the CSV note)
    uncertain_note: str = EXTRA_VERTEBRA_FLAG
    #: how a positional naming was made: "top-c2", "top-c2-lumbar", "depth-profile" or "lowest-l5" ("" anchored)
    method: str = ""

    @property
    def positional(self) -> bool:
        return self.anchor == "positional"


def _chain(start_name: str, count: int, *, upward: bool, thoracic: int = 12, lumbar: int = 5) -> list[int]:
    """``count`` ids starting at ``start_name`` going up or down the column with variant counts."""
    order = [VERTEBRA_IDS[f"C{i}"] for i in range(1, 8)]
    order += [VERTEBRA_IDS[f"T{i}"] for i in range(1, min(thoracic, 12) + 1)]
    if thoracic == 13:
        order.append(VERTEBRA_IDS["T13"])
    order += [VERTEBRA_IDS[f"L{i}"] for i in range(1, lumbar + 1)]
    pos = order.index(VERTEBRA_IDS[start_name])
    out: list[int] = []
    for k in range(count):
        i = pos - k if upward else pos + k
        out.append(order[i] if 0 <= i < len(order) else 0)
    return list(reversed(out)) if upward else out


def looks_like_c2(top: BodyInfo) -> bool:
    return top.depth_mm <= C2_MAX_DEPTH_MM and top.height_mm >= C2_HEIGHT_OVER_DEPTH * top.depth_mm


def c1_sized(top: BodyInfo, below: BodyInfo) -> bool:
    """Small against the body below it, as the atlas's anterior arch is (the atlas has no body)."""
    small = top.volume_mm3 > 0 and top.volume_mm3 < 0.35 * below.volume_mm3
    return small and top.height_mm < 0.6 * below.height_mm


def looks_like_c1(top: BodyInfo, below: BodyInfo) -> bool:
    """The atlas has no body: what remains (anterior arch) is small and sits above a C2."""
    return c1_sized(top, below) and looks_like_c2(below)


def last_disc_anchor(bodies: list[BodyInfo]) -> int | None:
    """Index of L5 found as the lowest vertebra with a full disc below it and sacral segments under that disc.

    The sacral segments are fused: a vertebra-like body with no real disc below it sits under the L5-S1
    disc. Needs: at least 3 discs, the candidate's disc at least ``LAST_DISC_RATIO`` of the median disc and
    every body below it without such a disc, and the candidate deep enough to be L5 (:func:`deep_enough_for_l5`).
    When the only body below is cut by the field of view it may be an L5 cut below the L4-L5 disc rather than
    S1: ``name_levels`` lowers the confidence and flags it.
    """
    discs = [b.disc_below_mm3 for b in bodies if b.disc_below_mm3 > 0]
    if len(discs) < 3:
        return None
    full = LAST_DISC_RATIO * float(sorted(discs)[len(discs) // 2])
    has_disc = [b.disc_below_mm3 >= full for b in bodies]
    for k in range(len(bodies) - 2, -1, -1):
        if has_disc[k]:
            if any(has_disc[k + 1 :]) or not deep_enough_for_l5(bodies[k], bodies):
                return None
            return k
    return None


def deep_enough_for_l5(body: BodyInfo, bodies: list[BodyInfo]) -> bool:
    """Whether ``body`` may be L5 under a bottom anchor: at least ``L5_MIN_DEPTH_MM`` deep, or, in a column
    whose median body is that deep, at least ``L5_RELATIVE_DEPTH`` of the median. The second case keeps small
    adults and adolescents (lumbar bodies 23-28 mm, L5 often the shallowest) while a cervical column
    (15-22 mm) still fails, and so does a partly found sacral piece under deep lumbar bodies (16-22 mm
    under 30-40 mm on the training cases)."""
    if body.depth_mm >= L5_MIN_DEPTH_MM:
        return True
    depths = sorted(b.depth_mm for b in bodies)
    median = depths[len(depths) // 2]
    return median >= L5_MIN_DEPTH_MM and body.depth_mm >= L5_RELATIVE_DEPTH * median


def small_bottom_bodies(bodies: list[BodyInfo]) -> int:
    """How many bodies at the bottom are smaller than ``SACRAL_VOLUME_RATIO`` x the median body volume (at
    least one body is always left). A lowest body cut by the field of view is not counted (it may be a cut L5)."""
    vols = sorted(b.volume_mm3 for b in bodies)
    if len(bodies) < 3 or vols[len(vols) // 2] <= 0:
        return 0
    limit = SACRAL_VOLUME_RATIO * vols[len(vols) // 2]
    k = len(bodies) - 1
    if bodies[k].touches_fov_bottom:
        return 0
    while k > 0 and bodies[k].volume_mm3 < limit:
        k -= 1
    return len(bodies) - 1 - k


@dataclass(frozen=True)
class TransitionSigns:
    """How sacral the lowest mobile body looks, relative to the (up to three) bodies above it.

    ``volume_ratio``: its volume over their median volume; ``disc_ratio``: the disc below it over the median disc
    below them (0 when no disc was found below it). None when not measurable."""

    volume_ratio: float | None
    disc_ratio: float | None

    @property
    def small(self) -> bool:
        return self.volume_ratio is not None and self.volume_ratio < TRANSITIONAL_VOLUME_RATIO

    @property
    def thin_disc(self) -> bool:
        return self.disc_ratio is not None and self.disc_ratio < TRANSITIONAL_DISC_RATIO

    @property
    def count(self) -> int:
        return int(self.small) + int(self.thin_disc)

    def describe(self) -> str:
        parts = []
        if self.small:
            parts.append(f"lowest mobile body small ({self.volume_ratio:.2f} of the volume of the bodies above)")
        if self.thin_disc:
            parts.append(f"disc below it rudimentary or absent ({self.disc_ratio:.2f} of the discs above)")
        return "; ".join(parts)


def transition_signs(presacral: list[BodyInfo]) -> TransitionSigns:
    """:class:`TransitionSigns` of the lowest of ``presacral`` (the bodies above the sacrum, top to bottom)."""
    if len(presacral) < 3:
        return TransitionSigns(None, None)
    low, above = presacral[-1], presacral[-4:-1]
    vols = [b.volume_mm3 for b in above if b.volume_mm3 > 0]
    small = low.volume_mm3 / float(np.median(vols)) if len(vols) >= 2 and low.volume_mm3 > 0 else None
    discs = [b.disc_below_mm3 for b in above if b.disc_below_mm3 > 0]
    disc = low.disc_below_mm3 / float(np.median(discs)) if len(discs) >= 2 else None
    return TransitionSigns(small, disc)


def _with_transition_check(naming: Naming, presacral: list[BodyInfo]) -> Naming:
    """Lower the confidence and list the names as uncertain when the lowest mobile body looks transitional (both
    signs); one sign alone lowers the confidence a little and says so, the names stay unflagged."""
    signs = transition_signs(presacral)
    if not signs.count:
        return naming
    naming.confidence = min(naming.confidence, TRANSITIONAL_CONFIDENCE[signs.count - 1])
    if signs.count == 1:
        naming.flags.append(f"one sign of a transitional lumbosacral segment ({signs.describe()}); names kept")
        return naming
    naming.flags.append(f"{TRANSITIONAL_FLAG} ({signs.describe()})")
    return _mark_uncertain(naming, naming.levels, TRANSITIONAL_FLAG)


def _mark_uncertain(naming: Naming, levels: list[int], note: str) -> Naming:
    """Add the named ``levels`` to the uncertain ones for ``note``, keeping an earlier reason (e.g. L6 or T13) in
    the note."""
    earlier = naming.uncertain_note if naming.uncertain_levels else ""
    naming.uncertain_levels = sorted({lvl for lvl in levels if lvl} | set(naming.uncertain_levels))
    naming.uncertain_note = f"{earlier}; {note}" if earlier else note
    return naming


#: a body whose top lies closer than this (mm) to the top of the image is taken as cut by the field of view
CUT_TOP_MM = 3.0


def cut_by_fov(body: BodyInfo) -> bool:
    """Whether the field of view cuts ``body`` (its height is then not its own)."""
    return body.touches_fov_bottom or body.room_above_mm < CUT_TOP_MM


def tall_bodies(bodies: list[BodyInfo], levels: list[int]) -> list[tuple[int, float]]:
    """Indices of bodies at least :data:`MERGED_HEIGHT_RATIO` times as tall as the median of their neighbours (up to
    two on each side; C1, C2, sacral pieces and bodies cut by the field of view are neither judged nor
    neighbours), with that ratio."""
    skip = {VERTEBRA_IDS["C1"], VERTEBRA_IDS["C2"], VERTEBRA_IDS["S1"]}
    usable = [i for i, b in enumerate(bodies) if not cut_by_fov(b) and b.height_mm > 0 and levels[i] not in skip]
    out = []
    for k, i in enumerate(usable):
        near = [bodies[j].height_mm for j in usable[max(0, k - 2) : k] + usable[k + 1 : k + 3]]
        if len(near) < 2:
            continue
        ratio = bodies[i].height_mm / float(np.median(near))
        if ratio >= MERGED_HEIGHT_RATIO:
            out.append((i, ratio))
    return out


def _with_merged_body_check(naming: Naming, bodies: list[BodyInfo]) -> Naming:
    """Flag the names that rest on counting across a body that may be two merged vertebrae (see
    :func:`tall_bodies`): above it when named from the sacrum, below it when named from C2, all with both anchors.
    Positional namings are left as they are (their confidence is already low)."""
    if naming.positional or naming.anchor == "none" or len(naming.levels) != len(bodies):
        return naming
    tall = tall_bodies(bodies, naming.levels)
    if not tall:
        return naming
    anchors = naming.anchor.split("+")
    from_bottom, from_top = anchors[0] in ("S1", "last-disc"), "C2" in anchors
    first, last = tall[0][0], tall[-1][0]
    start = 0 if from_bottom else first  # counted up from the sacrum: every name at or above the lowest tall body
    stop = len(bodies) if from_top else last + 1  # counted down from C2: every name at or below the highest one
    which = ", ".join(f"{VERTEBRA_NAMES.get(naming.levels[i], '?')} {ratio:.1f}x" for i, ratio in tall)
    naming.flags.append(f"{MERGED_FLAG} (bodies named {which} as tall as their neighbours)")
    naming.confidence = min(naming.confidence, MERGED_CONFIDENCE)
    return _mark_uncertain(naming, naming.levels[start:stop], MERGED_FLAG)


def name_levels(
    bodies: list[BodyInfo],
    *,
    sacrum_mm3: float,
    sacrum_below: bool,
    c2_top: bool | None = None,
    extra_vertebra: str | None = None,
) -> Naming:
    """Name ``bodies`` (top to bottom, see :func:`_name_levels`), then flag the names that rest on counting across
    a body that may be two merged vertebrae (:func:`_with_merged_body_check`)."""
    naming = _name_levels(
        bodies, sacrum_mm3=sacrum_mm3, sacrum_below=sacrum_below, c2_top=c2_top, extra_vertebra=extra_vertebra
    )
    return _with_merged_body_check(naming, bodies)


def _name_levels(
    bodies: list[BodyInfo],
    *,
    sacrum_mm3: float,
    sacrum_below: bool,
    c2_top: bool | None = None,
    extra_vertebra: str | None = None,
) -> Naming:
    """Name ``bodies`` (top to bottom). ``sacrum_below``: a sacrum touches the lowest body from below.

    Bottom anchors: the sacrum class right below the lowest body (S1), else the last full disc (bodies
    under it are sacral segments and are named S1). Top anchor: C2 (tall body with the dens), with C1 above
    it when its remnant is found. Both ends: the count between them decides L6 / T13 / 11 thoracic variants.
    ``extra_vertebra`` ("l6" or "t13", see :data:`EXTRA_VERTEBRA_CHOICES`) names the 24th presacral vertebra
    when the caller knows it (from the ribs on another image); ``None`` names it L6 and flags the case.
    """
    if extra_vertebra is not None and extra_vertebra not in EXTRA_VERTEBRA_CHOICES:
        raise ValueError(f"extra_vertebra must be one of {EXTRA_VERTEBRA_CHOICES} or None, not {extra_vertebra!r}")
    n = len(bodies)
    if n == 0:
        return Naming([], "none", 0.0, ["no vertebra found"])
    c1 = n >= 2 and looks_like_c1(bodies[0], bodies[1])
    if c1:
        rest = _name_levels(
            bodies[1:], sacrum_mm3=sacrum_mm3, sacrum_below=sacrum_below, c2_top=True, extra_vertebra=extra_vertebra
        )
        return Naming(
            [VERTEBRA_IDS["C1"], *rest.levels],
            rest.anchor,
            rest.confidence,
            rest.flags,
            rest.uncertain_levels,
            rest.uncertain_note,
            rest.method,
        )
    flags: list[str] = []
    # the body that would be L5 under a sacrum anchor: above any small sacral pieces at the bottom
    l5_candidate = bodies[n - 1 - small_bottom_bodies(bodies)]
    l5_sized = deep_enough_for_l5(l5_candidate, bodies)
    big_enough = sacrum_mm3 >= SACRUM_ANCHOR_MIN_MM3
    has_s1 = sacrum_below and big_enough and l5_sized
    if sacrum_below and not l5_sized:
        flags.append("a sacrum-like structure below a body too small to be L5: not used as the S1 anchor")
    vols = sorted(b.volume_mm3 for b in bodies)
    rising = _depth_rise(bodies) >= PROFILE_MIN_RISE
    thoracic_refused = has_s1 and rising and sacrum_mm3 < vols[n // 2]
    if thoracic_refused:
        has_s1 = False
        flags.append("a sacrum smaller than a vertebral body under a thoracic-like column: not used as the S1 anchor")
    # why no sacrum label anchors the naming, for the messages of the positional fallbacks below
    if sacrum_mm3 <= 0:
        sacrum_status = "no sacrum found"
    elif not sacrum_below:
        sacrum_status = f"a sacrum was found ({sacrum_mm3:.0f} mm3) but not right below the lowest vertebra"
    elif not big_enough:
        sacrum_status = (
            f"a sacrum was found but too small to anchor ({sacrum_mm3:.0f} mm3 < {SACRUM_ANCHOR_MIN_MM3:.0f} mm3)"
        )
    elif not l5_sized:
        sacrum_status = "a sacrum-like structure was found below a body too small to be L5"
    else:
        sacrum_status = "a sacrum smaller than a vertebral body was found under a thoracic-like column"
    bottom_conf = 0.95 if sacrum_mm3 >= SACRUM_MIN_MM3 else 0.75
    bottom_name = "S1"
    sacral_tail: list[int] = []
    presacral = bodies
    if not has_s1:
        k = last_disc_anchor(bodies)
        if k is not None and rising:
            flags.append("last-disc pattern under a thoracic-like column not used (a body cut by the field of view)")
            k = None
        if k is not None:
            has_s1, bottom_conf, bottom_name = True, 0.7, "last-disc"
            flags.append("sacrum found from the disc pattern (last full disc = L5-S1), not from a sacrum label")
            if n - k - 1 == 1 and bodies[-1].touches_fov_bottom:
                bottom_conf = 0.55
                flags.append("the body taken as S1 is cut by the field of view (it could be a cut L5)")
            tail = small_bottom_bodies(bodies)
            if tail != n - k - 1 and tail > 0 and deep_enough_for_l5(bodies[n - 1 - tail], bodies):
                flags.append(f"L5 put above the {tail} small sacral piece(s) at the bottom, not at the last full disc")
                k = n - 1 - tail
                bottom_conf = min(bottom_conf, 0.6)
            presacral = bodies[: k + 1]
            sacral_tail = [VERTEBRA_IDS["S1"]] * (n - k - 1)
    elif bodies:
        tail = small_bottom_bodies(bodies)
        if tail and deep_enough_for_l5(bodies[n - 1 - tail], bodies):
            presacral = bodies[: n - tail]
            sacral_tail = [VERTEBRA_IDS["S1"]] * tail
            bottom_conf = min(bottom_conf, 0.7)
            flags.append(f"{tail} small body piece(s) above the sacrum taken as sacral segments (S1)")
    m = len(presacral)
    has_c2 = looks_like_c2(bodies[0]) if c2_top is None else c2_top
    if has_s1 and has_c2:
        both = f"{bottom_name}+C2"
        if m == STANDARD_C2_TO_L5:
            return Naming(_chain("C2", m, upward=False) + sacral_tail, both, 0.99 if not sacral_tail else 0.9, flags)
        if m == STANDARD_C2_TO_L5 + 1:
            if extra_vertebra == "t13":
                levels = _chain("C2", m, upward=False, thoracic=13)
            else:
                levels = _chain("C2", m, upward=False, lumbar=6)
            if extra_vertebra is not None:
                flags.append(
                    f"24 presacral vertebrae (C2-L5 expected 23): extra vertebra named {extra_vertebra.upper()} "
                    "as the user chose"
                )
                return Naming(levels + sacral_tail, both, 0.9, flags)
            flags.append(
                f"{EXTRA_VERTEBRA_FLAG}; the extra one is named L6 (C2-L5 expected 23; --extra-vertebra t13 "
                "when the ribs show a T13)"
            )
            uncertain = [VERTEBRA_IDS[f"L{i}"] for i in range(1, 7)]
            return Naming(levels + sacral_tail, both, 0.85, flags, uncertain)
        if m == STANDARD_C2_TO_L5 - 1:
            flags.append(f"{COUNT_22_FLAG}; 11 thoracic vertebrae assumed (C2-L5 expected 23)")
            levels = _chain("C2", m, upward=False, thoracic=11)
            # the 11-thoracic and the 4-lumbar readings differ from the 17th presacral vertebra (T11 / T12) down
            uncertain = [lvl for lvl in levels[16:] if lvl]
            named = Naming(levels + sacral_tail, both, 0.75, flags, uncertain, COUNT_22_FLAG)
            return _with_transition_check(named, presacral)
        flags.append(f"{m} vertebrae between C2 and the sacrum (23 expected): named from the sacrum, counts disagree")
        return _with_transition_check(
            Naming(_chain("L5", m, upward=True) + sacral_tail, bottom_name, 0.5, flags), presacral
        )
    if has_s1:
        levels = _chain("L5", m, upward=True)
        if 0 in levels:
            flags.append("more vertebrae above L5 than C2-L5 holds")
        named = _with_transition_check(Naming(levels + sacral_tail, bottom_name, bottom_conf, flags), presacral)
        return _with_cervical_top_check(named, bodies, m)
    if has_c2:
        return Naming(_chain("C2", n, upward=False), "C2", 0.85, flags)
    # positional fallback: lumbar-like when the column's median body is as deep as a lumbar one (the lowest body
    # alone may be a small piece cut by the field of view or a sacral fragment)
    depths = sorted(b.depth_mm for b in bodies)
    lumbar_like = depths[len(depths) // 2] >= LUMBAR_MIN_DEPTH_MM
    if lumbar_like:
        flags.append(f"{sacrum_status} and no C2: lowest vertebra assumed to be L5 (positional)")
        return Naming(_chain("L5", n, upward=True), "positional", 0.3, flags, method="lowest-l5")
    fit = fit_depth_profile(bodies) if rising else None
    # a fit that puts the top within two levels of C2 keeps the C2 assumption: the fit is only good to about one
    # level, and a field of view that starts in the upper cervical spine nearly always includes C2
    if fit is not None and fit[0] > PROFILE_C2_REACH:
        start = REFERENCE_DEPTH_MM[fit[0]][0]
        flags.append(
            f"{sacrum_status} and no C2: top vertebra taken as {start} from the body-depth profile (positional)"
        )
        return Naming(_chain(start, n, upward=False), "positional", 0.25, flags, method="depth-profile")
    flags.append(f"{sacrum_status} and no C2: top vertebra assumed to be C2 (positional)")
    if reaches_lumbar_from_c2(bodies):
        flags.append(TOP_C2_LUMBAR_FLAG)
        return Naming(_chain("C2", n, upward=False), "positional", 0.2, flags, method="top-c2-lumbar")
    return Naming(_chain("C2", n, upward=False), "positional", 0.2, flags, method="top-c2")


def reaches_lumbar_from_c2(bodies: list[BodyInfo]) -> bool:
    """Whether a column counted down from C2 reaches the lumbar spine: the chain would name a vertebra below T12,
    or the lowest body is as deep as L1 (``REFERENCE_DEPTH_MM``; T9-T12 are 28.5-32 mm). There the sacrum should be
    in view; without it the count is unchecked at its lower end."""
    return len(bodies) > C2_TO_T12 or (bool(bodies) and bodies[-1].depth_mm >= _L1_DEPTH_MM)


def presumed_c2(top: BodyInfo, top_level: int) -> bool:
    """Whether the top body of a column named from the sacrum should be C2: cervical-sized, named a cervical
    vertebra (or not named: more bodies than C1-L5 holds) and with at least ``C2_ROOM_ABOVE_MM`` of image above it
    (nothing above it was found as a body; a body cut by the image's top edge and missed would make this a false
    alarm, never a missed one)."""
    cervical_name = top_level == 0 or VERTEBRA_IDS["C1"] <= top_level <= VERTEBRA_IDS["C7"]
    return top.depth_mm <= C2_MAX_DEPTH_MM and cervical_name and top.room_above_mm >= C2_ROOM_ABOVE_MM


def _with_cervical_top_check(naming: Naming, bodies: list[BodyInfo], presacral: int) -> Naming:
    """Flag every name when the top body is presumed to be C2 (:func:`presumed_c2`) but the count from the sacrum
    does not name it C2 (bodies missed or split, or a transitional count: the names cannot all be right). A top
    named C1 that is as small as the atlas's arch against the body below it is consistent (C2 under it)."""
    top = bodies[0]
    if not naming.levels or naming.levels[0] == VERTEBRA_IDS["C2"] or not presumed_c2(top, naming.levels[0]):
        return naming
    if naming.levels[0] == VERTEBRA_IDS["C1"] and len(bodies) > 1 and c1_sized(top, bodies[1]):
        return naming
    off = presacral - STANDARD_C2_TO_L5
    how = f"is {-off} short of" if off < 0 else f"is {off} over"
    naming.flags.append(f"{CERVICAL_TOP_FLAG} {how} the 23 vertebrae C2-L5: bodies missed or split, or transitional")
    naming.confidence = min(naming.confidence, CERVICAL_TOP_CONFIDENCE)
    return _mark_uncertain(naming, naming.levels, f"{CERVICAL_TOP_FLAG} disagrees")


def _depth_rise(bodies: list[BodyInfo]) -> float:
    """Median depth of the bottom third over that of the top third of the column."""
    d = [b.depth_mm for b in bodies if b.depth_mm > 0]
    if len(d) < 6:
        return 1.0
    k = len(d) // 3
    top, bottom = sorted(d[:k]), sorted(d[-k:])
    return bottom[len(bottom) // 2] / max(top[len(top) // 2], 1e-6)


def fit_depth_profile(bodies: list[BodyInfo]) -> tuple[int, float] | None:
    """Which level the top body is, from the shape of the column's depth profile.

    For every start level with the whole column inside C2-L5, the body depths are compared with
    ``REFERENCE_DEPTH_MM`` in log space after fitting a per-subject scale (limited to ``PROFILE_SCALE_RANGE``);
    the worst-fitting body is ignored (a body cut by the field of view). Returns the index of the best start
    in ``REFERENCE_DEPTH_MM`` and the margin (mean absolute log residual of the second-best start minus the
    best; larger = clearer), or None when the column has fewer than 6 measured bodies.
    """
    d = np.array([b.depth_mm for b in bodies], dtype=float)
    if len(d) < 6 or np.any(d <= 0):
        return None
    ref = np.log([v for _, v in REFERENCE_DEPTH_MM])
    logd = np.log(d)
    lo, hi = np.log(PROFILE_SCALE_RANGE[0]), np.log(PROFILE_SCALE_RANGE[1])
    costs = []
    for start in range(len(ref) - len(d) + 1):
        diff = logd - ref[start : start + len(d)]
        res = np.sort(np.abs(diff - float(np.clip(np.median(diff), lo, hi))))[:-1]
        costs.append(float(res.mean()))
    if not costs:
        return None
    order = np.argsort(costs)
    margin = costs[int(order[1])] - costs[int(order[0])] if len(costs) > 1 else 1.0
    return int(order[0]), float(margin)


def disc_above_top(top_level: int) -> int:
    """Level id used for a disc above the topmost vertebra (the vertebra above it, SPINEPS rule)."""
    order = [v for v in CRANIOCAUDAL_ORDER if v != VERTEBRA_IDS["T13"]]  # a variant is never assumed
    if top_level == VERTEBRA_IDS["T13"]:
        return VERTEBRA_IDS["T12"]
    if top_level in order:
        i = order.index(top_level)
        if i > 0:
            return order[i - 1]
    return 0
