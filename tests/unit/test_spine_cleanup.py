"""Anatomy clean-up (``spine.cleanup``) on hand-made class-map phantoms (PIR, 1 mm)."""

from __future__ import annotations

import numpy as np

from neurospine.spine import classes as C
from neurospine.spine.cleanup import (
    SACRUM_LENGTH_MM,
    clean_anatomy,
    constrain_sacrum,
    drop_unassigned,
    keep_column,
)
from neurospine.spine.instances import build_instances
from tests.unit.test_spine_instances import column_map

SP = (1.0, 1.0, 1.0)


def _padded(n: int = 4, sacrum_mm: int = 40) -> np.ndarray:
    """``column_map`` with room in front of the column (P grows posteriorly) and below it, and a sacrum
    ``sacrum_mm`` long whose front recedes posteriorly (0.6 mm per mm down) as a real sacrum's does."""
    base = column_map(n)
    out = np.zeros((base.shape[0] + 140, base.shape[1] + 140, base.shape[2]), dtype=np.uint8)
    out[60 : 60 + base.shape[0], : base.shape[1]] = base
    sac = out == C.SACRUM
    top = int(np.nonzero(sac.any(axis=(0, 2)))[0].min())
    out[sac] = 0
    for j in range(sacrum_mm):
        front = 80 + round(0.6 * j)
        out[front : front + 40, top + j, 3:37] = C.SACRUM
    return out


def _sacrum_back(row: int, top: int) -> int:
    return 120 + round(0.6 * (row - top))


def test_clean_column_is_left_alone():
    cls = _padded()
    out, rep = clean_anatomy(cls, SP)
    assert np.array_equal(out, cls)
    assert rep.total_voxels == 0 and rep.as_dict()["removed_mm3_total"] == 0.0


def test_border_band_without_bodies_is_removed_and_counted():
    cls = _padded()
    cls[0:6, 10:150, 5:35] = C.ARCUS  # a band along the anterior image border, as on vb2-02
    cls[6:10, 10:150, 5:35] = C.CANAL
    band_arcus, band_canal = 6 * 140 * 30, 4 * 140 * 30
    out, rep = clean_anatomy(cls, SP)
    assert not out[0:10].any()
    assert np.array_equal(out[10:], cls[10:])  # nothing else touched
    assert rep.removed_voxels == {"arcus": band_arcus, "canal": band_canal}
    assert rep.as_dict()["removed_mm3_total"] == float(band_arcus + band_canal)


def test_second_column_piece_is_kept_only_in_the_corridor():
    cls = _padded()
    piece = np.zeros_like(cls)
    piece[80:110, 200:224, 5:35] = C.CORPUS  # a separate body-bearing piece in line with the column
    kept = keep_column(np.maximum(cls, piece), SP)
    assert (kept[80:110, 200:224, 5:35] == C.CORPUS).all()
    blob = np.zeros_like(cls)
    blob[2:30, 60:90, 5:35] = C.CORPUS  # a body-sized blob 50+ mm in front of the column (bowel, vessels)
    out = keep_column(np.maximum(cls, blob), SP)
    assert not out[2:30, 60:90].any()


def test_sacrum_spill_is_removed_and_the_sacrum_kept():
    long_mm = int(SACRUM_LENGTH_MM) + 15
    cls = _padded(sacrum_mm=long_mm)  # longer than a sacrum can be
    top = int(np.nonzero((cls == C.SACRUM).any(axis=(0, 2)))[0].min())
    true_sacrum = cls == C.SACRUM
    spill = np.zeros_like(true_sacrum)
    spill[40:64, top + 20 : top + 60, 10:30] = True  # pelvic tissue well in front of the sacrum
    dots = np.zeros_like(true_sacrum)
    for row in range(top + 30, top + 60, 4):  # scattered specks behind the sacrum
        back = _sacrum_back(row, top) + 4
        dots[back : back + 2, row, 12:30:4] = True
    above = np.zeros_like(true_sacrum)
    above[84:100, 30:40, 10:30] = True  # "sacrum" inside the top body
    for m in (spill, dots, above):
        cls[m] = C.SACRUM
    out = constrain_sacrum(cls, SP)
    kept = true_sacrum.copy()
    kept[:, top + int(SACRUM_LENGTH_MM) + 1 :] = False
    assert (out[kept] == C.SACRUM).all()
    assert not (out[:, top + int(SACRUM_LENGTH_MM) + 1 :] == C.SACRUM).any()
    for m in (spill, dots, above):
        assert not (out[m] == C.SACRUM).any()


def test_sacrum_detached_from_the_column_is_removed():
    cls = _padded()
    sac = cls == C.SACRUM
    cls[sac] = 0
    shifted = np.zeros_like(sac)
    shifted[:, 30:] = sac[:, :-30]  # 30 mm lower: a gap of 30 mm under the last disc
    cls[shifted] = C.SACRUM
    out = constrain_sacrum(cls, SP)
    assert not (out == C.SACRUM).any()
    cls[shifted] = 0
    cls[sac] = C.SACRUM
    assert (constrain_sacrum(cls, SP)[sac] == C.SACRUM).all()


def test_nothing_to_anchor_on_leaves_the_map():
    cls = np.zeros((60, 80, 30), dtype=np.uint8)
    cls[10:20, 10:70, 10:20] = C.ARCUS  # posterior elements only
    cls[30:40, 50:70, 10:20] = C.SACRUM
    out, rep = clean_anatomy(cls, SP)
    assert np.array_equal(out, cls) and rep.total_voxels == 0


def test_detached_posterior_piece_is_not_absorbed_by_a_vertebra():
    cls = _padded()
    far = np.zeros(cls.shape, dtype=bool)
    far[158:166, 40:60, 10:30] = True  # 14 mm behind the spinous processes, no bone path to a body
    near = np.zeros(cls.shape, dtype=bool)
    near[74:78, 22:30, 5:8] = True  # a piece 2 mm in front of a body's anterior wall
    cls[far] = C.ARCUS
    cls[near] = C.SUP_ART
    res = build_instances(cls, SP)
    assert (res.instances[far] == 0).all()  # left unassigned
    assert (res.instances[near] > 0).all()  # close enough: joins the nearest vertebra
    old = build_instances(cls, SP, posterior_jump_mm=float("inf"))
    assert (old.instances[far] > 0).all()  # the previous rule glued it to the nearest body
    before = cls.copy()
    drop_unassigned(cls, res.instances)
    assert not cls[far].any() and (cls[near] == C.SUP_ART).all()
    assert np.array_equal(cls[~far], before[~far])


def test_pipeline_removes_a_detached_blob_and_reports_it(tmp_path, monkeypatch):
    """End to end with the tiny threshold model: a sacrum-bright blob in front of the sacrum (pelvic spill) is
    unlabelled, counted in the centroid JSON and the result, and the column is named as before."""
    import json

    from neurospine.io import Volume, reorient, save_volume
    from neurospine.spine.api import output_paths, run_file
    from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model

    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    pir = lumbar_phantom("PIR")
    data = np.asarray(pir.data).copy()
    rows = np.nonzero((data >= 0.95).any(axis=(0, 2)))[0]
    blob = (slice(2, 16), slice(int(rows.min()) + 5, int(rows.min()) + 40), slice(1, 11))
    data[blob] = 1.0  # 12 mm in front of the sacrum, bigger than the specks semantic.clean_classes drops
    vol, _ = reorient(Volume(data, pir.affine), "RAS")
    img = tmp_path / "sub-01_T2w.nii.gz"
    save_volume(vol, img)
    result = run_file(img, tmp_path / "out", threads=1, snapshot=False)
    removed = result.extra["cleanup"]["removed_voxels_model_grid"]
    assert removed.get("sacrum", 0) >= 14 * 35 * 10 * 0.5 and result.measures["cleanup_removed_mm3"] > 0
    paths = output_paths(img, tmp_path / "out")
    assert json.loads(paths["centroids"].read_text())[0]["info"]["cleanup"] == result.extra["cleanup"]
    sem_pir, _ = reorient(
        Volume(np.asarray(__import__("nibabel").load(str(paths["semantic"])).dataobj), vol.affine), "PIR"
    )
    assert not np.asarray(sem_pir.data)[blob].any()
    assert result.measures["naming_anchor"] == "S1" and result.measures["levels"] == "L1 L2 L3 L4 L5 S1"


def test_stray_discs_and_posterior_elements_below_the_column_are_removed():
    from neurospine.spine.cleanup import POSTERIOR_BELOW_LOWEST_MM, constrain_discs, lowest_body

    cls = _padded()
    low = lowest_body(cls, SP)
    assert low is not None
    bottom = int(np.percentile(np.nonzero(low)[1], 98))
    discs_before = int((cls == C.DISC).sum())
    cls[150:156, 20:26, 18:22] = C.DISC  # a "disc" speck far behind the column, touching no bone
    cut = bottom + int(POSTERIOR_BELOW_LOWEST_MM) + 5
    cls[140:146, cut : cut + 6, 18:22] = C.ARCUS  # an "arch" deep in the pelvis, below the lowest body
    cls[140:146, bottom + 5 : bottom + 11, 18:22] = C.ARCUS  # the lowest vertebra's own arch: stays
    out = constrain_discs(cls, SP)
    assert int((out == C.DISC).sum()) == discs_before  # the real discs all touch bodies
    assert not out[150:156, 20:26, 18:22].any() and not out[140:146, cut : cut + 6, 18:22].any()
    assert (out[140:146, bottom + 5 : bottom + 11, 18:22] == C.ARCUS).all()


def _pelvic_blob(cls: np.ndarray, below_mm: int, cls_id: int) -> tuple[np.ndarray, int]:
    """A 10 x 14 x 14 mm blob of ``cls_id`` ``below_mm`` under the sacrum's top, 6 mm in front of the sacrum's
    receding front (the rectum), detached from it; returns the blob's mask and the sacrum's top row."""
    top = int(np.nonzero((cls == C.SACRUM).any(axis=(0, 2)))[0].min())
    row = top + below_mm
    front = 80 + round(0.6 * below_mm)
    blob = np.zeros(cls.shape, dtype=bool)
    blob[front - 16 : front - 6, row : row + 14, 13:27] = True
    cls[blob] = cls_id
    return blob, top


def test_sacrum_blob_held_only_by_a_stray_disc_far_below_is_removed():
    from unittest import mock

    from neurospine.spine import cleanup

    cls = _padded(sacrum_mm=90)
    blob, _ = _pelvic_blob(cls, 60, C.SACRUM)
    speck = np.zeros(cls.shape, dtype=bool)
    ps, ys = np.nonzero(blob.any(axis=2))
    speck[int(ps.min()) - 5 : int(ps.min()) - 2, int(ys.min()) + 4 : int(ys.min()) + 8, 18:22] = True  # "disc" speck
    cls[speck] = C.DISC
    true_sacrum = (cls == C.SACRUM) & ~blob
    out = constrain_sacrum(cls, SP)
    assert not (out[blob] == C.SACRUM).any()
    assert (out[true_sacrum] == C.SACRUM).all()
    with mock.patch.object(cleanup, "SACRUM_CONTACT_BELOW_MM", float("inf")):  # any disc voxel counted before
        assert (constrain_sacrum(cls, SP)[blob] == C.SACRUM).all()


def test_no_vertebra_below_the_sacrum_top():
    from neurospine.spine.cleanup import drop_bodies_below

    cls = _padded(sacrum_mm=90)
    rectum, _ = _pelvic_blob(cls, 50, C.CORPUS)  # a "corpus" blob in the rectum
    top = int(np.nonzero((cls == C.SACRUM).any(axis=(0, 2)))[0].min())
    sacral_body = np.zeros(cls.shape, dtype=bool)
    sacral_body[112:124, top + 40 : top + 50, 12:28] = True  # inside the sacrum: a sacral body called corpus
    cls[sacral_body] = C.CORPUS
    lumbar = (cls == C.CORPUS) & ~rectum & ~sacral_body
    assert len(build_instances(cls, SP).vertebrae) > 4  # before: the pelvic pieces become vertebrae
    out = drop_bodies_below(cls, SP)
    assert not out[rectum].any()
    assert (out[sacral_body] == C.SACRUM).all()
    assert (out[lumbar] == C.CORPUS).all()
    res = build_instances(out, SP)
    assert len(res.vertebrae) == 4 and res.sacrum_voxels > 0
    cleaned, rep = clean_anatomy(cls, SP)
    assert not cleaned[rectum].any() and rep.removed_voxels.get("corpus", 0) == int(rectum.sum())


def test_pelvic_blob_hanging_on_the_sacrum_by_a_neck_is_removed():
    from unittest import mock

    from neurospine.spine import cleanup

    cls = _padded(sacrum_mm=90)
    true_sacrum = cls == C.SACRUM
    top = int(np.nonzero(true_sacrum.any(axis=(0, 2)))[0].min())
    row = top + 60
    front = 80 + round(0.6 * 60)  # the sacrum's front at that row
    blob = np.zeros(cls.shape, dtype=bool)
    blob[front - 20 : front - 6, row : row + 14, 13:27] = True  # 14 mm thick, 6 mm in front of the sacrum
    neck = np.zeros(cls.shape, dtype=bool)
    neck[front - 6 : front + 10, row + 5 : row + 10, 18:23] = True  # 5 x 5 mm: survives a 2 mm opening, not 3 mm
    cls[blob | neck] = C.SACRUM
    out = constrain_sacrum(cls, SP)
    assert not (out[blob] == C.SACRUM).any()
    assert (out[true_sacrum] == C.SACRUM).all()
    with mock.patch.object(cleanup, "SACRUM_NECK_MM", 0.0):  # A: the 2 mm opening keeps the neck and the blob
        kept = constrain_sacrum(cls, SP)[blob] == C.SACRUM
    assert kept.mean() > 0.9  # (the anterior limit trims its lowest front corner)


def test_a_body_sized_blob_far_below_the_column_is_not_the_lowest_body():
    from unittest import mock

    from neurospine.spine import cleanup
    from neurospine.spine.cleanup import lowest_body

    cls = _padded(sacrum_mm=90)
    true_low = lowest_body(cls, SP)
    assert true_low is not None
    bottom = int(np.nonzero(true_low.any(axis=(0, 2)))[0].max())
    blob = np.zeros(cls.shape, dtype=bool)
    blob[62:76, bottom + 50 : bottom + 90, 12:28] = True  # 9 cm3 (0.4 of a body), 50 mm under it, in the rectum
    cls[blob & (cls == 0)] = C.CORPUS
    low = lowest_body(cls, SP)
    assert low is not None and np.array_equal(low, true_low)
    with mock.patch.object(cleanup, "COLUMN_GAP_MM", float("inf")):  # before: the blob was the lowest body
        assert (lowest_body(cls, SP) & blob).any()
    out, _ = clean_anatomy(cls, SP)
    assert not (out[blob] == C.CORPUS).any() and len(build_instances(out, SP).vertebrae) == 4


def test_a_missed_body_does_not_cut_off_the_column_below_it():
    from neurospine.spine.cleanup import lowest_body

    cls = _padded(n=6, sacrum_mm=60)
    body4 = np.zeros(cls.shape, dtype=bool)
    body4[:, 20 + 3 * 32 : 20 + 3 * 32 + 24] = True  # the 4th body's rows (24 mm tall, 8 mm discs)
    cls[body4 & (cls == C.CORPUS)] = 0  # the network missed it: a 40 mm gap between bodies 3 and 5
    full = _padded(n=6, sacrum_mm=60)
    assert np.array_equal(lowest_body(cls, SP), lowest_body(full, SP))  # still the 6th body
    out, _ = clean_anatomy(cls, SP)
    assert int((out == C.CORPUS).sum()) == int((cls == C.CORPUS).sum())
    assert int((out == C.SACRUM).sum()) == int((cls == C.SACRUM).sum())
    assert len(build_instances(out, SP).vertebrae) == 5
