"""Cord levels estimated from vertebral bodies by projection along the cord (known-answer phantoms)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.cord.autolevels import (
    BodyExtent,
    LevelSpan,
    cord_centerline,
    level_of_positions,
    level_spans,
    paint_cord_levels,
    project_onto_centerline,
)
from neurospine.cord.levels import level_name, levels_per_slice
from neurospine.cord.morphometry import measure_cord
from neurospine.io import Volume
from tests.conftest import make_affine

TILT_DEG = 15.0
#: (level id, lower, upper) of each body along the cord axis (mm); 6 mm discs in between
BODIES = ((3, 16.0, 30.0), (4, -4.0, 10.0), (5, -24.0, -10.0))


def tilted_phantom(tilt_deg: float = TILT_DEG) -> tuple[Volume, np.ndarray, np.ndarray, np.ndarray]:
    """RAS 1 mm grid: a straight cord (radius 4 mm) tilted by ``tilt_deg`` towards anterior, and box
    bodies 12-28 mm in front of it along the cord with discs between them.

    Returns the cord volume, the body map (level ids), the disc map (100 + level above) and the
    along-cord coordinate of every voxel.
    """
    shape = (40, 70, 70)
    aff = make_affine((1.0, 1.0, 1.0), "RAS", origin=(-20.0, -25.0, -35.0))
    th = math.radians(tilt_deg)
    u = np.array([0.0, math.sin(th), math.cos(th)])  # cord axis (superior, leaning anterior)
    v = np.array([0.0, math.cos(th), -math.sin(th)])  # anterior, perpendicular to the cord
    world = np.indices(shape).reshape(3, -1).T @ aff[:3, :3].T + aff[:3, 3]
    along = (world @ u).reshape(shape)
    ant = (world @ v).reshape(shape)
    radial = np.linalg.norm(world - np.outer(world @ u, u), axis=1).reshape(shape)
    lr = world[:, 0].reshape(shape)
    cord = (radial <= 4.0).astype(np.float32)
    bodies = np.zeros(shape, np.int16)
    discs = np.zeros(shape, np.int16)
    in_column = (ant >= 12.0) & (ant <= 28.0) & (np.abs(lr) <= 8.0)
    for i, (lvl, lo, hi) in enumerate(BODIES):
        bodies[in_column & (along >= lo) & (along <= hi)] = lvl
        if i + 1 < len(BODIES):
            below_hi = BODIES[i + 1][2]
            discs[in_column & (along > below_hi) & (along < lo)] = 100 + lvl
    return Volume(cord, aff, "phantom"), bodies, discs, along


def expected_level(along_mm: float) -> int:
    """Mid-disc boundaries: 13 (between 10 and 16) and -7 (between -10 and -4); ends at the bodies."""
    if 13.0 <= along_mm < 30.0:
        return 3
    if -7.0 <= along_mm < 13.0:
        return 4
    if -24.0 <= along_mm < -7.0:
        return 5
    return 0


def test_tilted_phantom_levels_follow_the_cord_not_the_slice():
    cord, bodies, discs, _ = tilted_phantom()
    painted, spans = paint_cord_levels(cord, bodies, discs)
    assert [s.level for s in spans] == [3, 4, 5]
    # the 6 mm discs give boundaries at their middles (mm along the slice normal = cos(tilt) x along)
    cos_t = math.cos(math.radians(TILT_DEG))
    assert spans[0].lower_mm == pytest.approx(13.0 * cos_t, abs=0.6)
    assert spans[1].lower_mm == pytest.approx(-7.0 * cos_t, abs=0.6)
    morph = measure_cord(cord, levels=cord.with_data(painted), level_gap_mm=0.0)
    checked = 0
    for r in morph.slices:
        z = -35.0 + r.slice  # world z of the axial slice; the cord axis crosses it at along = z / cos
        want = expected_level(z / cos_t)
        if want == 0 or min(abs(z / cos_t - b) for b in (13.0, -7.0, 30.0, -24.0)) < 1.0:
            continue  # outside every span or within 1 mm of a boundary
        assert r.level == level_name(want), (r.slice, r.level, want)
        checked += 1
    assert checked >= 40
    # a naive vote over the bodies in the same axial slice is fooled by the 15 degree tilt
    pos = np.arange(cord.shape[2]) - 35.0
    naive = levels_per_slice(bodies, None, pos, max_gap_mm=0.0)
    wrong = sum(
        1
        for k in range(cord.shape[2])
        if naive[k] and expected_level(pos[k] / cos_t) and naive[k] != expected_level(pos[k] / cos_t)
    )
    assert wrong >= 6


def test_projection_is_exact_on_a_straight_tilted_cord():
    cord, _, _, _ = tilted_phantom()
    cl = cord_centerline(cord)
    assert cl is not None
    th = math.radians(TILT_DEG)
    u = np.array([0.0, math.sin(th), math.cos(th)])
    v = np.array([0.0, math.cos(th), -math.sin(th)])
    along = np.array([-40.0, -10.0, 0.0, 12.5, 31.0, 50.0])  # includes points beyond the cord's ends
    pts = along[:, None] * u + 20.0 * v  # 20 mm anterior of the cord axis
    s = project_onto_centerline(pts, cl)
    np.testing.assert_allclose(s, along * math.cos(th), atol=0.3)


def test_spans_use_discs_else_the_gap_middle():
    bodies = [BodyExtent(3, 20.0, 34.0, 27.0), BodyExtent(4, 0.0, 14.0, 7.0), BodyExtent(5, -20.0, -6.0, -13.0)]
    # a disc between C3 and C4 (off-centre), none between C4 and C5, one above C3 and none below C5
    spans = level_spans(bodies, [16.0, 37.0])
    assert spans == [LevelSpan(3, 16.0, 37.0), LevelSpan(4, -3.0, 16.0), LevelSpan(5, -20.0, -3.0)]
    # a disc beyond one body height from the top body is not its disc
    assert level_spans(bodies, [60.0])[0].upper_mm == 34.0
    assert level_spans([], [1.0]) == []


def test_unnamed_body_keeps_its_span_but_paints_nothing():
    spans = level_spans(
        [BodyExtent(3, 20.0, 34.0, 27.0), BodyExtent(0, 0.0, 14.0, 7.0), BodyExtent(5, -20.0, -6.0, -13.0)], []
    )
    got = level_of_positions([30.0, 10.0, 5.0, -10.0, -30.0], spans)
    assert got.tolist() == [3, 0, 0, 5, 0]


def test_empty_cord_gives_no_levels():
    cord, bodies, discs, _ = tilted_phantom()
    painted, spans = paint_cord_levels(cord.with_data(np.zeros(cord.shape, np.float32)), bodies, discs)
    assert spans == [] and not painted.any()
    with pytest.raises(ValueError, match="grid"):
        paint_cord_levels(cord, bodies[:-1], discs)


@pytest.mark.parametrize(("seed", "levels"), [(3, "cervical"), (8, "T9-L2")])
def test_synthetic_spine_levels_match_the_engine_geometry(seed, levels):
    from neurospine.labels import CRANIOCAUDAL_ORDER, VERTEBRA_IDS
    from neurospine.synth import SynthConfig, generate_case
    from neurospine.synth.case import spine_model, vertebral_level_at

    cfg = SynthConfig(levels=levels, plane="isotropic", spacing_mm=(1.0, 1.0, 1.0))
    case = generate_case(seed, cfg)
    model = spine_model(seed, cfg)
    assert dict(model.angles_deg) == case.meta["curvature_deg"]  # the reconstruction is the case's model
    inst, sem = np.asarray(case.instance.data), np.asarray(case.semantic.data)
    bodies = np.where((sem == 49) & (inst > 0) & (inst < 100), inst, 0)  # vertebral bodies (corpus)
    discs = np.where((inst > 100) & (inst < 200), inst, 0)
    painted, _ = paint_cord_levels(case.cord_soft, bodies, discs)
    morph = measure_cord(case.cord_soft, levels=case.cord_soft.with_data(painted), level_gap_mm=0.0)
    soft, aff = np.asarray(case.cord_soft.data, dtype=np.float64), case.cord_soft.affine  # RAS grid
    ii, jj = np.indices(soft.shape[:2])
    rank = {v: i for i, v in enumerate(CRANIOCAUDAL_ORDER)}
    agree = total = 0
    for r in morph.slices:
        w = soft[:, :, r.slice]
        centre = aff[:3, :3] @ np.array([(w * ii).sum() / w.sum(), (w * jj).sum() / w.sum(), r.slice]) + aff[:3, 3]
        s, _, _ = model.centreline.canonical(centre[None])
        truth = vertebral_level_at(model, float(s[0]))
        if truth in ("", "C1") or not r.level:  # the atlas has no body: C1/C2 is not defined by discs
            continue
        total += 1
        agree += truth == r.level
        assert abs(rank[VERTEBRA_IDS[truth]] - rank[VERTEBRA_IDS[r.level]]) <= 1, (r.slice, truth, r.level)
    assert total >= 80
    assert agree / total >= 0.95, (agree, total)


def test_segvert_mask_is_projected_from_the_bodies_only():
    from neurospine.cord.autolevels import BODY_MIN_ANTERIOR_MM
    from neurospine.cord.levels import vertebra_ids
    from neurospine.cord.spinelevels import levels_from_mask

    cord, bodies, discs, along = tilted_phantom()
    # whole vertebrae: posterior elements behind the cord, 10 mm lower than their bodies, same ids
    world_ant = _anterior(cord)
    segvert = bodies.copy()
    for lvl, lo, hi in BODIES:
        post = (world_ant <= -8.0) & (world_ant >= -25.0) & (along >= lo - 10.0) & (along <= hi - 10.0)
        segvert[post & (segvert == 0)] = lvl
    segvert = np.where(discs > 0, discs, segvert).astype(np.int16)
    given = levels_from_mask(segvert, cord.data, cord)
    assert given.source == "mask" and given.mask is not None
    cos_t = math.cos(math.radians(TILT_DEG))
    assert [s.level for s in given.spans] == [3, 4, 5]
    assert given.spans[1].lower_mm == pytest.approx(-7.0 * cos_t, abs=0.6)
    assert given.spans[2].lower_mm == pytest.approx(-24.0 * cos_t, abs=0.8)
    # without keeping the bodies only, the posterior elements stretch the lowest span caudally
    _, whole = paint_cord_levels(cord, vertebra_ids(segvert), discs)
    assert whole[2].lower_mm < -24.0 * cos_t - 5.0
    assert BODY_MIN_ANTERIOR_MM < 12.0  # the phantom's bodies start 12 mm in front of the cord
    # a cord-by-level mask (it overlaps the cord) is used as it is
    assert levels_from_mask(given.mask, cord.data, cord).mask is None


def _anterior(cord: Volume) -> np.ndarray:
    th = math.radians(TILT_DEG)
    v = np.array([0.0, math.cos(th), -math.sin(th)])
    world = np.indices(cord.shape).reshape(3, -1).T @ cord.affine[:3, :3].T + cord.affine[:3, 3]
    return (world @ v).reshape(cord.shape)


def _whole_vertebrae(cord: Volume, bodies: np.ndarray, along: np.ndarray, arch_front_mm: float) -> np.ndarray:
    """``bodies`` plus posterior elements (same ids) from ``arch_front_mm`` in front of the cord centre
    (negative: behind it) to 25 mm behind it, 10 mm lower than their bodies along the cord."""
    ant = _anterior(cord)
    lr = (np.indices(cord.shape)[0] * cord.affine[0, 0] + cord.affine[0, 3]).astype(float)
    segvert = bodies.copy()
    for lvl, lo, hi in BODIES:
        post = (ant <= arch_front_mm) & (ant >= -25.0) & (np.abs(lr) <= 8.0)
        segvert[post & (along >= lo - 10.0) & (along <= hi - 10.0) & (segvert == 0)] = lvl
    return segvert


@pytest.mark.parametrize("with_discs", [True, False])
def test_segvert_mask_whose_arches_touch_the_cord_is_projected(with_discs):
    """Regression (sct-t1): a seg-vert mask whose posterior elements reach into the cord segmentation
    was taken for a cord-by-level mask, and the slice vote on the few arch voxels lost a level."""
    from neurospine.cord.levels import is_cord_by_level, vertebra_ids
    from neurospine.cord.spinelevels import levels_from_mask

    cord, bodies, discs, _along = tilted_phantom()
    segvert = _whole_vertebrae(cord, bodies, _along, arch_front_mm=-2.5)  # arches 1.5 mm into the cord
    if with_discs:
        segvert = np.where(discs > 0, discs, segvert).astype(np.int16)
    on_cord = cord.data >= 0.5
    assert np.count_nonzero((vertebra_ids(segvert) > 0) & on_cord) > 50  # the arches overlap the cord
    assert not is_cord_by_level(segvert, on_cord, spacing_mm=cord.spacing_mm)

    given = levels_from_mask(segvert, cord.data, cord)
    assert given.source == "mask" and given.mask is not None
    cos_t = math.cos(math.radians(TILT_DEG))
    assert [s.level for s in given.spans] == [3, 4, 5]
    assert given.spans[0].lower_mm == pytest.approx(13.0 * cos_t, abs=0.6)
    assert given.spans[1].lower_mm == pytest.approx(-7.0 * cos_t, abs=0.6)
    morph = measure_cord(cord, levels=cord.with_data(given.mask), level_gap_mm=0.0)
    assert [lv.level for lv in morph.per_level()] == ["C3", "C4", "C5"]


def test_cord_by_level_mask_is_used_as_is():
    from neurospine.cord.levels import is_cord_by_level
    from neurospine.cord.spinelevels import levels_from_mask

    cord, _bodies, _discs, along = tilted_phantom()
    level_at = np.vectorize(expected_level)(along).astype(np.int16)
    on_cord = cord.data >= 0.5
    exact = np.where(on_cord, level_at, 0).astype(np.int16)
    # painted on a wider cord segmentation (radius 5 mm against 4 mm): 36% of it lies off this cord
    wider = np.zeros(cord.shape, bool)
    wider[2:-2, 2:-2, :] = True
    wider &= np.asarray(_radial(cord) <= 5.0)
    wide = np.where(wider, level_at, 0).astype(np.int16)
    # covering a part of the cord only (C4 alone)
    partial = np.where(exact == 4, exact, 0).astype(np.int16)
    for mask in (exact, wide, partial):
        assert is_cord_by_level(mask, on_cord, spacing_mm=cord.spacing_mm)
        given = levels_from_mask(mask, cord.data, cord)
        assert given.source == "mask" and given.mask is None and given.spans == []
    morph = measure_cord(cord, levels=cord.with_data(exact), level_gap_mm=0.0)
    assert [lv.level for lv in morph.per_level()] == ["C3", "C4", "C5"]


def test_is_cord_by_level_rules():
    from neurospine.cord.levels import has_disc_or_endplate_ids, is_cord_by_level, on_cord_fraction

    shape = (12, 12, 10)
    cord = np.zeros(shape, bool)
    cord[5:7, 5:7, :] = True
    painted = np.where(cord, 3, 0).astype(np.int16)
    assert is_cord_by_level(painted, cord) and on_cord_fraction(painted, cord) == 1.0
    # a disc or endplate id makes it a seg-vert mask, wherever its voxels are
    for extra in (104, 203):
        with_id = painted.copy()
        with_id[0, 0, 0] = extra
        assert has_disc_or_endplate_ids(with_id) and not is_cord_by_level(with_id, cord)
    assert not has_disc_or_endplate_ids(np.array([0, 3, 100, 150, 300]))  # not a known disc or endplate id
    # touching the cord is not enough: most of the vertebra lies beside it
    vert = np.zeros(shape, np.int16)
    vert[0:5, :, :] = 3
    vert[5, 5, 0:3] = 3
    assert 0.0 < on_cord_fraction(vert, cord) < 0.05 and not is_cord_by_level(vert, cord, spacing_mm=(1, 1, 1))
    # a mask painted one voxel wider than the cord: off the cord voxel-wise, on it within the tolerance
    wide = np.zeros(shape, np.int16)
    wide[4:8, 4:8, :] = 2
    assert on_cord_fraction(wide, cord) == 0.25 and not is_cord_by_level(wide, cord)
    assert is_cord_by_level(wide, cord, spacing_mm=(1.0, 1.0, 1.0))
    assert not is_cord_by_level(wide, cord, spacing_mm=(2.0, 2.0, 1.0))  # one voxel off is 2 mm off
    assert not is_cord_by_level(np.zeros(shape, np.int16), cord)


def test_slice_vote_of_a_segvert_mask_touching_the_cord_uses_whole_slices():
    """The fallback vote (no body in front of the cord) is not restricted to the cord for a seg-vert mask."""
    shape = (20, 20, 20)
    cord = np.zeros(shape, bool)
    cord[8:12, 8:12, :] = True
    vert = np.zeros(shape, np.int16)
    vert[0:6, 2:18, 0:10] = 4  # body of C4 (lower slices)
    vert[0:6, 2:18, 10:20] = 3  # body of C3
    vert[9:12, 10:18, 5:10] = 3  # C3's arch slopes caudally and reaches into the cord
    pos = np.arange(20, dtype=float)
    out = levels_per_slice(vert, cord, pos, max_gap_mm=0.0)
    assert list(out) == [4] * 10 + [3] * 10


def _radial(cord: Volume) -> np.ndarray:
    th = math.radians(TILT_DEG)
    u = np.array([0.0, math.sin(th), math.cos(th)])
    world = np.indices(cord.shape).reshape(3, -1).T @ cord.affine[:3, :3].T + cord.affine[:3, 3]
    return np.linalg.norm(world - np.outer(world @ u, u), axis=1).reshape(cord.shape)


def test_slice_vote_uses_the_same_tolerance_as_the_mask_classification():
    """A cord-by-level mask painted one voxel wider than the cord is cord-by-level once the spacing is known
    (1 mm tolerance, as in ``levels_from_mask``), so the per-slice vote is restricted to the cord voxels."""
    from neurospine.cord.levels import levels_per_slice

    shape = (12, 12, 6)
    cord = np.zeros(shape, bool)
    cord[5:7, 5:7, :] = True
    mask = np.zeros(shape, np.int16)
    mask[4:8, 4:8, :] = 4  # the one-voxel ring (12 voxels a slice) says C4 ...
    mask[5:7, 5:7, :] = 3  # ... the cord itself (4 voxels) says C3
    pos = np.arange(shape[2], dtype=float)
    with_spacing = levels_per_slice(mask, cord, pos, axis=2, max_gap_mm=0.0, spacing_mm=(1.0, 1.0, 1.0))
    assert (with_spacing == 3).all()  # cord-by-level within 1 mm: the cord voxels vote
    voxelwise = levels_per_slice(mask, cord, pos, axis=2, max_gap_mm=0.0)
    assert (voxelwise == 4).all()  # without a spacing only 25 % is on the cord: whole-slice vote
