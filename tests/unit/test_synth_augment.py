"""Label-map augmentation of real SPINEPS/VerSe masks and images painted from labels."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.io import Volume, load_volume
from neurospine.synth.augment import AugmentConfig, augment_labelmap, augment_volumes, image_from_labels


def _ball_labels() -> Volume:
    aff = np.diag([1.0, 1.0, 2.0, 1.0])
    x, y, z = np.meshgrid(np.arange(40), np.arange(40), np.arange(20), indexing="ij")
    r = np.sqrt((x - 20) ** 2 + (y - 20) ** 2 + (2 * (z - 10)) ** 2)
    lab = np.where(r < 8, 49, np.where(r < 12, 100, 0)).astype(np.uint8)
    return Volume(lab, aff)


def test_identity_config_is_exact() -> None:
    vol = _ball_labels()
    cfg = AugmentConfig(max_rotation_deg=(0.0, 0.0, 0.0), scale=(1.0, 1.0), elastic_mm=0.0)
    out = augment_labelmap(vol, 5, cfg)
    assert np.array_equal(out.data, vol.data)
    assert out.same_grid(vol)


def test_augmentation_is_deterministic_label_preserving_and_changes_shape() -> None:
    vol = _ball_labels()
    a = augment_labelmap(vol, 1)
    b = augment_labelmap(vol, 1)
    c = augment_labelmap(vol, 2)
    assert np.array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    assert not np.array_equal(a.data, vol.data)
    assert set(np.unique(a.data).tolist()) <= {0, 49, 100}
    assert a.data.dtype == vol.data.dtype
    # volume changes stay within the scale range (0.85..1.15 per axis) plus elastic slack
    v0 = (vol.data == 49).sum()
    v1 = (a.data == 49).sum()
    assert 0.85**3 * 0.8 < v1 / v0 < 1.15**3 * 1.2


def test_same_transform_for_all_volumes_of_a_case() -> None:
    vol = _ball_labels()
    img = vol.with_data(vol.data.astype(np.float32) / 100.0)
    lab, im = augment_volumes([vol, img], 9, is_label=[True, False])
    assert im.data.dtype == np.float32
    # the warped image is brightest where the warped label says disc/corpus
    assert im.data[lab.data == 100].mean() > im.data[lab.data == 0].mean() + 0.5


@pytest.mark.shared
def test_real_spineps_maps_stay_consistent(shared_data) -> None:  # type: ignore[no-untyped-def]
    sem = load_volume(shared_data / "tptbox_samples" / "tpt-mri_subreg.nii.gz")
    ins = load_volume(shared_data / "tptbox_samples" / "tpt-mri_vert.nii.gz")
    a_sem, a_ins = augment_volumes([sem, ins], 4, is_label=[True, True])
    assert set(np.unique(a_sem.data).tolist()) <= set(np.unique(sem.data).tolist())
    assert set(np.unique(a_ins.data).tolist()) <= set(np.unique(ins.data).tolist())
    # discs in the semantic map are discs in the instance map (same transform)
    assert np.array_equal(a_sem.data == 100, (a_ins.data > 100) & (a_ins.data < 200))
    verse = load_volume(shared_data / "label_only_refs" / "verse004_vert.nii.gz")
    a_v = augment_labelmap(verse, 3)
    assert a_v.same_grid(verse)
    assert set(np.unique(a_v.data).tolist()) == set(np.unique(verse.data).tolist())


def test_image_from_labels_contrast() -> None:
    vol = _ball_labels()
    t2 = image_from_labels(vol, 0, "t2w")
    t1 = image_from_labels(vol, 0, "t1w")
    assert t2.same_grid(vol) and t2.data.dtype == np.float32
    # T2w: disc (nucleus) brighter than marrow; T1w: marrow brighter than disc
    assert t2.data[vol.data == 100].mean() > t2.data[vol.data == 49].mean()
    assert t1.data[vol.data == 49].mean() > t1.data[vol.data == 100].mean()
