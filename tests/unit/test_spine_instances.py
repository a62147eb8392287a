"""Phase 2 (instances) and naming on label maps: hand-made class maps and the synthetic engine."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.labels import VERTEBRA_IDS
from neurospine.spine import classes as C
from neurospine.spine.api import body_levels, name_instances, relabel
from neurospine.spine.instances import SACRUM_TMP, build_instances, geodesic_assign, split_at_disc_waist

SP = (1.0, 1.0, 1.0)


def column_map(n: int = 4, bridge: int = 0, sloped_spinous: bool = False) -> np.ndarray:
    """PIR class map: n bodies 24 mm tall with 8 mm discs, an arch per body (pedicle + lamina + spinous
    process), a sacrum below. ``bridge``: width of a bony bridge through the disc between bodies 2 and 3.
    ``sloped_spinous``: spinous processes run far down, past the top of the next body's level."""
    cls = np.zeros((110, 40 + n * 32 + 60, 40), dtype=np.uint8)
    row = 20
    for k in range(n):
        cls[20:50, row : row + 24, 5:35] = C.CORPUS
        cls[50:58, row + 4 : row + 12, 12:28] = C.ARCUS  # pedicles + lamina
        cls[58:64, row + 2 : row + 14, 16:24] = C.ARCUS
        if sloped_spinous:
            for d in range(30):
                cls[64 + d : 66 + d, row + 6 + d : row + 10 + d, 18:22] = C.SPINOUS
        else:
            cls[64:84, row + 6 : row + 12, 18:22] = C.SPINOUS
        row += 24
        cls[21:49, row : row + 8, 6:34] = C.DISC
        if bridge and k == 1:
            cls[33 : 33 + bridge, row : row + 8, 20 - bridge // 2 : 20 - bridge // 2 + bridge] = C.CORPUS
        row += 8
    cls[18:60, row : row + 40, 3:37] = C.SACRUM
    return cls


def test_bodies_discs_and_sacrum_on_a_clean_column():
    cls = column_map(4)
    res = build_instances(cls, SP)
    assert len(res.vertebrae) == 4 and res.sacrum_voxels > 0
    rows = [v.centroid_vox[1] for v in res.vertebrae]
    assert rows == sorted(rows)  # top to bottom
    inst = res.instances
    for k in range(1, 5):
        disc = inst == 100 + k
        assert disc.any()
        assert np.nonzero(disc)[1].mean() > res.vertebrae[k - 1].centroid_vox[1]  # disc below its vertebra
    assert (inst[cls == C.SACRUM] == SACRUM_TMP).all()
    nm = name_instances(res, cls, SP)
    assert nm.anchor == "S1" and nm.levels == [VERTEBRA_IDS[f"L{i}"] for i in range(2, 6)]
    seg_vert, names = relabel(res, nm)
    assert {VERTEBRA_IDS["L5"], 100 + VERTEBRA_IDS["L5"], 26} <= set(np.unique(seg_vert).tolist())
    assert names[VERTEBRA_IDS["L2"]] == "L2"
    bodies = body_levels(res, nm)
    assert set(np.unique(bodies).tolist()) == {0, *[VERTEBRA_IDS[f"L{i}"] for i in range(2, 6)]}


def test_posterior_elements_follow_their_own_body_through_bone():
    cls = column_map(4, sloped_spinous=True)
    cls[cls == C.SACRUM] = 0  # a sacrum would take the lowest spinous tip, 16 mm below its body (see below)
    res = build_instances(cls, SP)
    assert len(res.vertebrae) == 4
    inst = res.instances
    # every arch voxel attached to body k (same rows as body k's pedicle) carries label k,
    # even the tips of the spinous processes that reach below the next body's top
    spin = cls == C.SPINOUS
    labels = np.unique(inst[spin])
    assert set(labels.tolist()) == {1, 2, 3, 4}
    for k in range(1, 5):
        tip_rows = np.nonzero(spin & (inst == k))[1]
        next_top = res.vertebrae[k].top_row if k < 4 else np.inf
        assert tip_rows.max() > next_top - 1 or k == 4  # the slope really crosses into the next level
        assert np.all(inst[(cls == C.ARCUS) & (inst == k)] == k)


def test_bridged_bodies_are_split_into_two():
    cls = column_map(4, bridge=8)
    res = build_instances(cls, SP)
    assert len(res.vertebrae) == 4
    assert res.split_bodies == 1


def test_geodesic_assign_prefers_path_inside_the_mask():
    mask = np.zeros((30, 30, 3), dtype=bool)
    mask[2:28, 14:16, :] = True  # a vertical bar
    mask[2:4, 2:16, :] = True  # joined at the top to a horizontal bar
    seeds = np.zeros(mask.shape, dtype=np.int32)
    seeds[1, 2:4, :] = 1  # touches the far end of the horizontal bar
    seeds[27:29, 20, :] = 2  # close in straight line to the bottom of the vertical bar, but not touching
    seeds[28, 14:16, :] = 2  # touches the bottom
    out = geodesic_assign(mask, seeds, SP)
    assert out[26, 14, 1] == 2 and out[3, 3, 1] == 1 and (out[~mask] == 0).all()


def test_synthetic_label_map_instances_match_truth():
    synth = pytest.importorskip("neurospine.synth")
    from neurospine.io import reorient

    case = synth.generate_case(
        2,
        synth.SynthConfig(
            levels="L1-S1", contrast="t2w", plane="sagittal", spacing_mm=(1.0, 1.0, 3.0), soft_labels=False
        ),
    )
    sem, _ = reorient(case.semantic, "PIR")
    truth, _ = reorient(case.instance, "PIR")
    cls = C.spineps_to_net(np.asarray(sem.data))
    res = build_instances(cls, sem.spacing_mm)
    nm = name_instances(res, cls, sem.spacing_mm)
    seg_vert, names = relabel(res, nm)
    t = np.asarray(truth.data)
    assert nm.anchor == "S1"
    for v in names:
        if v >= 100 or v == 26:
            continue
        m, r = seg_vert == v, t == v
        assert 2 * (m & r).sum() / (m.sum() + r.sum()) > 0.85, names[v]
    truth_discs = {int(v) for v in np.unique(t) if 100 < v < 200}
    got_discs = {int(v) for v in np.unique(seg_vert) if 100 < v < 200}
    assert truth_discs == got_discs


def test_many_vertebrae_do_not_collide_with_the_sacrum_value():
    cls = column_map(27)
    res = build_instances(cls, SP)
    assert len(res.vertebrae) == 27
    assert (res.instances[cls == C.SACRUM] == SACRUM_TMP).all()
    assert not np.any(res.instances[cls == C.CORPUS] == SACRUM_TMP)
    nm = name_instances(res, cls, SP)
    seg_vert, _ = relabel(res, nm)
    assert nm.anchor == "S1" and nm.flags  # 27 bodies cannot all be named from L5 upwards
    assert (seg_vert[cls == C.SACRUM] == 26).all()
    assert set(np.unique(seg_vert[cls == C.CORPUS]).tolist()) >= {VERTEBRA_IDS["L5"], VERTEBRA_IDS["C1"]}


def test_body_broken_into_left_right_pieces_is_one_vertebra():
    from neurospine.spine.instances import merge_side_by_side

    seeds = np.zeros((40, 120, 40), dtype=np.int32)
    seeds[5:35, 10:30, 2:12] = 1  # left piece of the top body
    seeds[5:35, 11:31, 20:30] = 2  # right piece of the same body, a gap in between
    seeds[5:35, 40:60, 5:35] = 3  # the next body down
    merged, n, joins = merge_side_by_side(seeds, 3)
    assert (n, joins) == (2, 1)
    assert len(np.unique(merged[5:35, 10:31, :])) == 2  # background + one label
    assert merged[20, 20, 5] == merged[20, 20, 25] != merged[20, 50, 20]


def test_stacked_bodies_are_never_joined():
    from neurospine.spine.instances import merge_side_by_side

    seeds = np.zeros((40, 120, 40), dtype=np.int32)
    seeds[5:35, 10:30, 5:35] = 1
    seeds[5:35, 24:44, 5:35] = 2  # touching rows overlap by 6 of 20 rows only (tilted neighbours)
    _, n, joins = merge_side_by_side(seeds, 2)
    assert (n, joins) == (2, 0)


def test_detached_fragment_is_not_glued_to_the_nearest_vertebra():
    from neurospine.spine.instances import grow_labels

    mask = np.zeros((20, 60, 20), dtype=bool)
    mask[5:15, 5:25, 5:15] = True  # a body with its seed
    mask[5:15, 40:44, 5:15] = True  # a piece across a disc gap, too small to hold a seed
    seeds = np.zeros(mask.shape, dtype=np.int32)
    seeds[8:12, 10:20, 8:12] = 1
    lab = grow_labels(seeds, mask, SP, max_steps=2)
    assert (lab[5:15, 5:25, 5:15] == 1).all()
    assert (lab[:, 40:44] == 0).all()


def _with_sacral_arch(n: int = 4) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """``column_map(n)`` with the sacrum's own arch: a plate behind the sacrum, touching it, joined to L5's lamina
    by a strip across the lumbosacral level (the network paints such an arch with posterior-element classes)."""
    cls = column_map(n)
    sac_rows = np.nonzero((cls == C.SACRUM).any(axis=(0, 2)))[0]
    top = int(sac_rows.min())
    plate = (slice(60, 66), slice(top + 4, top + 30), slice(12, 28))
    cls[plate] = C.ARCUS
    l5_row = 20 + (n - 1) * 32
    cls[58:64, l5_row + 14 : top + 4, 16:24] = C.ARCUS  # L5's lamina runs on into the sacral arch
    return cls, plate


def test_the_sacral_arch_joins_the_sacrum_not_l5():
    """docs/decisions/spine-sacral-arch.md: the sacrum competes with the bodies for posterior elements."""
    from neurospine.spine.instances import settle_sacral_arch

    cls, plate = _with_sacral_arch(4)
    res = build_instances(cls, SP)
    assert len(res.vertebrae) == 4
    assert (res.instances[plate] == SACRUM_TMP).mean() > 0.9
    l5_pedicle = (slice(50, 58), slice(20 + 3 * 32 + 4, 20 + 3 * 32 + 12), slice(12, 28))
    assert (res.instances[l5_pedicle] == 4).all()  # L5 keeps its own arch
    assert res.sacrum_voxels == int((cls == C.SACRUM).sum())  # the naming's sacrum: without the arch
    assert res.arch is not None and res.arch_owner is not None
    assert (res.arch_owner[res.arch] == 4).all()  # the bodies-only assignment gave the arch to L5
    moved = settle_sacral_arch(cls, res)
    assert moved > 0 and (cls[plate][res.instances[plate] == SACRUM_TMP] == C.SACRUM).all()
    # the old assignment (bodies only) gives the whole arch to L5
    old = build_instances(_with_sacral_arch(4)[0], SP, sacral_arch=False)
    assert (old.instances[plate] == 4).all() and old.arch is None


def test_a_dropped_sacrum_gives_its_arch_back_and_only_pieces_near_bone_join_it():
    from neurospine.spine.instances import settle_sacral_arch

    cls, plate = _with_sacral_arch(4)
    top = int(np.nonzero((cls == C.SACRUM).any(axis=(0, 2)))[0].min())
    near = (slice(70, 76), slice(top + 10, top + 20), slice(14, 26))  # 4 mm behind the plate, deep below L5
    far = (slice(95, 100), slice(top + 10, top + 20), slice(14, 26))  # 29 mm behind it: soft tissue
    cls[near] = C.ARCUS
    cls[far] = C.ARCUS
    res = build_instances(cls, SP)
    assert (res.instances[near] == SACRUM_TMP).all()  # more than 12 mm below L5: the sacrum's, without a path
    assert (res.instances[far] == 0).all()  # no vertebra and no sacrum takes a piece far from bone
    res.sacrum_voxels = 0  # as drop_unused_sacrum leaves it after removing a small sacrum
    res.instances[res.instances == SACRUM_TMP] = 0
    assert settle_sacral_arch(cls, res) == 0
    assert (res.instances[plate] == 4).all() and (cls[plate] == C.ARCUS).all()


def test_the_sacrum_never_takes_posterior_elements_beside_the_lowest_body():
    """A sacrum piece touching L5's arch at the level of L5's body (as on vb1-11) takes nothing there: only voxels
    more than SACRAL_ARCH_BELOW_MM below the lowest body's inferior surface can join the sacrum."""
    cls, plate = _with_sacral_arch(4)
    l5_row = 20 + 3 * 32
    cls[84:90, l5_row - 16 : l5_row + 44, 17:23] = C.SACRUM  # touches L5's spinous tip
    res = build_instances(cls, SP)
    beside = np.isin(cls, C.POSTERIOR_CLASSES)
    beside[:, l5_row + 24 + 4 :, :] = False  # rows down to (not quite) 5 mm below L5's body
    beside[:, :l5_row, :] = False
    assert beside.any() and not (res.instances[beside] == SACRUM_TMP).any()
    assert (res.instances[plate] == SACRUM_TMP).mean() > 0.9


def test_the_plane_below_the_lowest_body_follows_the_column():
    """The plane's normal is the direction from the body above to the lowest body, not the image axis."""
    from neurospine.spine.instances import mm_below_lowest_body

    body = np.zeros((80, 120, 10), dtype=np.int32)
    for k, (p0, r0) in enumerate(((20, 10), (40, 50)), start=1):  # the column runs 20 mm back per 40 mm down
        body[p0 : p0 + 20, r0 : r0 + 20, :] = k
    below = mm_below_lowest_body(body, 2, SP) > 5.0
    axis = np.array([20.0, 40.0]) / np.hypot(20.0, 40.0)
    centre = np.array([49.5, 59.5])
    pts = np.argwhere(body[:, :, 0] == 2) - centre
    bottom = np.percentile(pts @ axis, 98)
    for p, r in ((70, 90), (10, 100), (75, 60), (49, 75)):
        assert below[p, r, 5] == ((np.array([p, r]) - centre) @ axis > bottom + 5.0)
    assert below[10, 100, 5] and not below[75, 60, 5]  # in front and low: below; far behind at mid-body: not


def field_edge_slice_map(bridge: bool) -> np.ndarray:
    """PIR class map: a 4 mm slice of a vertebral body at the top edge (too thin for a seed of its own), an 8 mm
    disc, a full body and the sacrum; ``bridge``: corpus painted through the disc in two lateral slices (where the
    disc has left the sagittal slice)."""
    cls = np.zeros((70, 90, 40), dtype=np.uint8)
    cls[20:50, 0:4, 5:35] = C.CORPUS
    cls[21:49, 4:12, 6:34] = C.DISC
    cls[20:50, 12:36, 5:35] = C.CORPUS
    cls[21:49, 36:44, 6:34] = C.DISC
    cls[18:60, 44:80, 3:37] = C.SACRUM
    if bridge:
        cls[20:50, 4:12, 5:7] = C.CORPUS
    return cls


def test_a_body_grown_across_a_disc_gives_the_slice_beyond_it_back():
    clean = build_instances(field_edge_slice_map(bridge=False), SP)
    bridged = build_instances(field_edge_slice_map(bridge=True), SP)
    assert len(clean.vertebrae) == 1  # no bridge: the edge slice has no seed and no path to a body
    assert len(bridged.vertebrae) == 2  # bridged: cut at the disc, the edge slice is a body of its own
    top, full = bridged.vertebrae
    assert top.bottom_row < 6 and full.top_row >= 4
    bridge_vox = 30 * 8 * 2  # the full body keeps at most the bridge through its own disc
    assert clean.vertebrae[0].body_voxels <= full.body_voxels <= clean.vertebrae[0].body_voxels + bridge_vox
    assert bridged.split_bodies == 1


def test_a_narrow_row_without_a_disc_is_no_waist():
    body = np.zeros((30, 40, 30), dtype=np.int32)
    body[:, 0:15, :] = 1
    body[12:18, 15:17, 12:18] = 1  # narrow neck, nothing but background around it
    body[:, 17:35, :] = 1
    cls = np.where(body > 0, C.CORPUS, 0).astype(np.uint8)
    out, n, splits = split_at_disc_waist(body, 1, cls)
    assert splits == 0 and n == 1 and np.array_equal(out, body)
    cls[:, 15:17, :] = np.where(body[:, 15:17, :] > 0, C.CORPUS, C.DISC)
    out, n, splits = split_at_disc_waist(body, 1, cls)
    assert splits == 1 and n == 2
    assert (out[:, 0:15] == 2).all() and (out[:, 17:35] == 1).all()  # the smaller part is the new body
