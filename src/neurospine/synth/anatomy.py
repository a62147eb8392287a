"""Per-level morphometry of the synthetic spine (sizes in mm, cranial to caudal).

Anchor values follow the ranges reported in the morphometry literature (vertebral bodies grow from
about 15 x 15 x 14 mm at C3 to about 50 x 35 x 27 mm at L5; discs about 5 mm cervical/thoracic and
about 10 mm lumbar; canal AP 13-17 mm; cord about 8 x 12 mm cervical, 7 x 8 mm thoracic, conus at
L1-L2). Values between anchors are interpolated on a continuous level index and then jittered per case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurospine.labels import VERTEBRA_IDS, VERTEBRA_NAMES

SACRUM_ID = 26

# Continuous level index u: C1=0 .. C7=6, T1=7 .. T12=18, L1=19 .. L5=23 (variants are rescaled onto it).
_ANCHOR_U = np.array([0.0, 1.0, 2.0, 4.5, 6.0, 7.0, 12.0, 18.0, 19.0, 21.0, 23.0])
# fmt: off
_ANCHORS: dict[str, list[float]] = {
    "body_h":    [9.0, 17.0, 14.0, 14.6, 15.0, 17.0, 20.0, 24.0, 26.5, 28.0, 26.5],
    "body_w":    [16.0, 17.0, 16.0, 19.1, 21.0, 26.0, 30.0, 42.0, 47.0, 50.0, 50.0],
    "body_d":    [9.0, 15.0, 15.0, 15.6, 16.0, 17.0, 25.0, 32.0, 35.0, 37.0, 35.0],
    "disc_h":    [0.0, 4.5, 4.5, 5.1, 5.5, 4.0, 5.0, 6.5, 8.0, 9.0, 9.5],
    "canal_ap":  [17.0, 16.0, 14.0, 13.7, 13.5, 14.0, 13.5, 15.0, 16.0, 16.5, 17.0],
    "canal_lr":  [26.0, 24.0, 23.0, 23.0, 23.0, 20.0, 16.0, 19.0, 21.0, 22.5, 24.0],
    "cord_ap":   [9.0, 8.5, 8.0, 8.0, 7.0, 6.8, 6.5, 7.5, 6.0, 6.0, 6.0],
    "cord_lr":   [11.0, 11.0, 12.5, 12.8, 10.0, 9.0, 8.0, 9.0, 7.5, 7.5, 7.5],
    "spin_len":  [12.0, 24.0, 18.0, 25.5, 30.0, 32.0, 34.0, 28.0, 30.0, 28.0, 24.0],
    "spin_ang":  [0.0, 20.0, 20.0, 20.0, 20.0, 30.0, 55.0, 25.0, 5.0, 5.0, 10.0],
    "spin_h":    [8.0, 10.0, 7.0, 8.2, 9.0, 9.0, 8.0, 14.0, 18.0, 18.0, 15.0],
    "tp_len":    [38.0, 26.0, 25.0, 29.4, 32.0, 36.0, 32.0, 24.0, 32.0, 38.0, 38.0],
    "tp_h":      [9.0, 8.0, 7.0, 7.6, 8.0, 10.0, 10.0, 10.0, 11.0, 12.0, 13.0],
    "arch_t":    [6.0, 7.0, 5.0, 5.6, 6.0, 6.0, 6.0, 7.0, 8.0, 8.5, 9.0],
}
# fmt: on


@dataclass
class Level:
    """Geometry of one vertebra in the canonical (straightened) frame, in mm."""

    vid: int
    name: str
    region: str  # "C", "T", "L" or "S"
    body_h: float
    body_w: float
    body_d: float
    disc_h: float  # disc below this vertebra (0 when none)
    canal_ap: float
    canal_lr: float
    cord_ap: float
    cord_lr: float
    spin_len: float
    spin_ang_deg: float
    spin_h: float
    tp_len: float
    tp_h: float
    arch_t: float
    tilt_deg: float = 0.0  # sagittal tilt of the vertebra relative to the centreline normal plane
    height_ant: float = 1.0  # fracture factors (1 = intact) on the anterior / middle body height
    height_mid: float = 1.0
    disc_degen: float = 0.0  # 0 healthy .. 1 fully degenerated disc below
    s_top: float = 0.0  # filled by the stacker: canonical arc length of the superior body surface
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def s_mid(self) -> float:
        return self.s_top + 0.5 * self.body_h

    @property
    def s_bot(self) -> float:
        return self.s_top + self.body_h


def level_sequence(n_thoracic: int = 12, n_lumbar: int = 5) -> list[int]:
    """Instance ids from C1 to S1 for a spine with the given thoracic/lumbar counts."""
    ids = list(range(1, 8))
    thor = list(range(8, 8 + min(n_thoracic, 12)))
    if n_thoracic == 13:
        thor.append(VERTEBRA_IDS["T13"])
    ids += thor
    ids += list(range(20, 20 + n_lumbar))
    ids.append(SACRUM_ID)
    return ids


def _level_u(seq: list[int]) -> list[float]:
    """Continuous anchor index of each vertebra, rescaling thoracic/lumbar runs of other lengths."""
    thor = [v for v in seq if VERTEBRA_NAMES[v].startswith("T")]
    lum = [v for v in seq if VERTEBRA_NAMES[v].startswith("L")]
    out: list[float] = []
    for v in seq:
        name = VERTEBRA_NAMES[v]
        if name.startswith("C"):
            out.append(float(v - 1))
        elif name.startswith("T"):
            j = thor.index(v)
            out.append(7.0 + 11.0 * j / max(1, len(thor) - 1))
        elif name.startswith("L"):
            j = lum.index(v)
            out.append(19.0 + 4.0 * j / max(1, len(lum) - 1))
        else:
            out.append(24.0)
    return out


def build_levels(
    seq: list[int], rng: np.random.Generator, size_scale: float = 1.0, jitter: float = 0.04
) -> list[Level]:
    """Morphometry for every vertebra of ``seq`` (sacrum last), with per-case and per-level jitter."""
    us = _level_u(seq)
    levels: list[Level] = []
    for vid, u in zip(seq, us, strict=True):
        name = VERTEBRA_NAMES[vid]
        vals = {k: float(np.interp(min(u, 23.0), _ANCHOR_U, np.asarray(v))) for k, v in _ANCHORS.items()}
        for k in ("body_h", "body_w", "body_d", "spin_len", "tp_len", "spin_h", "tp_h"):
            vals[k] *= size_scale * float(rng.normal(1.0, jitter))
        for k in ("canal_ap", "canal_lr", "cord_ap", "cord_lr"):
            vals[k] *= float(rng.normal(1.0, jitter))
        vals["disc_h"] *= size_scale * float(rng.normal(1.0, 1.5 * jitter))
        vals["spin_ang"] += float(rng.normal(0.0, 5.0))
        region = "S" if vid == SACRUM_ID else name[0]
        levels.append(
            Level(
                vid=vid,
                name=name,
                region=region,
                body_h=vals["body_h"],
                body_w=vals["body_w"],
                body_d=vals["body_d"],
                disc_h=vals["disc_h"],
                canal_ap=vals["canal_ap"],
                canal_lr=vals["canal_lr"],
                cord_ap=vals["cord_ap"],
                cord_lr=vals["cord_lr"],
                spin_len=vals["spin_len"],
                spin_ang_deg=vals["spin_ang"],
                spin_h=vals["spin_h"],
                tp_len=vals["tp_len"],
                tp_h=vals["tp_h"],
                arch_t=vals["arch_t"],
            )
        )
    # special cases: C1 has no disc below it (atlanto-axial joint); the sacrum is long and tapered
    levels[0].disc_h = 1.5
    sac = levels[-1]
    sac.body_h = 95.0 * size_scale * float(rng.normal(1.0, jitter))
    sac.body_w = levels[-2].body_w * float(rng.uniform(0.95, 1.1))
    sac.body_d = levels[-2].body_d * float(rng.uniform(0.9, 1.05))
    sac.disc_h = 0.0
    return levels


def stack_levels(levels: list[Level], s_start: float = 0.0) -> float:
    """Assign ``s_top`` along the canonical axis (bodies and discs alternating); returns the end."""
    s = s_start
    for lev in levels:
        lev.s_top = s
        s += lev.body_h + lev.disc_h
    return s


#: transitional lumbosacral anatomy ``SynthConfig.transitional`` can draw (see :func:`make_transitional`)
TRANSITIONAL_KINDS = ("sacralised_l5", "lumbarised_s1", "four_lumbar", "six_lumbar")


def transitional_lumbar_count(kind: str) -> int:
    """Number of mobile lumbar vertebrae (labelled L1..Ln) of a transitional ``kind``."""
    if kind not in TRANSITIONAL_KINDS:
        raise ValueError(f"unknown transitional anatomy {kind!r}; use one of {', '.join(TRANSITIONAL_KINDS)}")
    return {"four_lumbar": 4, "lumbarised_s1": 6, "six_lumbar": 6}.get(kind, 5)


def make_transitional(levels: list[Level], kind: str, rng: np.random.Generator) -> float:
    """Reshape the lowest lumbar vertebra, its disc and the sacrum for a transitional ``kind`` (in place) and
    restack the levels; returns how far (mm, along the axis) the sacrum moved up.

    Ground truth keeps the labels of the lumbar count (``transitional_lumbar_count``): the last mobile
    vertebra is L5 (``sacralised_l5``), L4 (``four_lumbar``) or L6 (``lumbarised_s1``, ``six_lumbar``).

    - ``sacralised_l5`` (partial sacralisation, Castellvi II-III-like): L5 shorter (0.7-0.85 of its height),
      wider, with long, tall transverse processes reaching the sacral ala; the L5-S1 disc rudimentary
      (1.0-3.5 mm, degenerated; under 2 mm no disc is painted: the body sits on the sacrum).
    - ``lumbarised_s1``: the sixth lumbar-type vertebra (the first sacral segment, separated) is sacrum-like:
      short (0.7-0.85), wide, with a thin rudimentary disc (2.2-4 mm) below it; the sacrum is shorter.
    - ``four_lumbar`` (complete sacralisation of L5): the sacrum is longer (one more fused segment).
    - ``six_lumbar``: a sixth, ordinary lumbar vertebra (an L6 with a normal disc).
    """
    transitional_lumbar_count(kind)  # validates the kind
    sac = levels[-1]
    last = levels[-2]
    old_top = sac.s_top
    if kind in ("sacralised_l5", "lumbarised_s1"):
        last.body_h *= float(rng.uniform(0.7, 0.85))
        last.body_w *= float(rng.uniform(1.0, 1.1))
        last.tp_len *= float(rng.uniform(1.15, 1.35))
        last.tp_h *= float(rng.uniform(1.4, 1.9))
        lo, hi = (1.0, 3.5) if kind == "sacralised_l5" else (2.2, 4.0)
        last.disc_h = float(rng.uniform(lo, hi))
        last.disc_degen = float(rng.uniform(0.5, 1.0))
        if kind == "lumbarised_s1":
            sac.body_h *= float(rng.uniform(0.75, 0.85))
    elif kind == "four_lumbar":
        sac.body_h *= float(rng.uniform(1.1, 1.2))
    stack_levels(levels, s_start=levels[0].s_top)
    return old_top - sac.s_top
