"""On a head MRI the spine model's level names count only when counted down from C2 or all cervical
(docs/decisions/cord-head-levels.md, amendments 1 and 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from benchmarks.cord_head import level_names

from neurospine.cord import api
from neurospine.cord.spinelevels import LevelEstimate
from neurospine.io import Volume
from tests.conftest import make_affine


def _estimate(anchor: str, *level_ids: int) -> LevelEstimate:
    mask = np.zeros((4, 4, 6), dtype=np.int16)
    for k, level_id in enumerate(level_ids):
        mask[:, :, k] = level_id
    return LevelEstimate(mask, "estimated", anchor, 0.3, warnings=["estimated"], models={"spine": "x"})


def _levels(monkeypatch, est: LevelEstimate, head: bool, fallback: LevelEstimate | None = None):
    image = Volume(np.zeros((4, 4, 6), dtype=np.float32), make_affine((1.0, 1.0, 1.0), "RAS"), "head.nii.gz")
    monkeypatch.setattr(api, "estimate_levels", lambda *a, **k: est)
    monkeypatch.setattr(api, "_disc_fallback", lambda image, soft, e: e if fallback is None else fallback)
    return api._levels(image, np.zeros((4, 4, 6), dtype=np.float32), None, True, 2, None, head=head)


@pytest.mark.parametrize(
    ("anchor", "level_ids", "head", "kept"),
    [
        ("positional", (23, 24), True, False),  # L4 L5 on a head MRI
        ("positional", (23, 24), False, True),  # not a head MRI: untouched
        ("positional", (3, 4), True, True),  # a positional naming that stays cervical (top-C2) is kept
        ("positional", (7, 8), True, False),  # C7 T1 without counting from C2
        ("positional", (28,), True, False),  # T13
        ("C2", (7, 8, 9), True, True),  # counted down from C2: a head-and-neck field may reach T1-T2
        ("S1+C2", (7,), True, True),
    ],
)
def test_which_namings_name_a_head_mri(monkeypatch, anchor, level_ids, head, kept):
    used, est = _levels(monkeypatch, _estimate(anchor, *level_ids), head)
    assert (used is not None) is kept
    if not kept:
        assert est.source == "none" and est.models == {"spine": "x"}
        assert "cervical vertebrae only" in est.warnings[0] and f"(naming {anchor}" in est.warnings[0]


def test_the_disc_fallback_says_which_names_it_replaced(monkeypatch):
    mask = np.zeros((4, 4, 6), dtype=np.int16)
    mask[:, :, :3] = 3
    discs = LevelEstimate(mask, "estimated", "positional", 0.2, warnings=["named from discs"], from_discs=True)
    used, est = _levels(monkeypatch, _estimate("positional", 21, 22), True, fallback=discs)
    assert used is not None and est.from_discs
    assert "named L2 L3 without counting down from C2" in est.warnings[0] and est.warnings[1] == "named from discs"
    assert len(est.warnings) == 2


def test_benchmark_level_names_flag_anything_outside_c1_c7(tmp_path):
    csv_path = Path(tmp_path) / "x_csa.csv"
    csv_path.write_text("slice,level\n0,C3\n1,\n2,C2\n", encoding="utf-8")
    assert level_names(csv_path) == {"levels": "C2 C3", "slices_named": 2, "non_cervical_names": False}
    csv_path.write_text("slice,level\n0,C7\n1,T1\n2,Cocc\n", encoding="utf-8")
    assert level_names(csv_path)["non_cervical_names"] is True


@pytest.mark.parametrize("head", [True, False])
def test_run_file_passes_the_head_evidence_to_the_levels_and_the_fade_flag(tmp_path, monkeypatch, head):
    """A cord that runs off the field's bottom: flagged near_lost_end only on a head MRI, and the level estimate
    is told whether a head is in view."""
    from dataclasses import replace

    from neurospine.io import save_volume
    from neurospine.plausibility import common
    from tests.unit.test_cord_min_length import bright_is_cord

    real = common.evidence

    def evidence(image):  # the phantom's evidence, with or without a head in view
        ev = real(image)
        return replace(ev, top_air_mm=50.0, head_width_mm=150.0, head_length_mm=190.0) if head else ev

    seen: dict[str, bool] = {}

    def levels(image, soft, level_vol, auto, threads, reading=None, *, head=False):
        seen["head"] = head
        return None, LevelEstimate(None, "none")

    monkeypatch.setattr(common, "evidence", evidence)
    monkeypatch.setattr(api, "_levels", levels)
    img = np.zeros((64, 64, 60), dtype=np.float32)
    ii, jj = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    img[:, :, :][((ii - 32) ** 2 + (jj - 32) ** 2) <= 25] = 100.0  # the tube runs through the whole field
    path = save_volume(Volume(img, make_affine((1.0, 1.0, 1.0), "RAS"), "tube.nii.gz"), tmp_path / "tube.nii.gz")
    res = api.run_file(path, tmp_path / "out", predictor=bright_is_cord, force=True)
    assert seen["head"] is head
    assert res.measures["n_slices_near_lost_end"] == (20 if head else 0)
