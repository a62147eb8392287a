"""A cord a few millimetres long is not a cord: the next coarse component is tried, else no cord is reported
(docs/decisions/cord-min-length.md)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.cord.api import run_file
from neurospine.cord.crop import detect_cord
from neurospine.cord.segment import MIN_CORD_LENGTH_MM, cord_length_mm, long_enough, segment_volume
from neurospine.errors import NoStructureFoundError
from neurospine.io import Volume, save_volume
from tests.conftest import make_affine


def bright_is_cord(batch: np.ndarray) -> np.ndarray:
    """Stand-in network: bright = cord and canal (a slice of constant background normalises to 0)."""
    p = 1.0 / (1.0 + np.exp(-(batch - 0.5) * 20.0))
    return np.concatenate([p, p], axis=1).astype(np.float32)


def phantom(with_tube: bool, disc_slices: int = 3) -> tuple[Volume, np.ndarray]:
    """RAS 1 mm: a large bright disc 3 slices long (heaviest in the coarse pass) and, optionally, a thin tube
    20 mm long far from it. Noise-free, so empty slices give the stand-in network nothing."""
    shape = (64, 64, 60)
    ii, jj = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    img = np.zeros(shape, dtype=np.float32)
    blob = ((ii - 48) ** 2 + (jj - 32) ** 2) <= 15**2
    img[:, :, 40 : 40 + disc_slices][blob] = 100.0
    tube = ((ii - 10) ** 2 + (jj - 32) ** 2) <= 5**2
    if with_tube:
        img[:, :, 5:25][tube] = 100.0
    truth = np.zeros(shape, dtype=bool)
    truth[:, :, 5:25][tube] = with_tube
    return Volume(img, make_affine((1.0, 1.0, 1.0), "RAS"), "phantom.nii.gz"), truth


def test_length_counts_slices_and_a_short_image_is_enough_by_itself():
    mask = np.zeros((8, 8, 30), dtype=bool)
    mask[3:5, 3:5, 10:13] = True
    assert cord_length_mm(mask, 2.0) == 6.0
    assert not long_enough(mask, 2.0)
    mask[3:5, 3:5, 10:15] = True
    assert long_enough(mask, 2.0)  # 5 slices x 2 mm = MIN_CORD_LENGTH_MM
    one_slice = np.ones((8, 8, 1), dtype=bool)  # a single 5 mm axial slice holds a whole cord section
    assert MIN_CORD_LENGTH_MM > 5.0 and long_enough(one_slice, 5.0)
    assert not long_enough(np.zeros((8, 8, 1), dtype=bool), 5.0)


def test_detection_ranks_components_by_mass():
    vol, _ = phantom(with_tube=True)
    data = np.asarray(vol.data)
    first = detect_cord(data, vol.spacing_mm, bright_is_cord)
    second = detect_cord(data, vol.spacing_mm, bright_is_cord, rank=1, coarse=first.coarse)
    assert first.found[40:43].any() and not first.found[5:25].any()  # the disc outweighs the tube
    assert second.found[5:25].any() and not second.found[40:43].any()
    assert not detect_cord(data, vol.spacing_mm, bright_is_cord, rank=2, coarse=first.coarse).any


def test_a_short_first_cord_gives_way_to_the_next_component():
    vol, truth = phantom(with_tube=True)
    seg = segment_volume(vol, bright_is_cord)
    mask = np.asarray(seg.cord_mask) > 0
    assert seg.extra["detection_tries"] == 2 and seg.extra["long_enough"]
    assert seg.extra["cord_length_mm"] == pytest.approx(20.0)
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.8 and not mask[:, :, 40:43].any()


def test_only_a_short_cord_is_reported_as_no_cord(tmp_path):
    vol, _ = phantom(with_tube=False)
    seg = segment_volume(vol, bright_is_cord)
    assert np.asarray(seg.cord_mask).any() and not seg.extra["long_enough"]  # kept, but marked
    path = save_volume(vol, tmp_path / "blob.nii.gz")
    with pytest.raises(NoStructureFoundError, match=r"3 mm long, under 10 mm: not a cord"):
        run_file(path, tmp_path / "out", predictor=bright_is_cord, force=True)  # a noise-free phantom
    assert not (tmp_path / "out" / "blob_seg-cord_msk.nii.gz").exists()


def test_a_first_pass_without_cord_is_left_to_the_canal_check():
    vol, _ = phantom(with_tube=True)

    def coarse_only(batch: np.ndarray) -> np.ndarray:  # fine windows (72 px at 0.5 mm) see no cord
        return bright_is_cord(batch) * (batch.shape[-1] != 72)

    seg = segment_volume(vol, coarse_only)
    assert not np.asarray(seg.cord_mask).any() and seg.extra["detection_tries"] == 1


def test_a_long_cord_the_test_rejects_gives_way_and_is_recorded():
    vol, truth = phantom(with_tube=True, disc_slices=14)  # the disc (heaviest) is long enough: only the test rejects it
    assert segment_volume(vol, bright_is_cord).extra["detection_tries"] == 1  # without a test the disc is the cord

    def right_side(mask: np.ndarray) -> str | None:
        return "right of the middle" if np.argwhere(mask)[:, 0].mean() > 30 else None

    seg = segment_volume(vol, bright_is_cord, cord_test=right_side)
    assert seg.extra["rejected"] == "" and seg.extra["detection_tries"] == 2
    assert (np.asarray(seg.cord_mask) > 0)[truth].mean() > 0.8
    seg = segment_volume(vol, bright_is_cord, cord_test=lambda m: "off the midline")  # rejects every cord
    assert seg.extra["rejected"] == "off the midline" and np.asarray(seg.cord_mask)[:, :, 40:54].any()  # first stays


def test_head_midline_test_measures_from_the_head_centre():
    from neurospine.cord.headmidline import HEAD_MIDLINE_MM, midline_test

    data = np.zeros((80, 40, 40), dtype=np.float32)
    data[10:70] = 100.0  # the head: left-right middle at voxel 39.5, 2 mm voxels
    head = Volume(data, make_affine((2.0, 2.0, 2.0), "RAS"))
    test = midline_test(head)
    cord = np.zeros(data.shape, dtype=bool)
    cord[39:41, 20:22, 0:10] = True
    assert test(cord) is None
    eye = np.roll(cord, int(30 / 2), axis=0)  # 30 mm to the side
    assert HEAD_MIDLINE_MM < 30 and "30 mm left or right" in str(test(eye))


def test_the_spine_fusion_keeps_no_cord_that_the_cord_tool_refuses(monkeypatch):
    """The spine fusion writes no cord the cord tool would refuse, with or without the spine model's labels (here
    labels without a canal, so the canal check has nothing to search and falls back on the first pass)."""
    from types import SimpleNamespace

    from neurospine.cord import segment as cord_segment
    from neurospine.spine import cordfusion

    vol, _ = phantom(with_tube=False)
    monkeypatch.setattr(cord_segment, "onnx_predictor", lambda session: bright_is_cord)
    card = SimpleNamespace(inputs={})
    plain, note = cordfusion.cord_mask(vol, card, None)
    assert not plain.any() and "not kept" in str(note) and "not a cord" in str(note)
    checked, note = cordfusion.cord_mask(vol, card, None, np.zeros(vol.shape, dtype=np.uint8))
    assert not checked.any() and "not kept" in str(note)
    long_vol, truth = phantom(with_tube=True)  # the tube is a cord: written, and no note
    kept, note = cordfusion.cord_mask(long_vol, card, None)
    assert note is None and (kept & truth).sum() > 0.8 * truth.sum()
