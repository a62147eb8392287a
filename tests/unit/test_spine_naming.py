"""Level naming: anchors, counts, variants and the flagged positional fallback."""

from __future__ import annotations

from neurospine.labels import VERTEBRA_IDS, vertebra_name
from neurospine.spine import naming as nm_mod
from neurospine.spine.naming import BodyInfo, disc_above_top, name_levels

LUMBAR = BodyInfo(28.0, 35.0, 0.0, 30000.0)
THORACIC = BodyInfo(22.0, 27.0, 0.0, 18000.0)
CERVICAL = BodyInfo(14.0, 16.0, 0.0, 4000.0)
C2 = BodyInfo(34.0, 15.0, 0.0, 7000.0)
C1 = BodyInfo(9.0, 9.0, 0.0, 600.0)


def names(levels: list[int]) -> list[str]:
    return [vertebra_name(v) for v in levels]


def column(n_cervical_below_c2: int = 5, n_thoracic: int = 12, n_lumbar: int = 5) -> list[BodyInfo]:
    return [C2] + [CERVICAL] * n_cervical_below_c2 + [THORACIC] * n_thoracic + [LUMBAR] * n_lumbar


def test_sacrum_anchor_names_from_l5_upwards():
    nm = name_levels([THORACIC, LUMBAR, LUMBAR, LUMBAR, LUMBAR, LUMBAR], sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels) == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert nm.anchor == "S1" and not nm.positional and nm.confidence > 0.9


def test_small_sacrum_lowers_confidence_but_still_anchors():
    nm = name_levels([LUMBAR] * 3, sacrum_mm3=3000, sacrum_below=True)
    assert names(nm.levels) == ["L3", "L4", "L5"] and nm.anchor == "S1" and nm.confidence < 0.9


def test_sacrum_not_touching_is_not_an_anchor():
    nm = name_levels([LUMBAR] * 3, sacrum_mm3=40000, sacrum_below=False)
    assert nm.positional and nm.flags


def test_c2_anchor_names_downwards():
    nm = name_levels([C2, CERVICAL, CERVICAL, CERVICAL], sacrum_mm3=0, sacrum_below=False)
    assert names(nm.levels) == ["C2", "C3", "C4", "C5"] and nm.anchor == "C2"


def test_c1_remnant_above_c2_is_named_c1():
    nm = name_levels([C1, C2, CERVICAL], sacrum_mm3=0, sacrum_below=False)
    assert names(nm.levels) == ["C1", "C2", "C3"] and nm.anchor == "C2"


def test_whole_spine_both_anchors_standard_count():
    nm = name_levels(column(), sacrum_mm3=40000, sacrum_below=True)
    assert nm.anchor == "S1+C2" and nm.confidence > 0.95
    assert names(nm.levels)[0] == "C2" and names(nm.levels)[-1] == "L5" and "T12" in names(nm.levels)


def test_whole_spine_extra_vertebra_is_l6_and_flagged():
    nm = name_levels(column(n_lumbar=6), sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels)[-2:] == ["L5", "L6"] and nm.flags


def test_whole_spine_eleven_thoracic():
    nm = name_levels(column(n_thoracic=11), sacrum_mm3=40000, sacrum_below=True)
    got = names(nm.levels)
    assert "T12" not in got and got[-6:] == ["T11", "L1", "L2", "L3", "L4", "L5"] and nm.flags


def test_inconsistent_count_trusts_sacrum_with_low_confidence():
    nm = name_levels(column(n_thoracic=9), sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels)[-1] == "L5" and nm.confidence <= 0.5 and nm.flags


def test_positional_fallback_is_flagged_lumbar_and_cervical():
    low = name_levels([LUMBAR] * 4, sacrum_mm3=0, sacrum_below=False)
    assert low.positional and names(low.levels)[-1] == "L5" and low.confidence < 0.5
    high = name_levels([CERVICAL] * 4, sacrum_mm3=0, sacrum_below=False)
    assert high.positional and names(high.levels)[0] == "C2"


def test_no_vertebra():
    nm = name_levels([], sacrum_mm3=0, sacrum_below=False)
    assert nm.levels == [] and nm.confidence == 0.0


def test_disc_above_top_vertebra():
    assert disc_above_top(VERTEBRA_IDS["L1"]) == VERTEBRA_IDS["T12"]
    assert disc_above_top(VERTEBRA_IDS["C1"]) == 0


def _lumbar_with_discs(n: int, tail: int, *, cut: bool = False) -> list[BodyInfo]:
    bodies = [BodyInfo(28.0, 35.0, 0.0, 30000.0, disc_below_mm3=12000.0) for _ in range(n)]
    bodies += [BodyInfo(30.0, 30.0, 0.0, 25000.0, disc_below_mm3=500.0) for _ in range(tail)]
    if cut:
        bodies[-1] = BodyInfo(10.0, 35.0, 0.0, 9000.0, touches_fov_bottom=True)
    return bodies


def test_last_full_disc_anchors_l5_and_names_sacral_segments_s1():
    nm = name_levels(_lumbar_with_discs(6, 2), sacrum_mm3=0, sacrum_below=False)
    assert names(nm.levels) == ["T12", "L1", "L2", "L3", "L4", "L5", "S1", "S1"]
    assert nm.anchor == "last-disc" and not nm.positional and nm.flags


def test_last_disc_anchor_with_a_body_cut_by_the_field_of_view_is_less_confident():
    # the lowest body is cut by the field of view: S1 is likely (lumbar protocols include it) but unproven
    nm = name_levels(_lumbar_with_discs(5, 1, cut=True), sacrum_mm3=0, sacrum_below=False)
    full = name_levels(_lumbar_with_discs(5, 2), sacrum_mm3=0, sacrum_below=False)
    assert nm.anchor == "last-disc" and names(nm.levels)[-2:] == ["L5", "S1"]
    assert nm.confidence < full.confidence and any("cut" in f for f in nm.flags)


def test_sacrum_label_wins_over_disc_pattern():
    nm = name_levels(_lumbar_with_discs(5, 0), sacrum_mm3=40000, sacrum_below=True)
    assert nm.anchor == "S1" and names(nm.levels)[-1] == "L5"


def test_bottom_anchors_need_a_body_deep_enough_to_be_l5():
    from dataclasses import replace

    neck = [replace(CERVICAL, disc_below_mm3=1500.0) for _ in range(5)] + [replace(CERVICAL, disc_below_mm3=30.0)]
    nm = name_levels(neck, sacrum_mm3=0, sacrum_below=False)
    assert nm.anchor == "positional"  # the disc pattern of a neck is not the lumbosacral junction
    nm = name_levels([CERVICAL] * 4, sacrum_mm3=40000, sacrum_below=True)  # "sacrum" fired on neck tissue
    assert nm.anchor != "S1" and any("too small to be L5" in f for f in nm.flags)


def test_small_pieces_above_the_sacrum_are_sacral_segments_not_lumbar_bodies():
    from dataclasses import replace

    piece = BodyInfo(17.0, 30.0, 0.0, 5000.0, disc_below_mm3=700.0)
    bodies = [replace(THORACIC, volume_mm3=30000.0)] + [LUMBAR] * 5 + [piece]
    nm = name_levels(bodies, sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels) == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
    assert nm.anchor == "S1" and any("sacral segments" in f for f in nm.flags)


def test_small_pieces_override_a_last_disc_that_lies_too_low():
    # the S1-S2 remnant was segmented as a full disc: the disc pattern alone would call the S1 piece L5
    bodies = [
        *_lumbar_with_discs(6, 0),
        BodyInfo(30.0, 31.0, 0.0, 9000.0, disc_below_mm3=9000.0),
        BodyInfo(25.0, 28.0, 0.0, 3000.0, disc_below_mm3=200.0),
    ]
    nm = name_levels(bodies, sacrum_mm3=0, sacrum_below=False)
    assert names(nm.levels) == ["T12", "L1", "L2", "L3", "L4", "L5", "S1", "S1"]
    assert nm.anchor == "last-disc" and nm.confidence <= 0.6


def test_a_small_lowest_body_cut_by_the_field_of_view_is_not_taken_for_sacrum():
    cut = BodyInfo(10.0, 35.0, 0.0, 9000.0, touches_fov_bottom=True)
    nm = name_levels([LUMBAR] * 5 + [cut], sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels)[-1] == "L5" and not any("sacral segments" in f for f in nm.flags)


def test_positional_fallback_uses_the_whole_column_not_only_its_lowest_piece():
    piece = BodyInfo(12.0, 20.0, 0.0, 3000.0)  # a fragment at the bottom of a lumbar column
    nm = name_levels([LUMBAR] * 4 + [piece], sacrum_mm3=0, sacrum_below=False)
    assert nm.positional and names(nm.levels) == ["L1", "L2", "L3", "L4", "L5"]


def test_a_shallow_sacral_piece_does_not_block_the_sacrum_anchor():
    piece = BodyInfo(15.0, 20.0, 0.0, 5000.0)  # shallower than any L5: a partial sacral body
    nm = name_levels([THORACIC, *[LUMBAR] * 5, piece], sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels) == ["T12", "L1", "L2", "L3", "L4", "L5", "S1"] and nm.anchor == "S1"


def test_a_small_adult_lumbar_column_keeps_its_sacrum_anchor():
    # lumbar bodies 26-28 mm deep with an L5 of 23 mm (a small adult): the column is lumbar-sized, so the
    # sacrum right below anchors L5; a neck column (bodies 16 mm deep) with the same sacrum still does not
    small_lumbar = [BodyInfo(27.0, d, 0.0, 23000.0) for d in (26.0, 28.0, 28.0, 26.0, 23.0)]
    nm = name_levels(small_lumbar, sacrum_mm3=80000, sacrum_below=True)
    assert nm.anchor == "S1"
    assert names(nm.levels) == ["L1", "L2", "L3", "L4", "L5"]
    nm = name_levels([CERVICAL] * 4 + [BodyInfo(14.0, 23.0, 0.0, 4000.0)], sacrum_mm3=80000, sacrum_below=True)
    assert nm.anchor != "S1"


def test_a_shallow_sacral_piece_under_deep_lumbar_bodies_is_not_taken_for_l5():
    from neurospine.spine.naming import deep_enough_for_l5

    column = [BodyInfo(30.0, d, 0.0, 35000.0) for d in (33.0, 35.0, 38.0, 38.0, 36.0, 36.0)]
    piece = BodyInfo(20.0, 21.0, 0.0, 30000.0)  # as big as a body in volume, but 21 mm deep
    assert not deep_enough_for_l5(piece, [*column, piece])
    assert deep_enough_for_l5(BodyInfo(27.0, 23.0, 0.0, 22000.0), [BodyInfo(27.0, 27.0, 0.0, 23000.0)] * 4)


# ---- thoracic-like columns: weak bottom anchors refused, depth-profile fallback ------------------------


def _profile_column(start: str, n: int, scale: float = 1.0) -> list[BodyInfo]:
    from neurospine.spine.naming import REFERENCE_DEPTH_MM

    names_ = [name for name, _ in REFERENCE_DEPTH_MM]
    i = names_.index(start)
    wobble = [1.0, 1.03, 0.97, 1.02, 0.98, 1.0] * 4  # measurement noise of a few percent
    return [
        BodyInfo(0.8 * d * scale, d * scale * wobble[k], float(k), 700.0 * d * scale, 900.0)
        for k, (_, d) in enumerate(REFERENCE_DEPTH_MM[i : i + n])
    ]


def test_depth_profile_finds_the_top_of_a_thoracic_column():
    """Within one level: with a free per-subject scale, a one-level shift of a steadily rising profile costs
    about as much as a few percent of measurement noise (that is why the result stays flagged positional)."""
    from neurospine.spine.naming import REFERENCE_DEPTH_MM

    order = [name for name, _ in REFERENCE_DEPTH_MM]
    for start, scale in (("T3", 1.0), ("T6", 0.9), ("T1", 1.1), ("C6", 1.0)):
        col = _profile_column(start, 10, scale)
        nm = name_levels(col, sacrum_mm3=0, sacrum_below=False, c2_top=False)
        assert abs(order.index(names(nm.levels)[0]) - order.index(start)) <= 1, (start, scale, names(nm.levels))
        assert nm.positional and "depth profile" in nm.flags[-1]


def test_depth_profile_exact_without_noise():
    from neurospine.spine.naming import REFERENCE_DEPTH_MM, fit_depth_profile

    col = [BodyInfo(20.0, d, float(k)) for k, (_, d) in enumerate(REFERENCE_DEPTH_MM[8:18])]
    fit = fit_depth_profile(col)
    assert fit is not None and REFERENCE_DEPTH_MM[fit[0]][0] == "T3" and fit[1] > 0
    assert fit_depth_profile(col[:5]) is None  # too few bodies to fit


def test_flat_cervical_column_keeps_the_c2_assumption():
    nm = name_levels([CERVICAL] * 6, sacrum_mm3=0, sacrum_below=False, c2_top=False)
    assert names(nm.levels)[0] == "C2" and nm.positional


def test_last_disc_pattern_refused_under_a_thoracic_column():
    # T4-T12 with a full disc below every body but the last, which the field of view cuts (no disc below)
    col = _profile_column("T4", 9)
    col[-1] = BodyInfo(col[-1].height_mm, col[-1].depth_mm, 8.0, col[-1].volume_mm3, 0.0, True)
    nm = name_levels(col, sacrum_mm3=0, sacrum_below=False, c2_top=False)
    assert nm.positional and any("last-disc pattern" in f for f in nm.flags)
    assert names(nm.levels)[0] == "T4"


def test_small_sacrum_refused_under_a_thoracic_column_but_not_under_a_lumbar_one():
    col = _profile_column("T6", 11)
    small = 0.5 * sorted(b.volume_mm3 for b in col)[len(col) // 2]
    nm = name_levels(col, sacrum_mm3=small, sacrum_below=True, c2_top=False)
    assert nm.positional and any("sacrum smaller" in f for f in nm.flags)
    lumbar = name_levels([LUMBAR] * 5, sacrum_mm3=0.5 * LUMBAR.volume_mm3, sacrum_below=True)
    assert lumbar.anchor == "S1" and names(lumbar.levels) == ["L1", "L2", "L3", "L4", "L5"]


def test_cervicothoracic_column_starting_near_c2_keeps_the_c2_assumption():
    col = _profile_column("C3", 13)  # C3-T8: rises like the thoracic spine, but starts in the upper neck
    nm = name_levels(col, sacrum_mm3=0, sacrum_below=False, c2_top=False)
    assert names(nm.levels)[0] == "C2" and nm.positional and "assumed to be C2" in nm.flags[-1]


# ---- 24 presacral vertebrae: L6 or T13 (no rib information in the pipeline) ------------------------------


def test_24_presacral_vertebrae_default_to_l6_and_are_flagged_as_undecidable():
    from neurospine.spine.naming import EXTRA_VERTEBRA_FLAG

    nm = name_levels([C1, *column(n_lumbar=6)], sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels)[-7:] == ["T12", "L1", "L2", "L3", "L4", "L5", "L6"]
    assert any(f.startswith(EXTRA_VERTEBRA_FLAG) for f in nm.flags)
    assert nm.uncertain_levels == [VERTEBRA_IDS[f"L{i}"] for i in range(1, 7)]


def test_24_presacral_vertebrae_named_t13_when_the_user_says_so():
    nm = name_levels([C1, *column(n_thoracic=13)], sacrum_mm3=40000, sacrum_below=True, extra_vertebra="t13")
    expected = ["C1", *(f"C{i}" for i in range(2, 8)), *(f"T{i}" for i in range(1, 14)), "L1", "L2", "L3", "L4", "L5"]
    assert names(nm.levels) == expected
    assert nm.levels[19] == 28 and nm.anchor == "S1+C2" and nm.uncertain_levels == []
    assert any("named T13 as the user chose" in f for f in nm.flags)
    assert not any("cannot be told apart" in f for f in nm.flags)


def test_24_presacral_vertebrae_named_l6_when_the_user_says_so():
    nm = name_levels(column(n_lumbar=6), sacrum_mm3=40000, sacrum_below=True, extra_vertebra="l6")
    assert names(nm.levels)[-2:] == ["L5", "L6"] and nm.uncertain_levels == []
    assert any("named L6 as the user chose" in f for f in nm.flags)


def test_extra_vertebra_option_leaves_23_and_22_alone():
    for extra in (None, "t13", "l6"):
        std = name_levels(column(), sacrum_mm3=40000, sacrum_below=True, extra_vertebra=extra)
        assert names(std.levels)[-6:] == ["T12", "L1", "L2", "L3", "L4", "L5"] and 28 not in std.levels
        short = name_levels(column(n_thoracic=11), sacrum_mm3=40000, sacrum_below=True, extra_vertebra=extra)
        assert names(short.levels)[-6:] == ["T11", "L1", "L2", "L3", "L4", "L5"]


def test_unknown_extra_vertebra_choice_is_refused():
    import pytest

    with pytest.raises(ValueError, match="extra_vertebra"):
        name_levels(column(), sacrum_mm3=40000, sacrum_below=True, extra_vertebra="t11")


# ---- why a sacrum did not anchor: the positional messages say which ---------------------------------------


def test_positional_message_tells_a_too_small_sacrum_from_no_sacrum():
    small = name_levels([LUMBAR] * 4, sacrum_mm3=1361.0, sacrum_below=True)
    assert small.positional
    assert "a sacrum was found but too small to anchor (1361 mm3 < 2000 mm3)" in small.flags[-1]
    assert "no sacrum found" not in small.flags[-1]
    none = name_levels([LUMBAR] * 4, sacrum_mm3=0.0, sacrum_below=False)
    assert none.flags[-1].startswith("no sacrum found and no C2")
    away = name_levels([LUMBAR] * 4, sacrum_mm3=30000.0, sacrum_below=False)
    assert "a sacrum was found (30000 mm3) but not right below the lowest vertebra" in away.flags[-1]


def _unrecognised_c2_column(n_thoracic: int = 12, room_above_mm: float = 30.0) -> list[BodyInfo]:
    """A whole column named from the sacrum: its top body is C2 without the dens (not tall enough for the shape
    test), ``room_above_mm`` of image above it."""
    from dataclasses import replace

    top = replace(CERVICAL, room_above_mm=room_above_mm)
    return [top] + [CERVICAL] * 5 + [THORACIC] * n_thoracic + [LUMBAR] * 5


def test_count_reaching_a_presumed_c2_keeps_the_names():
    nm = name_levels(_unrecognised_c2_column(), sacrum_mm3=40000, sacrum_below=True)
    assert nm.anchor == "S1" and names(nm.levels)[0] == "C2" and nm.confidence > 0.9
    assert not nm.uncertain_levels and not any("looks like C2" in f for f in nm.flags)


def test_count_missing_a_presumed_c2_flags_every_name():
    from neurospine.spine.naming import CERVICAL_TOP_FLAG, CONFIDENT

    nm = name_levels(_unrecognised_c2_column(n_thoracic=9), sacrum_mm3=40000, sacrum_below=True)  # 3 bodies missed
    assert names(nm.levels)[0] == "C5"  # counted from the sacrum: the top is named three levels too low
    assert nm.confidence < CONFIDENT and set(nm.uncertain_levels) == set(nm.levels)
    assert any(CERVICAL_TOP_FLAG in f and "3 short" in f for f in nm.flags)
    over = name_levels(_unrecognised_c2_column(n_thoracic=13), sacrum_mm3=40000, sacrum_below=True)
    assert over.confidence < CONFIDENT and any("1 over" in f for f in over.flags)


def test_no_presumed_c2_without_room_above_or_with_a_thoracic_top():
    cut = name_levels(_unrecognised_c2_column(n_thoracic=9, room_above_mm=5.0), sacrum_mm3=40000, sacrum_below=True)
    assert cut.confidence > 0.9 and not cut.uncertain_levels  # C2 may be outside the image: nothing to check
    from dataclasses import replace

    # a neck-sized (18 mm deep) top that the count names T4: an upper thoracic body, no C2 expected there
    top_thoracic = [replace(THORACIC, depth_mm=18.0, room_above_mm=80.0)] + [THORACIC] * 8 + [LUMBAR] * 5
    nm = name_levels(top_thoracic, sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels)[0] == "T4" and nm.confidence > 0.9 and not nm.uncertain_levels


def test_atlas_arch_above_an_unrecognised_c2_is_not_a_disagreement():
    from dataclasses import replace

    arch = BodyInfo(6.0, 10.0, 0.0, 900.0, room_above_mm=40.0)  # C1's anterior arch, the skull above it
    bodies = [arch, replace(CERVICAL, room_above_mm=55.0)] + [CERVICAL] * 5 + [THORACIC] * 12 + [LUMBAR] * 5
    nm = name_levels(bodies, sacrum_mm3=40000, sacrum_below=True)
    assert names(nm.levels)[:2] == ["C1", "C2"] and nm.confidence > 0.9 and not nm.uncertain_levels
    # the same count with a full-sized top body named "C1": one body too many (a six-lumbar spine), flagged
    big_top = [replace(CERVICAL, room_above_mm=40.0), *bodies[1:]]
    assert name_levels(big_top, sacrum_mm3=40000, sacrum_below=True).confidence < 0.8


def _body(height_mm: float, si_mm: float, depth_mm: float = 40.0) -> nm_mod.BodyInfo:
    volume = depth_mm * depth_mm * height_mm
    return nm_mod.BodyInfo(height_mm, depth_mm, si_mm, volume_mm3=volume, room_above_mm=50.0 + si_mm)


def test_a_body_twice_as_tall_as_its_neighbours_flags_the_names_counted_across_it() -> None:
    heights = [25.0, 25.0, 58.0, 26.0, 27.0, 27.0]  # named T12 ... L5 up from the sacrum; 'L2' is two merged
    bodies = [_body(h, 35.0 * i) for i, h in enumerate(heights)]
    named = nm_mod.name_levels(bodies, sacrum_mm3=40000.0, sacrum_below=True)
    assert named.anchor == "S1" and named.confidence <= nm_mod.MERGED_CONFIDENCE
    above = set(named.levels[:3])
    assert above <= set(named.uncertain_levels) and not set(named.levels[3:]) & set(named.uncertain_levels)
    assert any("merged" in f for f in named.flags)
    # the same column with ordinary heights keeps its confidence and flags nothing
    plain = nm_mod.name_levels([_body(26.0, 35.0 * i) for i in range(6)], sacrum_mm3=40000.0, sacrum_below=True)
    assert plain.confidence >= 0.9 and not plain.uncertain_levels


def test_tall_bodies_ignores_c2_and_needs_two_neighbours() -> None:
    ids = nm_mod.VERTEBRA_IDS
    bodies = [_body(h, 20.0 * i) for i, h in enumerate([40.0, 15.0, 15.0, 16.0])]
    assert nm_mod.tall_bodies(bodies, [ids["C2"], ids["C3"], ids["C4"], ids["C5"]]) == []
    assert nm_mod.tall_bodies(bodies[:2], [ids["L4"], ids["L5"]]) == []


def test_merged_body_flags_below_it_when_named_from_c2_and_everything_with_both_anchors() -> None:
    bodies = [_body(h, 25.0 * i, depth_mm=16.0) for i, h in enumerate([14.0, 14.0, 14.0, 32.0, 14.0, 15.0])]
    levels = [nm_mod.VERTEBRA_IDS[f"C{i}"] for i in range(2, 8)]
    top = nm_mod._with_merged_body_check(nm_mod.Naming(list(levels), "C2", 0.85), bodies)
    assert top.confidence == nm_mod.MERGED_CONFIDENCE and top.uncertain_levels == sorted(levels[3:])
    both = nm_mod._with_merged_body_check(nm_mod.Naming(list(levels), "S1+C2", 0.99), bodies)
    assert both.uncertain_levels == sorted(levels)


def test_a_body_cut_by_the_field_of_view_is_neither_judged_nor_a_neighbour() -> None:
    cut = nm_mod.BodyInfo(6.0, 40.0, 0.0, volume_mm3=9600.0, room_above_mm=0.0)  # one row of a body at the top edge
    bodies = [cut, _body(27.0, 30.0), _body(26.0, 60.0)]
    ids = nm_mod.VERTEBRA_IDS
    assert nm_mod.tall_bodies(bodies, [ids["L3"], ids["L4"], ids["L5"]]) == []


def test_top_c2_count_into_the_lumbar_spine_without_sacrum_is_its_own_method():
    whole = name_levels(column(), sacrum_mm3=0, sacrum_below=False, c2_top=False)
    assert whole.positional and whole.method == "top-c2-lumbar" and names(whole.levels)[0] == "C2"
    assert nm_mod.TOP_C2_LUMBAR_FLAG in whole.flags and whole.confidence < nm_mod.CONFIDENT
    neck = name_levels(_profile_column("C3", 13), sacrum_mm3=0, sacrum_below=False, c2_top=False)  # C3-T8
    assert neck.method == "top-c2" and nm_mod.TOP_C2_LUMBAR_FLAG not in neck.flags


def test_reaching_the_lumbar_spine_needs_a_count_past_t12_or_an_l1_deep_lowest_body():
    t12_deep = BodyInfo(22.0, 32.0, 0.0, 18000.0)
    l1_deep = BodyInfo(26.0, 34.0, 0.0, 25000.0)
    assert not nm_mod.reaches_lumbar_from_c2([CERVICAL] * 18)
    assert nm_mod.reaches_lumbar_from_c2([CERVICAL] * 19)
    assert not nm_mod.reaches_lumbar_from_c2([CERVICAL] * 12 + [t12_deep])
    assert nm_mod.reaches_lumbar_from_c2([CERVICAL] * 12 + [l1_deep])
