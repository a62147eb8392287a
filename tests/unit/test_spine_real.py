"""The shipped spine model on real shared cases: output names, label values, geometry, tables."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from neurospine.io import load_volume
from neurospine.labels import SEMANTIC_OUTPUT_VALUES, VERTEBRA_NAMES
from neurospine.models import list_cards
from neurospine.spine.api import run_file


def _shipped() -> bool:
    return any(c.name == "spine_semantic" for c in list_cards())


pytestmark = pytest.mark.skipif(not _shipped(), reason="spine_semantic model not shipped")

ALLOWED_VERT = set(VERTEBRA_NAMES) | {100 + v for v in VERTEBRA_NAMES} | {200 + v for v in VERTEBRA_NAMES}


def _check_outputs(img_path, out_dir, result):
    vol = load_volume(img_path)
    for key in ("semantic", "instances"):
        out = nib.load(str(result.outputs[key]))
        assert out.shape == vol.shape
        np.testing.assert_allclose(out.affine, vol.affine, atol=1e-4)
        assert out.header.get_intent()[0] == "label"
    sem = np.asarray(nib.load(str(result.outputs["semantic"])).dataobj)
    assert set(np.unique(sem).tolist()) <= {0, *SEMANTIC_OUTPUT_VALUES}
    vert = np.asarray(nib.load(str(result.outputs["instances"])).dataobj)
    assert set(np.unique(vert).tolist()) - {0} <= ALLOWED_VERT
    # instance voxels are labelled voxels of the semantic mask
    assert not np.any((vert > 0) & (sem == 0))
    rows = list(csv.DictReader(result.outputs["table"].open()))
    ctd = json.loads(result.outputs["centroids"].read_text())
    assert ctd[0]["direction"] == ["P", "I", "R"]
    vert_rows = [r for r in rows if r["structure"] in ("vertebra", "sacrum")]
    assert [e["level"] for e in ctd[1:]] == [r["level"] for r in vert_rows]
    for r in rows:
        assert float(r["volume_mm3"]) > 0 and int(r["label"]) in set(np.unique(vert).tolist())
    return vol, vert, rows, ctd


def test_tptbox_mri_outputs(shared_data, tmp_path):
    img = shared_data / "tptbox_samples" / "tpt-mri_img.nii.gz"
    result = run_file(img, tmp_path, threads=2)
    vol, _, _, ctd = _check_outputs(img, tmp_path, result)
    assert all(p.name.startswith("tpt-mri_img_") for p in result.outputs.values())
    # PIR input: JSON voxel coordinates are the input's own voxel indices
    for e in ctd[1:]:
        assert 0 <= e["X"] < vol.shape[0] and 0 <= e["Y"] < vol.shape[1] and 0 <= e["Z"] < vol.shape[2]


@pytest.mark.slow
def test_lumbar_t2_outputs(shared_data, tmp_path):
    img = shared_data / "sct_tutorial_unlabeled" / "tut-t2lumbar_img.nii.gz"
    result = run_file(img, tmp_path, threads=2)
    _check_outputs(img, tmp_path, result)
    assert result.measures["n_vertebrae"] >= 4


def test_cord_label_comes_from_the_cord_model(shared_data, tmp_path):
    """errsm_30's sagittal T2w: the spine network alone labels no cord; the cord model's cord matches the manual
    mask (Dice 0.976 when measured, docs/decisions/spine-cord-from-cord-model.md)."""
    from neurospine.metrics import dice

    folder = shared_data / "sct_testing_data"
    img = folder / "sct-t2_img.nii.gz"
    manual = np.asarray(load_volume(folder / "sct-t2_cordseg.nii.gz", check_intensity=False).data) > 0
    result = run_file(img, tmp_path / "fused", threads=2, snapshot=False)
    _check_outputs(img, tmp_path / "fused", result)
    sem = np.asarray(nib.load(str(result.outputs["semantic"])).dataobj)
    assert dice(sem == 60, manual) >= 0.9
    assert "cord_softseg" in result.models
    info = json.loads(result.outputs["centroids"].read_text())[0]["info"]
    assert info["cord"]["cord_mm3"] > 1000
    plain = run_file(img, tmp_path / "plain", threads=2, snapshot=False, cord=False)
    sem_plain = np.asarray(nib.load(str(plain.outputs["semantic"])).dataobj)
    assert "cord_softseg" not in plain.models
    # the fusion writes the cord over background and canal only
    changed = sem != sem_plain
    assert set(np.unique(sem_plain[changed]).tolist()) <= {0, 60, 61}
    assert set(np.unique(sem[changed]).tolist()) <= {60, 61}
