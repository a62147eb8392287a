"""Level names on transitional lumbosacral anatomy: flagged and less confident, never confidently shifted."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurospine.labels import VERTEBRA_IDS, vertebra_name
from neurospine.spine.naming import (
    CONFIDENT,
    COUNT_22_FLAG,
    TRANSITIONAL_FLAG,
    BodyInfo,
    name_levels,
    transition_signs,
)
from neurospine.synth import SynthConfig, generate_case
from neurospine.synth.anatomy import TRANSITIONAL_KINDS, transitional_lumbar_count
from neurospine.synth.case import spine_model

LUMBAR = BodyInfo(28.0, 35.0, 0.0, 30000.0, 12000.0)
THORACIC = BodyInfo(22.0, 27.0, 0.0, 18000.0, 6000.0)
CERVICAL = BodyInfo(14.0, 16.0, 0.0, 4000.0, 1500.0)
C2 = BodyInfo(34.0, 15.0, 0.0, 7000.0, 1500.0)


def names(levels: list[int]) -> list[str]:
    return [vertebra_name(v) for v in levels]


def lumbar_column(last: BodyInfo = LUMBAR) -> list[BodyInfo]:
    return [THORACIC, LUMBAR, LUMBAR, LUMBAR, LUMBAR, last]


def test_ordinary_lumbosacral_junction_is_named_with_full_confidence():
    nm = name_levels(lumbar_column(), sacrum_mm3=40000, sacrum_below=True)
    assert nm.confidence >= CONFIDENT and nm.uncertain_levels == []
    assert not any(f.startswith(TRANSITIONAL_FLAG) for f in nm.flags)


@pytest.mark.parametrize(
    "last",
    [
        replace(LUMBAR, volume_mm3=0.7 * LUMBAR.volume_mm3, disc_below_mm3=0.5 * LUMBAR.disc_below_mm3),
        replace(LUMBAR, volume_mm3=0.7 * LUMBAR.volume_mm3, disc_below_mm3=0.0),  # fused: no disc found
    ],
)
def test_transitional_lowest_body_is_flagged_with_every_name(last: BodyInfo):
    nm = name_levels(lumbar_column(last), sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels) == ["T12", "L1", "L2", "L3", "L4", "L5"]  # the names stay, the confidence says so
    assert nm.confidence == 0.5 < CONFIDENT
    assert nm.uncertain_levels == sorted(nm.levels) and nm.uncertain_note == TRANSITIONAL_FLAG
    assert any(f.startswith(TRANSITIONAL_FLAG) for f in nm.flags)


@pytest.mark.parametrize(
    "last",
    [
        replace(LUMBAR, volume_mm3=0.7 * LUMBAR.volume_mm3),  # small body, ordinary disc
        replace(LUMBAR, disc_below_mm3=0.3 * LUMBAR.disc_below_mm3),  # thin (e.g. degenerated) disc, ordinary body
    ],
)
def test_one_sign_alone_lowers_the_confidence_a_little_and_flags_no_name(last: BodyInfo):
    nm = name_levels(lumbar_column(last), sacrum_mm3=40000, sacrum_below=True)
    assert CONFIDENT <= nm.confidence < 0.95 and nm.uncertain_levels == []
    assert any(f.startswith("one sign of a transitional") for f in nm.flags)


def test_signs_need_bodies_and_discs_above_to_compare_with():
    assert transition_signs([LUMBAR, replace(LUMBAR, volume_mm3=100.0)]).count == 0
    signs = transition_signs([LUMBAR, LUMBAR, LUMBAR, replace(LUMBAR, volume_mm3=0.5 * LUMBAR.volume_mm3)])
    assert signs.small and not signs.thin_disc and signs.volume_ratio == pytest.approx(0.5)


def test_22_presacral_vertebrae_are_flagged_as_11_thoracic_or_4_lumbar():
    col = [C2] + [CERVICAL] * 5 + [THORACIC] * 12 + [LUMBAR] * 4  # C2-L4: a sacralised (absent) L5
    nm = name_levels(col, sacrum_mm3=40000, sacrum_below=True)
    assert len(nm.levels) == 22 and nm.confidence < CONFIDENT
    assert nm.uncertain_note == COUNT_22_FLAG and any(f.startswith(COUNT_22_FLAG) for f in nm.flags)
    # from the 17th presacral vertebra down the two readings differ: those names are listed as uncertain
    assert nm.uncertain_levels == nm.levels[16:] and VERTEBRA_IDS["T10"] not in nm.uncertain_levels


def test_synth_transitional_option_sets_the_lumbar_count_and_the_last_segment():
    base = dict(levels="T12-S1", plane="sagittal", spacing_mm=(1.0, 1.0, 3.0), soft_labels=False)
    plain = spine_model(7, SynthConfig(**base, p_l6=0.0))  # type: ignore[arg-type]
    for kind in TRANSITIONAL_KINDS:
        model = spine_model(7, SynthConfig(**base, transitional=kind))  # type: ignore[arg-type]
        lumbar = [lev for lev in model.levels if lev.region == "L"]
        assert len(lumbar) == transitional_lumbar_count(kind) and model.levels[-1].name == "S1"
        last, sacrum = lumbar[-1], model.levels[-1]
        if kind in ("sacralised_l5", "lumbarised_s1"):  # rudimentary disc, short body
            assert last.disc_h < 4.0 < plain.levels[-2].disc_h and last.body_h < 0.86 * plain.levels[-2].body_h
        if kind == "four_lumbar":  # one more fused segment
            assert sacrum.body_h > 1.05 * plain.levels[-1].body_h
        assert sacrum.s_top == pytest.approx(last.s_bot + last.disc_h)  # restacked
    case = generate_case(7, SynthConfig(**{**base, "levels": "L4-S1"}, transitional="four_lumbar"))  # type: ignore[arg-type]
    assert case.meta["transitional"] == "four_lumbar" and case.meta["n_lumbar"] == 4
    with pytest.raises(ValueError, match="transitional"):
        SynthConfig(transitional="l7")


@pytest.mark.slow
def test_synth_sacralised_l5_has_a_rudimentary_disc_and_a_small_body():
    base = dict(levels="L2-S1", plane="isotropic", spacing_mm=(1.0, 1.0, 1.0), soft_labels=False)
    plain = generate_case(3, SynthConfig(**base, p_l6=0.0))  # type: ignore[arg-type]
    sac = generate_case(3, SynthConfig(**base, transitional="sacralised_l5"))  # type: ignore[arg-type]

    def volumes(case):  # type: ignore[no-untyped-def]
        inst, sem = np.asarray(case.instance.data), np.asarray(case.semantic.data)
        l4, l5 = VERTEBRA_IDS["L4"], VERTEBRA_IDS["L5"]
        body = lambda v: int(((inst == v) & (sem == 49)).sum())  # noqa: E731
        return body(l5) / body(l4), int((inst == 100 + l5).sum()) / max(1, int((inst == 100 + l4).sum()))

    body_plain, disc_plain = volumes(plain)
    body_sac, disc_sac = volumes(sac)
    assert body_sac < 0.9 * body_plain and disc_sac < 0.5 * disc_plain
