"""On a head MRI the spine model's level names count only when counted down from C2
(docs/decisions/cord-head-levels.md)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.cord import api
from neurospine.cord.spinelevels import LevelEstimate
from neurospine.io import Volume
from tests.conftest import make_affine


def _estimate(anchor: str) -> LevelEstimate:
    mask = np.zeros((4, 4, 6), dtype=np.int16)
    mask[:, :, :3] = 24  # L5
    return LevelEstimate(mask, "estimated", anchor, 0.3, warnings=["estimated"], models={"spine": "x"})


@pytest.mark.parametrize(
    ("anchor", "head", "kept"),
    [("positional", True, False), ("positional", False, True), ("C2", True, True), ("S1+C2", True, True)],
)
def test_only_a_c2_anchored_naming_names_a_head_mri(monkeypatch, anchor, head, kept):
    image = Volume(np.zeros((4, 4, 6), dtype=np.float32), make_affine((1.0, 1.0, 1.0), "RAS"), "head.nii.gz")
    soft = np.zeros((4, 4, 6), dtype=np.float32)
    monkeypatch.setattr(api, "estimate_levels", lambda *a, **k: _estimate(anchor))
    monkeypatch.setattr(api, "_disc_fallback", lambda image, soft, est: est)  # no discs to fall back on
    used, est = api._levels(image, soft, None, True, 2, None, head=head)
    assert (used is not None) is kept
    if not kept:
        assert est.source == "none" and est.models == {"spine": "x"}
        assert "counted down from C2" in est.warnings[0] and "positional (L5" in est.warnings[0]
