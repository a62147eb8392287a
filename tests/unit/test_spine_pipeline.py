"""Orchestration of ``neurospine.spine.api.run_file`` with a tiny threshold ONNX model on a phantom."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest

from neurospine.errors import InputError
from neurospine.io import Volume, load_volume, save_volume
from neurospine.labels import VERTEBRA_IDS
from neurospine.spine.api import output_paths, run_file
from tests.conftest import make_affine
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model

LUMBAR_IDS = [VERTEBRA_IDS[f"L{i}"] for i in range(1, 6)]


@pytest.fixture
def threshold_model(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    write_threshold_model(folder)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(folder))
    return folder


@pytest.mark.parametrize("axcodes", ["RAS", "LPI", "PIR"])
def test_phantom_through_the_whole_pipeline(tmp_path, threshold_model, axcodes):
    vol = lumbar_phantom(axcodes)
    img = tmp_path / "sub-01_T2w.nii.gz"
    save_volume(vol, img)
    result = run_file(img, tmp_path / "out", threads=1)
    paths = output_paths(img, tmp_path / "out")
    assert set(result.outputs) == set(paths) and all(p.is_file() for p in paths.values())
    assert paths["semantic"].name == "sub-01_T2w_seg-spine_msk.nii.gz"
    assert paths["instances"].name == "sub-01_T2w_seg-vert_msk.nii.gz"
    # outputs on the input's exact grid
    for key in ("semantic", "instances"):
        out = nib.load(str(paths[key]))
        assert out.shape == vol.shape
        np.testing.assert_allclose(out.affine, vol.affine, atol=1e-5)
    sem = np.asarray(nib.load(str(paths["semantic"])).dataobj)
    assert set(np.unique(sem).tolist()) <= {0, 26, 41, 42, 43, 44, 45, 46, 47, 48, 49, 60, 61, 62, 100}
    assert {49, 100, 26} <= set(np.unique(sem).tolist())
    vert = np.asarray(nib.load(str(paths["instances"])).dataobj)
    vals = set(np.unique(vert).tolist())
    # five bodies named L1..L5 from the sacrum anchor, discs 100+X tied to the vertebra above
    assert set(LUMBAR_IDS) <= vals and 26 in vals
    assert {100 + v for v in LUMBAR_IDS} <= vals
    assert result.measures["naming_anchor"] == "S1" and result.measures["naming_positional"] == 0
    # instance geometry: L1 is the most superior body, each disc lies right below its vertebra
    pir = nib.as_closest_canonical(nib.Nifti1Image(vert.astype(np.int16), vol.affine))
    ras = np.asarray(pir.dataobj)
    z = {v: float(np.nonzero(ras == v)[2].mean()) for v in [*LUMBAR_IDS, *[100 + v for v in LUMBAR_IDS]]}
    assert [z[v] for v in LUMBAR_IDS] == sorted((z[v] for v in LUMBAR_IDS), reverse=True)
    for v in LUMBAR_IDS:
        assert z[100 + v] < z[v]
    # volumes: a phantom body is 30 x 25 x 30 mm = 22,500 mm^3 (minus nothing)
    assert 15000 < result.measures["volume_mm3_L3"] < 30000
    # centroids JSON and CSV
    ctd = json.loads(paths["centroids"].read_text())
    assert ctd[0]["direction"] == ["P", "I", "R"] and ctd[0]["info"]["naming"]["anchor"] == "S1"
    assert [e["label"] for e in ctd[1:]] == [*LUMBAR_IDS, 26]
    rows = list(csv.DictReader(paths["table"].open()))
    assert [r["level"] for r in rows if r["structure"] == "vertebra"] == ["L1", "L2", "L3", "L4", "L5"]
    assert all(r["naming_flag"] == "0" for r in rows)
    assert any(r["level"] == "disc_L5" for r in rows)


def test_snapshot_is_a_png_with_two_panels(tmp_path, threshold_model):
    from PIL import Image

    img = tmp_path / "phantom.nii.gz"
    save_volume(lumbar_phantom(), img)
    result = run_file(img, tmp_path / "o", threads=1)
    with Image.open(result.outputs["snapshot"]) as im:
        assert im.format == "PNG" and im.width > im.height * 0.4 and im.height >= 512


def test_positional_naming_is_flagged_without_sacrum(tmp_path, threshold_model):
    vol = lumbar_phantom("PIR")
    data = np.asarray(vol.data).copy()
    data[data > 0.9] = 0.1  # remove the sacrum
    data[0:25, 0:12, :] = 1.0  # a bright block far above: keeps the intensity range, is no sacrum below L5
    img = tmp_path / "nosacrum.nii.gz"
    save_volume(Volume(data, vol.affine), img)
    result = run_file(img, tmp_path / "o", threads=1)
    assert result.measures["naming_positional"] == 1 and result.warnings
    rows = list(csv.DictReader(result.outputs["table"].open()))
    assert rows and all(r["naming"] == "positional" and r["naming_flag"] == "1" for r in rows)
    ctd = json.loads(result.outputs["centroids"].read_text())
    assert ctd[0]["info"]["naming"]["positional"] is True


def test_thick_axial_stack_is_refused(tmp_path, threshold_model):
    rng = np.random.default_rng(0)
    vol = Volume(rng.random((64, 64, 12)).astype(np.float32), make_affine((0.7, 0.7, 6.0), "LAS"))
    img = tmp_path / "axial.nii.gz"
    save_volume(vol, img)
    with pytest.raises(InputError, match="axial"):
        run_file(img, tmp_path / "o")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_missing_file_is_an_input_error(tmp_path, threshold_model):
    with pytest.raises(InputError):
        run_file(tmp_path / "nope.nii.gz", tmp_path / "o")


def test_empty_prediction_writes_empty_outputs(tmp_path, threshold_model):
    # a dim uniform-noise image: the threshold model finds nothing
    rng = np.random.default_rng(1)
    vol = Volume((rng.random((60, 80, 20)) * 0.2).astype(np.float32), make_affine((1.0, 1.0, 3.0), "PIR"))
    vol.data[0, 0, 0] = 0.0
    img = tmp_path / "noise.nii.gz"
    save_volume(vol, img)
    result = run_file(img, tmp_path / "o", threads=1)
    assert result.measures["n_vertebrae"] == 0
    assert load_volume(result.outputs["instances"], check_intensity=False).shape == vol.shape


def test_extra_vertebra_option_is_recorded_and_checked(tmp_path, threshold_model):
    img = tmp_path / "phantom.nii.gz"
    save_volume(lumbar_phantom(), img)
    result = run_file(img, tmp_path / "o", threads=1, snapshot=False, extra_vertebra="T13")
    ctd = json.loads(result.outputs["centroids"].read_text())
    assert ctd[0]["info"]["naming"]["extra_vertebra"] == "t13"
    # five lumbar vertebrae over the sacrum: the option only acts on 24 presacral vertebrae
    assert result.measures["levels"] == "L1 L2 L3 L4 L5 S1"
    rows = list(csv.DictReader(result.outputs["table"].open()))
    assert all(r["naming_flag"] == "0" for r in rows)
    assert {r["centroid_of"] for r in rows} == {"vertebral body", "disc", "sacrum"}
    with pytest.raises(InputError, match="extra_vertebra"):
        run_file(img, tmp_path / "o", threads=1, extra_vertebra="t11")


def test_body_volume_counts_the_body_map_and_leaves_out_the_posterior_elements(tmp_path, threshold_model):
    """``body_volume_mm3`` (vertebra rows): the vertebra's corpus and endplates, from the body map on the input grid;
    ``volume_mm3`` counts the voxels with the vertebra's id (posterior elements included, endplates not)."""
    from neurospine.spine.api import segment
    from neurospine.spine.outputs import structure_rows

    phantom = lumbar_phantom()
    img = tmp_path / "phantom.nii.gz"
    save_volume(phantom, img)
    result = run_file(img, tmp_path / "o", threads=1, snapshot=False)
    rows = {r["level"]: r for r in csv.DictReader(result.outputs["table"].open())}
    seg = segment(phantom, threads=1)
    voxel_mm3 = phantom.voxel_volume_mm3
    for level in ("L1", "L3", "L5"):
        lab = VERTEBRA_IDS[level]
        expected = float((np.asarray(seg.body_input) == lab).sum()) * voxel_mm3
        assert expected > 0 and float(rows[level]["body_volume_mm3"]) == pytest.approx(expected, abs=0.1)
        corpus = np.isin(np.asarray(seg.semantic_input), (49, 50)) & (np.asarray(seg.seg_vert_input) == lab)
        assert expected > float(corpus.sum()) * voxel_mm3  # the corpus and its endplate layers
        assert result.measures[f"body_volume_mm3_{level}"] == pytest.approx(expected, abs=0.1)
    assert rows["S1"]["body_volume_mm3"] == "" and rows["disc_L1"]["body_volume_mm3"] == ""
    # without the body map the column stays empty (older callers)
    no_map = structure_rows(seg.seg_vert_input, seg.semantic_input, phantom)
    assert all(r.body_volume_mm3 is None for r in no_map)


def test_field_edge_columns_and_measures_come_from_the_written_maps(tmp_path, threshold_model):
    """``field_edge`` / ``body_field_edge`` of ``_spine.csv`` and ``levels_at_field_edge`` / ``bodies_at_field_edge``
    of the JSON summary name what the written instance and body maps reach at the image's edge; a phantom cut
    through its top vertebra has at least that one."""
    from neurospine.io import Volume
    from neurospine.spine.api import segment
    from neurospine.spine.outputs import field_edges

    full = lumbar_phantom()  # RAS: the last index of axis 2 is the top of the field
    assert full.axcodes[2] == "S"
    data = np.asarray(full.data)
    bright = np.nonzero(data.max(axis=(0, 1)) >= 0.65)[0]  # head-to-foot indices holding a body (0.7)
    top = bright[-1]
    bottom = top - int(np.argmax(np.diff(bright[::-1]) != -1))  # the top body's lowest index
    cut = Volume(np.ascontiguousarray(data[:, :, : (top + bottom) // 2]), full.affine.copy())  # through it
    img = tmp_path / "cut.nii.gz"
    save_volume(cut, img)
    result = run_file(img, tmp_path / "o", threads=1, snapshot=False)
    rows = {r["level"]: r for r in csv.DictReader(result.outputs["table"].open())}
    seg = segment(cut, threads=1)
    whole = field_edges(seg.seg_vert_input, cut.axcodes)
    body = field_edges(seg.body_input, cut.axcodes)
    for r in rows.values():
        lab = int(r["label"])
        expected_body = body.get(lab, "") if r["structure"] == "vertebra" else ""
        assert set(filter(None, r["field_edge"].split(";"))) == set(
            filter(None, (whole.get(lab, "") + ";" + expected_body).split(";"))
        )
        assert r["body_field_edge"] == expected_body
    at_edge = [r["level"] for r in rows.values() if r["structure"] in ("vertebra", "sacrum") and r["field_edge"]]
    assert at_edge and result.measures["levels_at_field_edge"] == " ".join(at_edge)
    assert "superior" in rows[at_edge[0]]["field_edge"]
    assert result.measures["bodies_at_field_edge"] == " ".join(
        r["level"] for r in rows.values() if r["body_field_edge"]
    )
