"""On a head MRI the spine model's level names count only when they are all cervical
(docs/decisions/cord-head-levels.md, amendment 1)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.cord import api
from neurospine.cord.spinelevels import LevelEstimate
from neurospine.io import Volume
from tests.conftest import make_affine


def _estimate(anchor: str, level_id: int = 24) -> LevelEstimate:
    mask = np.zeros((4, 4, 6), dtype=np.int16)
    mask[:, :, :3] = level_id  # 24: L5
    return LevelEstimate(mask, "estimated", anchor, 0.3, warnings=["estimated"], models={"spine": "x"})


@pytest.mark.parametrize(
    ("anchor", "level_id", "head", "kept"),
    [
        ("positional", 24, True, False),  # L5 on a head MRI
        ("positional", 24, False, True),  # not a head MRI: untouched
        ("C2", 24, True, False),  # whatever the anchor
        ("positional", 3, True, True),  # C3: a positional naming that stays cervical is kept
        ("C2", 7, True, True),
    ],
)
def test_only_cervical_names_name_a_head_mri(monkeypatch, anchor, level_id, head, kept):
    image = Volume(np.zeros((4, 4, 6), dtype=np.float32), make_affine((1.0, 1.0, 1.0), "RAS"), "head.nii.gz")
    soft = np.zeros((4, 4, 6), dtype=np.float32)
    monkeypatch.setattr(api, "estimate_levels", lambda *a, **k: _estimate(anchor, level_id))
    monkeypatch.setattr(api, "_disc_fallback", lambda image, soft, est: est)  # no discs to fall back on
    used, est = api._levels(image, soft, None, True, 2, None, head=head)
    assert (used is not None) is kept
    if not kept:
        assert est.source == "none" and est.models == {"spine": "x"}
        assert "cervical vertebrae only" in est.warnings[0] and f"named L5 (naming {anchor}" in est.warnings[0]
