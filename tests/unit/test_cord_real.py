"""Cord morphometry and the shipped model on the real test subject (sct_testing_data, never trained on)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.cord.api import load_levels
from neurospine.cord.morphometry import measure_cord
from neurospine.io import load_volume


def test_manual_t2_mask_per_level_csa(shared_data):
    sct = shared_data / "sct_testing_data"
    ref = load_volume(sct / "sct-t2_cordseg.nii.gz", check_intensity=False)
    lev = load_levels(sct / "sct-t2_cordlevels.nii.gz", ref)
    morph = measure_cord(ref.with_data((ref.data > 0).astype(np.float32)), levels=lev)
    per = {p.level: p for p in morph.per_level()}
    assert list(per) == ["C2", "C3", "C4", "C5"]
    for p in per.values():
        assert 50.0 < p.csa_mm2_mean < 100.0  # adult cervical cord CSA range
    rows = morph.slices
    assert all(r.angle_deg < 30 for r in rows)
    assert all(r.rl_mm > r.ap_mm for r in rows[5:-5])  # the cord is wider than deep


def test_an_image_given_as_the_level_mask_is_refused(shared_data):
    from neurospine.errors import InputError

    sct = shared_data / "sct_testing_data"
    img = load_volume(sct / "sct-t2_img.nii.gz")
    with pytest.raises(InputError, match="distinct values, like an image"):
        load_levels(sct / "sct-t2_img.nii.gz", img)


@pytest.mark.slow
def test_shipped_model_on_sct_t2(shared_data, tmp_path):
    from neurospine.cord.api import run_file
    from neurospine.errors import ModelNotFoundError
    from neurospine.metrics.overlap import dice

    sct = shared_data / "sct_testing_data"
    try:
        res = run_file(sct / "sct-t2_img.nii.gz", tmp_path, threads=2)
    except ModelNotFoundError:
        pytest.skip("cord model not shipped in this checkout")
    pred = load_volume(res.outputs["cord_mask"], check_intensity=False).data > 0
    ref = load_volume(sct / "sct-t2_cordseg.nii.gz", check_intensity=False).data > 0
    assert dice(pred, ref) > 0.85
