"""The cord must lie in the spinal canal: re-detection in the spine model's canal when the cord landed in bone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from neurospine.cord import api as cord_api
from neurospine.cord.crop import detection_from_canal
from neurospine.cord.incanal import MAX_BONE_SHARE, bone_share, ensure_in_canal
from neurospine.cord.segment import SegmentOptions, segment_volume
from neurospine.cord.spinelevels import LevelEstimate, SpineReading
from neurospine.errors import InputError, NoStructureFoundError
from neurospine.io import Volume, save_volume
from tests.conftest import make_affine
from tests.unit.test_cord_pipeline import threshold_predictor

SHAPE = (60, 90, 30)  # RAS, 1 mm: x (right-left), y (anterior), z (superior)
CORD_XY, CORD_R = (30, 25), 4.0
DECOY_XY, DECOY_R = (30, 65), 6.0  # heavier than the cord, 40 mm in front of it: "inside a vertebral body"


def _disk(xy: tuple[int, int], r: float) -> np.ndarray:
    x, y = np.ogrid[: SHAPE[0], : SHAPE[1]]
    return np.repeat(((x - xy[0]) ** 2 + (y - xy[1]) ** 2 <= r * r)[:, :, None], SHAPE[2], axis=2)


def _scene(seed: int = 0) -> tuple[Volume, np.ndarray, np.ndarray]:
    """Image with a bright cord and a brighter, larger decoy; the spine labels (canal 61 round the cord, corpus 49
    round the decoy); the true cord."""
    cord, decoy = _disk(CORD_XY, CORD_R), _disk(DECOY_XY, DECOY_R)
    rng = np.random.default_rng(seed)
    img = 100.0 * (cord | decoy) + rng.normal(20.0, 3.0, SHAPE)
    semantic = np.zeros(SHAPE, dtype=np.uint8)
    semantic[_disk(CORD_XY, 8.0)] = 61
    semantic[_disk(DECOY_XY, 12.0)] = 49
    return Volume(img.astype(np.float32), make_affine((1.0, 1.0, 1.0), "RAS"), "scene.nii.gz"), semantic, cord


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_detection_from_canal_interpolates_and_holds_the_ends():
    canal = np.zeros((20, 20, 10), dtype=bool)
    canal[4:7, 4:7, 2] = True  # centre (5, 5)
    canal[10:13, 8:11, 6] = True  # centre (11, 9)
    det = detection_from_canal(canal)
    assert det.found.tolist() == [k in (2, 6) for k in range(10)]
    assert np.allclose(det.centres_px[0], (5, 5)) and np.allclose(det.centres_px[9], (11, 9))
    assert np.allclose(det.centres_px[4], (8, 7))  # halfway between the two slices


def test_bone_share_counts_bone_and_disc_only():
    cord = np.zeros((4, 4, 1), dtype=np.uint8)
    cord[:2] = 1  # 8 voxels
    sem = np.zeros((4, 4, 1), dtype=np.uint8)
    sem[0, :2] = 49  # 2 in the body
    sem[1, :1] = 100  # 1 in a disc
    sem[1, 1:] = 61  # canal does not count
    assert bone_share(cord, sem) == pytest.approx(3 / 8)
    assert bone_share(np.zeros_like(cord), sem) == 0.0


def test_a_cord_found_in_bone_is_redetected_in_the_canal():
    vol, semantic, truth = _scene()
    opt = SegmentOptions()
    first = segment_volume(vol, threshold_predictor, opt)
    assert bone_share(first.cord_mask, semantic) >= MAX_BONE_SHARE  # the decoy wins the coarse detection
    check = ensure_in_canal(vol, threshold_predictor, opt, first, semantic)
    assert check.fired and check.redetected and check.segmentation is not None
    assert check.share_after == 0.0
    assert _dice(np.asarray(check.segmentation.cord_mask) > 0, truth) > 0.85
    assert check.segmentation.extra["canal_guided"]
    assert "re-detected in the spine model's canal" in str(check.warning())


def test_a_cord_in_the_canal_is_kept_as_it_is():
    vol, semantic, _ = _scene()
    vol = vol.with_data(np.where(_disk(DECOY_XY, DECOY_R), 20.0, np.asarray(vol.data)).astype(np.float32))
    seg = segment_volume(vol, threshold_predictor, SegmentOptions())
    check = ensure_in_canal(vol, threshold_predictor, SegmentOptions(), seg, semantic)
    assert check.segmentation is seg and not check.fired and not check.redetected and check.warning() is None


def test_no_canal_or_a_second_cord_in_bone_leaves_no_cord():
    vol, semantic, _ = _scene()
    seg = segment_volume(vol, threshold_predictor, SegmentOptions())
    no_canal = np.where(semantic == 61, 0, semantic).astype(np.uint8)
    check = ensure_in_canal(vol, threshold_predictor, SegmentOptions(), seg, no_canal)
    assert check.segmentation is None and not check.redetected
    assert "found no canal to search again: no cord kept" in str(check.warning())
    # the spine model calls the real cord's surroundings bone too: the second cord is no better
    all_bone = np.where(semantic > 0, 49, 0).astype(np.uint8)
    all_bone[_disk(CORD_XY, 1.0)] = 61  # a canal thread to centre on
    check = ensure_in_canal(vol, threshold_predictor, SegmentOptions(), seg, all_bone)
    assert check.segmentation is None and check.redetected
    assert "sought again in the spine model's canal it was still misplaced" in str(check.warning())


def _fake_reading(semantic: np.ndarray):
    def read(image, *, threads=2):
        no_bone = np.zeros((2, 2, 2), dtype=np.uint8)  # model-grid classes: no bone, so no CT evidence either way
        return SpineReading(SimpleNamespace(semantic_input=semantic, classes=no_bone))

    return read


def _run_on_scene(tmp_path, monkeypatch, predictor):
    """``run_file`` on the scene with the spine model's reading faked; the result, its cord mask, the truth and
    the image path."""
    from neurospine.io import load_volume

    vol, semantic, truth = _scene()
    path = save_volume(vol, tmp_path / "scene.nii.gz")
    monkeypatch.setattr(cord_api, "read_spine", _fake_reading(semantic))
    monkeypatch.setattr(cord_api, "estimate_levels", lambda *a, **k: LevelEstimate(None, "none"))
    res = cord_api.run_file(path, tmp_path / "out", predictor=predictor)
    return res, load_volume(res.outputs["cord_mask"], check_intensity=False).data > 0, truth, path


def test_run_file_redetects_and_says_so(tmp_path, monkeypatch):
    res, mask, truth, _ = _run_on_scene(tmp_path, monkeypatch, threshold_predictor)
    assert _dice(mask, truth) > 0.85
    assert res.extra["cord_in_bone"]["redetected_in_canal"] is True
    assert any("re-detected in the spine model's canal" in w for w in res.warnings)


def test_run_file_refuses_a_cord_left_in_bone_and_writes_no_mask(tmp_path, monkeypatch):
    vol, semantic, _ = _scene()
    path = save_volume(vol, tmp_path / "scene.nii.gz")
    monkeypatch.setattr(cord_api, "read_spine", _fake_reading(np.where(semantic == 61, 0, semantic)))
    with pytest.raises(NoStructureFoundError, match=r"no spinal cord kept.*found no canal to search again"):
        cord_api.run_file(path, tmp_path / "out", predictor=threshold_predictor)
    assert [f.name for f in (tmp_path / "out").iterdir()] == ["scene_qc-cord.png"]  # the QC image only


@pytest.mark.parametrize("axcodes", ["RAS", "PIR", "LPS"])
def test_spine_fusion_redetects_the_cord_in_the_network_canal(monkeypatch, axcodes):
    from neurospine.cord import segment as cord_segment
    from neurospine.io import reorient
    from neurospine.spine import cordfusion

    vol, semantic, truth = _scene()
    if axcodes != "RAS":  # the same scene stored in another voxel order: the guide must follow the affine
        ras = make_affine((1.0, 1.0, 1.0), "RAS")
        vol = reorient(vol, axcodes)[0]
        semantic = np.asarray(reorient(Volume(semantic, ras), axcodes)[0].data)
        truth = np.asarray(reorient(Volume(truth.astype(np.uint8), ras), axcodes)[0].data) > 0
    monkeypatch.setattr(cord_segment, "onnx_predictor", lambda session: threshold_predictor)
    card = SimpleNamespace(inputs={})
    box = tuple(slice(2, n - 3) for n in vol.shape)  # a search box inside the image
    sub = cordfusion.sub_volume(vol, box)
    plain, note = cordfusion.cord_mask(sub, card, None)
    assert note is None and bone_share(plain, semantic[box]) >= MAX_BONE_SHARE
    checked, note = cordfusion.cord_mask(sub, card, None, semantic[box])
    assert bone_share(checked, semantic[box]) == 0.0 and _dice(checked, truth[box]) > 0.85
    assert "re-detected in the spine model's canal" in str(note)
    no_canal = np.where(semantic == 61, 0, semantic).astype(np.uint8)
    dropped, note = cordfusion.cord_mask(sub, card, None, no_canal[box])
    assert not dropped.any() and "no cord kept" in str(note)


def whole_slice_blind_predictor(batch: np.ndarray) -> np.ndarray:
    """A network that finds nothing on whole slices (the coarse pass) and the cord in 36 mm windows."""
    if max(batch.shape[-2:]) > 80:
        return np.zeros((batch.shape[0], 2, *batch.shape[-2:]), dtype=np.float32)
    return threshold_predictor(batch)


def test_a_cord_the_first_pass_missed_is_sought_in_the_canal():
    vol, semantic, truth = _scene()
    opt = SegmentOptions()
    first = segment_volume(vol, whole_slice_blind_predictor, opt)
    assert first.empty
    check = ensure_in_canal(vol, whole_slice_blind_predictor, opt, first, semantic)
    assert check.missing and check.recovered and check.segmentation is not None
    assert _dice(np.asarray(check.segmentation.cord_mask) > 0, truth) > 0.85
    assert "found no cord" in str(check.warning())
    # no canal to search: the empty first pass stands and the caller reports no cord, as before
    no_canal = np.where(semantic == 61, 0, semantic).astype(np.uint8)
    check = ensure_in_canal(vol, whole_slice_blind_predictor, opt, first, no_canal)
    assert check.segmentation is first and not check.recovered and check.warning() is None


def test_run_file_finds_a_missed_cord_in_the_canal(tmp_path, monkeypatch):
    res, mask, truth, path = _run_on_scene(tmp_path, monkeypatch, whole_slice_blind_predictor)
    assert _dice(mask, truth) > 0.85
    assert res.extra["cord_in_bone"]["first_pass_empty"] is True
    assert any("found no cord" in w for w in res.warnings)
    with pytest.raises(NoStructureFoundError, match="cord volume 0 mm3"):
        cord_api.run_file(path, tmp_path / "out2", predictor=whole_slice_blind_predictor, canal_check=False)


def test_a_cord_outside_the_canal_is_sought_in_it():
    vol, semantic, truth = _scene()
    background = np.where(semantic == 49, 0, semantic).astype(np.uint8)  # the decoy sits in unlabelled tissue
    first = segment_volume(vol, threshold_predictor, SegmentOptions())
    check = ensure_in_canal(vol, threshold_predictor, SegmentOptions(), first, background)
    assert check.outside and check.second_kept and check.segmentation is not None
    assert _dice(np.asarray(check.segmentation.cord_mask) > 0, truth) > 0.85
    assert check.share_in_canal == 1.0 and "found again in windows centred on the canal" in str(check.warning())


def test_a_cord_beside_a_partial_canal_is_kept():
    """The network found the canal on a few slices only: the second cord is no more in the canal, the first stays."""
    vol, semantic, _ = _scene()
    vol = vol.with_data(np.where(_disk(DECOY_XY, DECOY_R), 20.0, np.asarray(vol.data)).astype(np.float32))
    partial = semantic.copy()
    partial[:, :, 8:] = np.where(partial[:, :, 8:] == 61, 0, partial[:, :, 8:])
    first = segment_volume(vol, threshold_predictor, SegmentOptions())
    check = ensure_in_canal(vol, threshold_predictor, SegmentOptions(), first, partial)
    assert check.outside and check.redetected and not check.second_kept
    assert check.segmentation is first and check.warning() is None


def test_run_file_refuses_a_ct_like_spine_reading_before_writing(tmp_path, monkeypatch):
    """Bones the brightest tissue in the spine reading (CT without HU): exit-2 refusal with nothing in the output
    folder; with force the run goes on, marked forced (docs/decisions/cord-ct-refusal-bone.md)."""
    from neurospine.plausibility import spine as psp

    vol, semantic, _ = _scene()
    path = save_volume(vol, tmp_path / "scene.nii.gz")
    monkeypatch.setattr(cord_api, "read_spine", _fake_reading(semantic))
    monkeypatch.setattr(cord_api, "estimate_levels", lambda *a, **k: LevelEstimate(None, "none"))
    monkeypatch.setattr(psp, "bright_bone_lift", lambda seg: psp.BRIGHT_BONE_LIFT)

    def never_called(*args, **kwargs):
        raise AssertionError("the cord model ran on an image the spine reading had already refused")

    with pytest.raises(InputError, match=r"CT without Hounsfield units \(the bones are the brightest tissue"):
        cord_api.run_file(path, tmp_path / "out", predictor=never_called)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    res = cord_api.run_file(path, tmp_path / "forced", predictor=threshold_predictor, force=True)
    assert str(res.measures["plausibility"]).startswith("forced: the bones are the brightest tissue")
    monkeypatch.setattr(psp, "bright_bone_lift", lambda seg: psp.BRIGHT_BONE_LIFT - 0.01)
    res = cord_api.run_file(path, tmp_path / "below", predictor=threshold_predictor)
    assert res.measures["plausibility"] == "ok"
