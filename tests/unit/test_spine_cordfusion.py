"""The cord of the spine mask taken from the cord model (neurospine.spine.cordfusion)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.labels import VERTEBRA_IDS
from neurospine.spine.cordfusion import MIN_CORD_MM3, below_conus_voxels, fuse_cord

#: 1 mm voxels; axis 1 runs inferior (PIR-like: row index grows downwards)
AFFINE = np.diag([1.0, -1.0, 1.0, 1.0])


def _column(levels: tuple[str, ...]) -> np.ndarray:
    """Bodies 10 rows tall, one per level, stacked down axis 1 in front of a canal at axis-0 index 20."""
    body = np.zeros((30, 12 * len(levels) + 10, 20), dtype=np.int16)
    for k, name in enumerate(levels):
        body[2:12, 12 * k + 2 : 12 * k + 12, 5:15] = VERTEBRA_IDS[name]
    return body


def test_cord_is_written_over_background_and_canal_only():
    sem = np.zeros((30, 40, 20), dtype=np.uint8)
    sem[18:24, :, 7:13] = 61  # canal
    sem[19:23, 0:5, 9:11] = 49  # a (wrong) body voxel block inside the cord's path
    cord = np.zeros(sem.shape, dtype=bool)
    cord[15:22, :, 8:12] = True  # runs out of the canal on one side
    body = np.zeros(sem.shape, dtype=np.int16)
    out, written, dropped = fuse_cord(sem, cord, body, AFFINE, 1.0)
    assert dropped == 0
    assert np.all(out[cord & (sem != 49)] == 60)
    assert np.all(out[sem == 49] == 49)  # bone is never overwritten
    assert written == int((cord & (sem != 49)).sum())
    assert np.array_equal(out[~cord], sem[~cord])


def test_unconfirmed_network_cord_becomes_canal():
    sem = np.zeros((20, 30, 10), dtype=np.uint8)
    sem[5:15, :, 2:8] = 61
    sem[8:12, 20:30, 4:6] = 60  # the network's cord, below what the cord model found
    cord = np.zeros(sem.shape, dtype=bool)
    cord[8:12, 0:20, 4:6] = True
    out, _, _ = fuse_cord(sem, cord, np.zeros(sem.shape, dtype=np.int16), AFFINE, 1.0)
    assert np.all(out[8:12, 20:30, 4:6] == 61)
    assert np.all(out[cord] == 60)


def test_cord_nearest_to_l3_or_lower_is_dropped():
    body = _column(("L1", "L2", "L3", "L4"))
    cord = np.zeros(body.shape, dtype=bool)
    cord[20, :, 10] = True  # the whole length of the canal
    low = below_conus_voxels(cord, body, np.zeros(body.shape, dtype=bool), AFFINE)
    rows = np.nonzero(low[20, :, 10])[0]
    # L2's centre row is 18, L3's 30: the cut lies halfway (24); everything below it is dropped
    assert rows.min() == 25 and rows.max() == body.shape[1] - 1
    assert not low[20, :24, 10].any()


def test_nothing_dropped_without_named_bodies_or_below_conus_levels():
    cord = np.zeros((30, 40, 20), dtype=bool)
    cord[20, :, 10] = True
    none = np.zeros(cord.shape, dtype=np.int16)
    assert not below_conus_voxels(cord, none, np.zeros(cord.shape, dtype=bool), AFFINE).any()
    cervical = _column(("C3", "C4"))[:, :40]
    assert not below_conus_voxels(cord, cervical, np.zeros(cord.shape, dtype=bool), AFFINE).any()
    unnamed = np.where(cervical > 0, 301, 0).astype(np.int16)  # unnamed bodies carry no level
    assert not below_conus_voxels(cord, unnamed, np.zeros(cord.shape, dtype=bool), AFFINE).any()


def test_sacrum_counts_as_below_the_conus():
    sem = np.zeros((30, 80, 20), dtype=np.uint8)
    sem[2:12, 60:80, 5:15] = 26
    body = np.zeros(sem.shape, dtype=np.int16)
    body[2:12, 2:12, 5:15] = VERTEBRA_IDS["T12"]
    cord = np.zeros(sem.shape, dtype=bool)
    cord[20, :, 10] = True
    out, written, dropped = fuse_cord(sem, cord, body, AFFINE, 1.0)
    assert dropped > 0 and written > 0
    # centres at rows 6.5 (T12) and 69.5 (sacrum): the cut lies at 38
    assert not (out[20, 39:, 10] == 60).any() and (out[20, :38, 10] == 60).all()


@pytest.mark.parametrize("n", [1, int(MIN_CORD_MM3) - 1])
def test_a_speck_of_cord_writes_nothing(n):
    sem = np.zeros((10, 40, 10), dtype=np.uint8)
    cord = np.zeros(sem.shape, dtype=bool)
    cord[5, :n, 5] = True
    out, written, _ = fuse_cord(sem, cord, np.zeros(sem.shape, dtype=np.int16), AFFINE, 1.0)
    assert written == 0 and not out.any()


#: PIR voxel axes (posterior, inferior, right) in RAS world millimetres
PIR_AFFINE = np.array([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def test_search_box_grows_the_canal_and_stops_above_the_conus():
    from neurospine.spine.cordfusion import CONUS_MARGIN_MM, SEARCH_MARGIN_MM, search_box

    body = _column(("T12", "L1", "L2", "L3", "L4"))  # axis 1 runs inferior
    sem = np.zeros(body.shape, dtype=np.uint8)
    sem[18:23, :, 8:12] = 61
    box = search_box(sem, body, PIR_AFFINE)
    assert box is not None
    m = int(SEARCH_MARGIN_MM)
    assert box[0] == slice(max(0, 18 - m), min(30, 23 + m)) and box[2] == slice(0, 20)
    l3_top = 12 * 3 + 2  # first row of the L3 body
    assert box[1] == slice(0, l3_top + int(CONUS_MARGIN_MM) + 1)


def test_search_box_with_the_superior_axis_reversed_and_without_labels():
    from neurospine.spine.cordfusion import CONUS_MARGIN_MM, search_box

    empty = np.zeros((10, 10, 10), dtype=np.uint8)
    assert search_box(empty, empty.astype(np.int16), PIR_AFFINE) is None
    body = np.zeros((10, 30, 10), dtype=np.int16)
    body[:, 0:20, :] = VERTEBRA_IDS["L4"]
    sem = np.where(body > 0, 49, 0).astype(np.uint8)
    reversed_si = PIR_AFFINE.copy()
    reversed_si[2, 1] = 1.0  # axis 1 now runs superior: keep what lies above the L4 body's top row (19)
    box = search_box(sem, body, reversed_si)
    assert box is not None and box[1] == slice(19 - int(CONUS_MARGIN_MM), 30)
