"""Orchestration with a tiny deterministic ONNX model: outputs, ids, geometry, instances."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from neurospine.io import load_volume
from neurospine.slice2d.instances import build_instances
from neurospine.slice2d.tiny_model import phantom_plane, write_tiny_model

pytest.importorskip("onnx")


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    write_tiny_model(folder)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(folder))
    return folder


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_png_end_to_end(tmp_path, tiny_models) -> None:
    from neurospine.slice2d.api import run_file

    img, lab = phantom_plane()
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "ph.png")
    # the phantom's histogram (bright blocks on grey) reads as MR to the 2D rule: give the modality
    res = run_file(tmp_path / "ph.png", tmp_path / "out", threads=1, modality="xray")
    assert res.measures["n_bodies"] == 4 and res.measures["n_discs"] == 3
    assert res.measures["modality"] == "xray" and res.measures["naming"] == "positional"
    for key in ("mask", "overlay", "radiomics", "heights"):
        assert res.outputs[key].is_file()
    mask = np.asarray(nib.load(str(res.outputs["mask"])).dataobj)
    assert mask.shape == (200, 120, 1)
    got = mask[:, :, 0]
    assert set(np.unique(got)) == {0, 1, 2, 3, 4, 101, 102, 103}
    # bodies overlap the phantom bodies almost exactly
    inter = ((got > 0) & (got < 100) & (lab == 1)).sum()
    assert 2 * inter / (((got > 0) & (got < 100)).sum() + (lab == 1).sum()) > 0.97
    rows = _read_csv(res.outputs["heights"])
    bodies = [r for r in rows if r["kind"] == "body"]
    spacing = res.extra["spacing_mm"][0]
    assert float(bodies[0]["middle_height_mm"]) == pytest.approx(24 * spacing, rel=0.05)
    rad = _read_csv(res.outputs["radiomics"])
    assert len(rad) == 7 and float(rad[0]["mean"]) == pytest.approx(255.0, abs=1.0)
    assert any("spacing unknown" in w for w in res.warnings)
    # the count confidence comes last, after every existing measure; the regular phantom is not flagged
    assert list(res.measures)[-2:] == ["count_confidence", "count_flag"]
    assert 0.5 <= res.measures["count_confidence"] <= 1.0 and res.measures["count_flag"] is False
    assert not any("body count uncertain" in w for w in res.warnings)


def test_3d_mask_on_input_grid_with_one_slice(tmp_path, tiny_models) -> None:
    from neurospine.slice2d.api import run_file

    img, _ = phantom_plane()
    n = 11
    vol = np.zeros((n, 120, 200), np.float32)  # RAS: axis0 L-R, axis1 A-P, axis2 S-I
    for i in range(n):
        vol[i] = (img.T[::-1, ::-1] * 900 + 100) if 3 <= i <= 7 else 100.0  # canonical rows=I, cols=P
    aff = np.diag([0.8, 1.0, 1.0, 1.0])
    aff[:3, 3] = (-4.0, 10.0, 20.0)
    nib.save(nib.Nifti1Image(vol, aff), tmp_path / "v.nii.gz")
    res = run_file(tmp_path / "v.nii.gz", tmp_path / "out", threads=1)
    out = load_volume(res.outputs["mask"], check_intensity=False)
    inp = load_volume(tmp_path / "v.nii.gz")
    assert out.same_grid(inp)
    filled = [i for i in range(n) if out.data[i].any()]
    assert filled == [res.extra["slice_input"]]
    assert 3 <= filled[0] <= 7
    assert res.measures["n_bodies"] == 4
    # --slice override and geometry: the chosen slice index is the stored L-R index
    res2 = run_file(tmp_path / "v.nii.gz", tmp_path / "out2", threads=1, slice_index=4, lowest_level="S1")
    out2 = load_volume(res2.outputs["mask"], check_intensity=False)
    assert [i for i in range(n) if out2.data[i].any()] == [4]
    assert res2.measures["naming"] == "anchored"
    vals = set(np.unique(out2.data)) - {0}
    assert vals == {22, 23, 24, 26, 122, 123, 124}  # L3, L4, L5, S1 and the discs below L3, L4, L5
    assert "lordosis_deg" not in res2.measures  # L1 not in view


def test_nifti2d_output_matches_input_grid(tmp_path, tiny_models) -> None:
    from neurospine.slice2d.api import run_file

    img, lab = phantom_plane()
    stored = img.T.copy()  # axis0 = A-P (towards P), axis1 = S-I (towards I)
    aff = np.array([[0, 0, 1.0, 0], [-0.9, 0, 0, 0], [0, -1.1, 0, 0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(stored[:, :, None] * 1000, aff), tmp_path / "s.nii.gz")
    res = run_file(tmp_path / "s.nii.gz", tmp_path / "out", threads=1, modality="mr")
    m = nib.load(str(res.outputs["mask"]))
    assert m.shape == (120, 200, 1)
    np.testing.assert_allclose(m.affine, aff)
    got = np.asarray(m.dataobj)[:, :, 0]
    assert ((got > 0) & (got < 100)).sum() > 0.95 * (lab.T == 1).sum()
    assert np.all(got[lab.T == 0] == 0) or ((got > 0) & (lab.T == 0)).sum() < 0.03 * (lab.T > 0).sum()


def test_instances_split_merged_bodies() -> None:
    labels = np.zeros((80, 40), np.uint8)
    labels[10:60, 10:30] = 1  # one merged body
    probs = np.zeros((3, 80, 40), np.float32)
    probs[1][labels == 1] = 0.6
    probs[2][33:36, 10:30] = 0.5  # a thin likely disc inside the merged body
    inst = build_instances(labels, probs, (1.0, 1.0))
    assert len(inst.bodies) == 2
    assert inst.bodies[0].centroid_rc[0] < inst.bodies[1].centroid_rc[0]


def test_missing_model_is_a_clear_error(tmp_path, monkeypatch) -> None:
    from neurospine.errors import ModelNotFoundError
    from neurospine.models import registry
    from neurospine.slice2d.api import run_file

    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setattr(registry, "shipped_dir", lambda: tmp_path / "none_shipped")
    img, _ = phantom_plane()
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "ph.png")
    with pytest.raises(ModelNotFoundError):
        run_file(tmp_path / "ph.png", tmp_path / "out")


def test_split_oversized_cuts_fused_bodies_at_waist() -> None:
    from neurospine.slice2d.instances import split_oversized

    shape = (200, 60)
    masks = []
    for r0 in (10, 45):
        m = np.zeros(shape, bool)
        m[r0 : r0 + 30, 10:50] = True
        masks.append(m)
    fused = np.zeros(shape, bool)
    fused[80:110, 10:50] = True
    fused[110:114, 20:40] = True  # narrow bridge where a disc was missed
    fused[114:144, 10:50] = True
    masks.append(fused)
    out = split_oversized(masks, min_px=50)
    assert len(out) == 4
    assert sum(int(m.sum()) for m in out) == sum(int(m.sum()) for m in masks)  # no pixel lost
    # a plain large body without a waist is left alone
    big = np.zeros(shape, bool)
    big[150:199, 5:58] = True
    assert len(split_oversized([*masks[:2], big], min_px=50)) == 3


def test_body_wrapped_around_disc_is_cut() -> None:
    labels = np.zeros((100, 60), np.uint8)
    labels[10:70, 10:50] = 1
    labels[38:44, 16:44] = 2  # a narrow disc enclosed by a body rim
    probs = np.zeros((3, 100, 60), np.float32)
    probs[1][labels == 1] = 0.9
    probs[2][labels == 2] = 0.9
    inst = build_instances(labels, probs, (1.0, 1.0))
    assert len(inst.bodies) == 2 and len(inst.discs) == 1
    assert inst.bodies[0].centroid_rc[0] < inst.discs[0].centroid_rc[0] < inst.bodies[1].centroid_rc[0]
