"""Teacher targets on real MR (neurospine.spine.pseudo)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.spine import classes as C
from neurospine.spine import data as D
from neurospine.spine.pseudo import teacher_target
from neurospine.spine.train_batches import SampleMix, SynthPool


def _teacher() -> np.ndarray:
    cls = np.zeros((40, 60, 5), dtype=np.uint8)  # PIR
    cls[5:20, 5:20, :] = C.CORPUS
    cls[5:20, 22:26, :] = C.DISC
    cls[5:20, 28:45, :] = C.CORPUS
    cls[22:26, 5:50, :] = C.CANAL
    cls[30:36, 10:40, :] = C.SPINOUS
    return cls


def test_teacher_classes_are_kept_inside_and_posterior_elements_left_open() -> None:
    cls = _teacher()
    t = teacher_target(cls, (1.0, 1.0, 1.0))
    assert t[12, 12, 2] == C.CORPUS and t[12, 24, 2] == C.DISC and t[24, 20, 2] == C.CANAL
    assert t[2, 2, 2] == C.BG  # far background is taught
    assert (t[cls == C.SPINOUS] == D.IGNORE).all()  # posterior elements and their margin are not
    assert t[28, 20, 2] == D.IGNORE  # 2 mm in front of the spinous process
    assert t[38, 45, 2] == D.IGNORE and t[10, 47, 2] == C.BG  # behind the canal's front wall: not taught
    assert t[5, 12, 2] == D.IGNORE and t[12, 21, 2] == D.IGNORE  # class boundaries (in-plane band)


def test_manual_labels_win_over_the_teacher() -> None:
    cls = _teacher()
    manual = np.ones(cls.shape, dtype=np.uint8)  # group target: 1 = anything else
    manual[5:22, 5:20, :] = 0  # the manual body reaches 2 voxels further down than the teacher's
    manual[:, 28:45, :] = D.IGNORE  # the second body is not labelled
    manual[5:20, 30:40, :] = D.IGNORE
    t = teacher_target(cls, (1.0, 1.0, 1.0), manual, "body")
    assert (t[5:22, 5:20][manual[5:22, 5:20] == 0] == C.CORPUS).all()  # drawn voxels keep the manual label
    assert t[21, 12, 2] == C.CORPUS  # where the teacher had disc/canal
    assert t[12, 35, 2] == C.CORPUS  # unlabelled body: the teacher's
    manual2 = np.ones(cls.shape, dtype=np.uint8)  # the manual map says no body at all
    t2 = teacher_target(cls, (1.0, 1.0, 1.0), manual2, "body")
    assert (t2[cls == C.CORPUS] == D.IGNORE).all()


def test_sample_mix_draws_teacher_cases_at_their_share() -> None:
    real = D.TrainCase("r", "body", np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8), (1.0, 1.0, 1.0))
    teach = D.TrainCase("t", "full", np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8), (1.0, 1.0, 1.0))
    mix = SampleMix([real], {"vb3": [real], "vb2": [real], "ivd": [real]}, SynthPool(0, 0, ()), 0.0)
    mix.teacher, mix.teacher_fraction = [teach], 0.3
    rng = np.random.default_rng(0)
    share = np.mean([mix.pick(rng).name == "t" for _ in range(4000)])
    assert 0.27 < share < 0.33
    vb3 = [D.TrainCase(f"vb3-{i}-teacher", "full", teach.image, teach.target, teach.spacing_mm) for i in range(20)]
    mix.teacher = [*vb3, D.TrainCase("vb2-1-teacher", "full", teach.image, teach.target, teach.spacing_mm)]
    mix.teacher_fraction = 1.0
    vb2_share = np.mean([mix.pick(rng).name.startswith("vb2") for _ in range(2000)])
    assert 0.4 < vb2_share < 0.6  # drawn by set, not by image


def test_a_map_without_posterior_elements_leaves_only_the_boundary_band_open() -> None:
    cls = _teacher()
    cls[cls == C.SPINOUS] = C.BG
    t = teacher_target(cls, (1.0, 1.0, 1.0))
    assert t[0, 0, 0] == C.BG and t[0, -1, -1] == C.BG  # no edge-of-array margin in front of the canal
    assert (t[:22] == D.IGNORE).mean() < 0.35  # in front of the canal only the boundary band is left open


def test_keep_posterior_teaches_the_teachers_posterior_elements_but_never_background_behind_the_canal() -> None:
    cls = _teacher()
    t = teacher_target(cls, (1.0, 1.0, 1.0), keep_posterior=True)
    core = np.zeros(cls.shape, dtype=bool)
    core[31:35, 11:39, :] = True  # the spinous process off its boundary band
    assert (t[core] == C.SPINOUS).all()
    assert t[38, 45, 2] == D.IGNORE  # background behind the canal's front wall is still not taught
    front = cls.copy()
    front[8:12, 50:56, :] = C.ARCUS  # a posterior element in front of the canal's front wall (row 22)
    t2 = teacher_target(front, (1.0, 1.0, 1.0), keep_posterior=True)
    assert t2[10, 53, 2] == C.ARCUS  # taught
    assert t2[6, 53, 2] == D.IGNORE and t2[3, 53, 2] == C.BG  # its 3 mm margin open, farther background taught
    assert t[12, 12, 2] == C.CORPUS and t[24, 20, 2] == C.CANAL


def test_teacher_images_get_the_mix_chance_of_keeping_their_contrast(monkeypatch: pytest.MonkeyPatch) -> None:
    from neurospine.spine import train_batches as T

    seen: list[float | None] = []

    def record(x: np.ndarray, rng: np.random.Generator, kind: str, p_keep: float | None = None) -> np.ndarray:
        seen.append(p_keep)
        return x

    monkeypatch.setattr(T, "augment_intensity", record)
    img = np.full((6, 40, 40), 100, dtype=np.uint8)
    teach = D.TrainCase(f"vb3-1{D.TEACHER_SUFFIX}", "full", img, np.zeros_like(img), (1.0, 1.0, 1.0))
    real = D.TrainCase("vb3-2", "body", img, np.zeros_like(img), (1.0, 1.0, 1.0))
    mix = SampleMix([real], {"vb3": [real], "vb2": [real], "ivd": [real]}, SynthPool(0, 0, ()), 0.0)
    mix.teacher, mix.teacher_fraction, mix.teacher_keep_contrast = [teach], 0.5, 0.2
    T.draw_batch(np.random.default_rng(2), mix, 40, 32)
    assert set(seen) == {0.2, None}  # teacher images: the mix's chance; real partial-label ones: the default
