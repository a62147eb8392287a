"""The cord of the spine mask taken from the cord model (neurospine.spine.cordfusion)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.io import Volume
from neurospine.labels import VERTEBRA_IDS
from neurospine.spine import cordfusion as F

#: PIR voxel axes (posterior, inferior, right) in RAS world millimetres, 1 mm voxels
PIR_AFFINE = np.array([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
NO_CENTRES = (np.zeros((0, 3)), np.zeros(0, dtype=bool))


def _column(levels: tuple[str, ...], rows: int | None = None) -> np.ndarray:
    """Bodies 10 rows tall, one per level 12 rows apart, down axis 1 (inferior on PIR_AFFINE), in front of the
    canal."""
    body = np.zeros((30, rows or 12 * len(levels) + 10, 20), dtype=np.int16)
    for k, name in enumerate(levels):
        body[2:12, 12 * k + 2 : 12 * k + 12, 5:15] = VERTEBRA_IDS[name]
    return body


def _centres(body: np.ndarray, sacrum: np.ndarray | None = None):
    return F.body_centres(body, np.zeros(body.shape, dtype=bool) if sacrum is None else sacrum, PIR_AFFINE)


def test_cord_is_written_over_background_and_canal_only():
    sem = np.zeros((30, 40, 20), dtype=np.uint8)
    sem[18:24, :, 7:13] = 61  # canal
    sem[19:23, 0:5, 9:11] = 49  # a (wrong) body voxel block inside the cord's path
    cord = np.zeros(sem.shape, dtype=bool)
    cord[15:22, :, 8:12] = True  # runs out of the canal on one side
    out, written, dropped = F.fuse_cord(sem, cord, PIR_AFFINE, 1.0, *NO_CENTRES)
    assert dropped == 0
    assert np.all(out[cord & (sem != 49)] == 60)
    assert np.all(out[sem == 49] == 49)  # bone is never overwritten
    assert written == int((cord & (sem != 49)).sum())
    assert np.array_equal(out[~cord], sem[~cord])


def test_network_cord_becomes_canal_whatever_the_cord_model_finds(monkeypatch):
    sem = np.zeros((20, 30, 10), dtype=np.uint8)
    sem[5:15, :, 2:8] = 61
    sem[8:12, :, 4:6] = 60  # the network's own cord
    vol = Volume(np.ones(sem.shape, dtype=np.float32), PIR_AFFINE)
    found = {"cord": np.zeros(sem.shape, dtype=bool)}

    def fake_cord_mask(sub, card, session, semantic=None):
        start = np.rint(np.linalg.solve(PIR_AFFINE[:3, :3], sub.affine[:3, 3] - PIR_AFFINE[:3, 3])).astype(int)
        box = tuple(slice(a, a + n) for a, n in zip(start, sub.shape, strict=True))
        return found["cord"][box], None

    monkeypatch.setattr(F, "cord_mask", fake_cord_mask)
    card = type("Card", (), {"version": "t"})()
    out, fusion = F.fuse(vol, sem, np.zeros(sem.shape, dtype=np.int16), card, lambda: None, use_levels=True)
    assert fusion.ran and fusion.written_voxels == 0 and not (out == 60).any() and np.all(out[8:12, :, 4:6] == 61)
    found["cord"][8:12, 0:20, 4:6] = True  # the cord model finds the upper part only
    out, fusion = F.fuse(vol, sem, np.zeros(sem.shape, dtype=np.int16), card, lambda: None, use_levels=True)
    assert fusion.written_voxels == 160 and np.all(out[8:12, 0:20, 4:6] == 60) and np.all(out[8:12, 20:, 4:6] == 61)


def test_cord_nearest_to_l3_or_lower_is_dropped():
    body = _column(("L1", "L2", "L3", "L4"))
    cord = np.zeros(body.shape, dtype=bool)
    cord[20, :, 10] = True  # the whole length of the canal
    low = F.below_conus_voxels(cord, PIR_AFFINE, *_centres(body))
    rows = np.nonzero(low[20, :, 10])[0]
    # L2's centre row is 18.5, L3's 30.5: the cut lies halfway (24.5); everything below it is dropped
    assert rows.min() == 25 and rows.max() == body.shape[1] - 1
    assert not low[20, :25, 10].any()


def test_unnamed_bodies_are_centres_that_keep_the_cord():
    body = _column(("L1", "L2", "L3"))
    body[body == VERTEBRA_IDS["L2"]] = 301  # an unnamed body between L1 and L3
    cord = np.zeros(body.shape, dtype=bool)
    cord[20, :, 10] = True
    low = F.below_conus_voxels(cord, PIR_AFFINE, *_centres(body))
    assert not low[20, :25, 10].any() and low[20, 25:, 10].all()


def test_nothing_dropped_without_bodies_below_the_conus():
    cord = np.zeros((30, 40, 20), dtype=bool)
    cord[20, :, 10] = True
    none = np.zeros(cord.shape, dtype=np.int16)
    assert not F.below_conus_voxels(cord, PIR_AFFINE, *_centres(none)).any()
    cervical = _column(("C3", "C4"), rows=40)
    assert not F.below_conus_voxels(cord, PIR_AFFINE, *_centres(cervical)).any()


def test_sacrum_counts_as_below_the_conus():
    sem = np.zeros((30, 80, 20), dtype=np.uint8)
    sem[2:12, 60:80, 5:15] = 26
    body = np.zeros(sem.shape, dtype=np.int16)
    body[2:12, 2:12, 5:15] = VERTEBRA_IDS["T12"]
    cord = np.zeros(sem.shape, dtype=bool)
    cord[20, :, 10] = True
    out, written, dropped = F.fuse_cord(sem, cord, PIR_AFFINE, 1.0, *_centres(body, sem == 26))
    assert dropped > 0 and written > 0
    # centres at rows 6.5 (T12) and 69.5 (sacrum): the cut lies at 38
    assert not (out[20, 39:, 10] == 60).any() and (out[20, :38, 10] == 60).all()


@pytest.mark.parametrize("n", [1, int(F.MIN_CORD_MM3) - 1])
def test_a_speck_of_cord_writes_nothing(n):
    sem = np.zeros((10, 40, 10), dtype=np.uint8)
    cord = np.zeros(sem.shape, dtype=bool)
    cord[5, :n, 5] = True
    out, written, _ = F.fuse_cord(sem, cord, PIR_AFFINE, 1.0, *NO_CENTRES)
    assert written == 0 and not out.any()


def test_search_box_grows_the_canal_and_stops_above_the_conus():
    body = _column(("T12", "L1", "L2", "L3", "L4"), rows=100)
    sem = np.zeros(body.shape, dtype=np.uint8)
    sem[14:16, 30:70, 9:11] = 61  # a canal well inside the volume: the margins show
    box = F.search_box(sem, body, PIR_AFFINE)
    m = int(F.SEARCH_MARGIN_MM)
    l3_top = 12 * 3 + 2  # first row of the L3 body
    assert box == (slice(0, 30), slice(0, l3_top + int(F.CONUS_MARGIN_MM) + 1), slice(0, 20))
    # positional names: no level cut; head to foot the whole field of view (a canal found in part does not say
    # where the cord ends), across the cord the canal's margin
    narrow = np.zeros((100, 100, 60), dtype=np.uint8)
    narrow[60:62, 30:70, 29:31] = 61
    no_body = np.zeros(narrow.shape, dtype=np.int16)
    box = F.search_box(narrow, no_body, PIR_AFFINE, use_levels=False)
    assert box == (slice(60 - m, 62 + m), slice(0, 100), slice(29 - m, 31 + m))


def test_search_box_with_the_superior_axis_reversed_and_without_labels():
    empty = np.zeros((10, 10, 10), dtype=np.uint8)
    # no canal found (small cervical crops): the cord model looks at the whole field of view
    assert F.search_box(empty, empty.astype(np.int16), PIR_AFFINE) == (slice(0, 10), slice(0, 10), slice(0, 10))
    body = np.zeros((10, 30, 10), dtype=np.int16)
    body[:, 0:20, :] = VERTEBRA_IDS["L4"]
    sem = np.where(body > 0, 49, 0).astype(np.uint8)
    reversed_si = PIR_AFFINE.copy()
    reversed_si[2, 1] = 1.0  # axis 1 now runs superior: keep what lies above the L4 body's top row (19)
    box = F.search_box(sem, body, reversed_si)
    assert box is not None and box[1] == slice(19 - int(F.CONUS_MARGIN_MM), 30)


def test_search_box_without_canal_keeps_to_the_bodies_and_without_bodies_takes_everything():
    sem = np.zeros((100, 100, 100), dtype=np.uint8)
    sem[10:20, 40:50, 45:55] = 49  # one body, no canal: every label grown by the margin
    m = int(np.ceil(F.SEARCH_MARGIN_MM))
    box = F.search_box(sem, np.zeros(sem.shape, dtype=np.int16), PIR_AFFINE, use_levels=False)
    assert box == (slice(0, 20 + m), slice(0, 100), slice(45 - m, 55 + m))
    only_disc = np.where(sem > 0, 100, 0).astype(np.uint8)  # a disc and no body (a small cervical crop)
    box = F.search_box(only_disc, np.zeros(sem.shape, dtype=np.int16), PIR_AFFINE, use_levels=False)
    assert box == (slice(0, 100), slice(0, 100), slice(0, 100))


def test_superior_axis_follows_direction_not_spacing():
    # sagittal 0.5 x 0.5 mm pixels, 4 mm slices, tilted 10 degrees about the anterior-posterior axis: the slice
    # axis has the larger z component in mm, but the in-plane row axis points superior-inferior
    t = np.radians(10.0)
    rows = 0.5 * np.array([np.sin(t), 0.0, -np.cos(t)])  # mostly inferior
    cols = 0.5 * np.array([0.0, -1.0, 0.0])  # posterior
    slices = 4.0 * np.array([np.cos(t), 0.0, np.sin(t)])  # mostly right
    aff = np.eye(4)
    aff[:3, 0], aff[:3, 1], aff[:3, 2] = cols, rows, slices
    assert F.superior_axis(aff) == (1, False)


def test_sub_volume_keeps_world_positions():
    aff = PIR_AFFINE.copy()
    aff[:3, 3] = (5.0, -3.0, 2.0)
    vol = Volume(np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8), aff)
    box = (slice(1, 4), slice(2, 7), slice(3, 5))
    sub = F.sub_volume(vol, box)
    assert sub.data[0, 0, 0] == vol.data[1, 2, 3]
    assert np.allclose(sub.affine @ [0, 0, 0, 1], vol.affine @ [1, 2, 3, 1])


def test_fusion_record_carries_what_the_canal_check_did():
    note = "less than 50 % of the cord model's first cord lay in the spine model's canal; ..."
    record = F.CordFusion(True, 10, 0, "2.0.0", note).as_dict(2.0)
    assert record["canal_check"] == note and record["cord_mm3"] == 20.0
    assert F.CordFusion(True, 10, 0, "2.0.0").as_dict(1.0)["canal_check"] is None
