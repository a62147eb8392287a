"""``neurospine spine DICOM_DIR --output-format dicom-seg|both``: SEG masks equal the NIfTI masks, exact geometry."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.cli.main import main
from neurospine.io import Volume, load_volume, save_volume
from tests.dicom_series import oblique_affine, write_series
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model

pytest.importorskip("highdicom")


@pytest.fixture
def threshold_model(tmp_path, monkeypatch):
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))


@pytest.fixture
def oblique_series(tmp_path: Path) -> Path:
    pir = lumbar_phantom("PIR")  # sagittal slices along the last axis, 3 mm apart
    # faint noise: a noise-free phantom of four grey levels would be refused as a label map given as the image
    noisy = pir.data + np.random.default_rng(0).normal(0.0, 0.004, pir.shape).astype(np.float32)
    vol = Volume(np.clip(noisy, 0.0, None), oblique_affine(pir.spacing_mm, degrees=8.0))
    write_series(vol, tmp_path / "sub-01_T2w")
    return tmp_path / "sub-01_T2w"


def test_spine_dicom_in_both_formats_out(tmp_path, threshold_model, oblique_series, capsys) -> None:
    from neurospine.io.dicomseg import read_dicom_seg

    out = tmp_path / "out"
    assert main(["spine", str(oblique_series), "--out", str(out), "--output-format", "both", "--no-snapshot"]) == 0
    printed = capsys.readouterr().out
    assert "5 vertebrae" in printed and "_seg-vert_msk.dcm" in printed
    src = load_volume(oblique_series)
    for name in ("sub-01_T2w_seg-spine_msk", "sub-01_T2w_seg-vert_msk"):
        nii = nib.load(str(out / f"{name}.nii.gz"))
        np.testing.assert_allclose(nii.affine, src.affine, atol=1e-5)  # NIfTI on the DICOM grid
        labels = np.asarray(nii.dataobj)
        assert len(np.unique(labels)) > 3
        np.testing.assert_array_equal(read_dicom_seg(out / f"{name}.dcm", src), labels)


def test_spine_dicom_seg_only_keeps_no_nifti_masks(tmp_path, threshold_model, oblique_series) -> None:
    out = tmp_path / "out"
    assert main(["spine", str(oblique_series), "--out", str(out), "--output-format", "dicom-seg", "--no-snapshot"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "sub-01_T2w_seg-spine_ctd.json",
        "sub-01_T2w_seg-spine_msk.dcm",
        "sub-01_T2w_seg-vert_msk.dcm",
        "sub-01_T2w_spine.csv",
    ]


def test_nifti_input_with_dicom_seg_is_exit_2_before_any_work(tmp_path, threshold_model, capsys) -> None:
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    out = tmp_path / "o"
    assert main(["spine", str(img), "--out", str(out), "--output-format", "dicom-seg"]) == 2
    err = capsys.readouterr().err
    assert "needs a DICOM series" in err and "--output-format nifti" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("lowest", [None, "L5"])
def test_slice2d_dicom_in_seg_out(tmp_path, monkeypatch, lowest) -> None:
    """slice2d on a DICOM series: the one-slice mask as a SEG on the series grid; level codes only when anchored."""
    import highdicom as hd

    from neurospine.io.dicomseg import LOCAL_SCHEME, read_dicom_seg
    from neurospine.slice2d.tiny_model import phantom_plane, write_tiny_model

    pytest.importorskip("onnx")
    write_tiny_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    img, _ = phantom_plane()
    data = np.repeat(np.asarray(img, dtype=np.float32).T[:, :, None], 5, axis=2) + 0.05
    series = tmp_path / "sag"
    write_series(Volume(data, oblique_affine((0.5, 0.5, 3.0), degrees=5.0)), series)
    out = tmp_path / "o"
    args = ["slice2d", str(series), "--out", str(out), "--output-format", "both", "--threads", "1"]
    assert main([*args, *(["--lowest-level", lowest] if lowest else [])]) == 0
    src = load_volume(series)
    labels = np.asarray(nib.load(str(out / "sag_slice2d_msk.nii.gz")).dataobj)
    assert len(np.unique(labels)) >= 5
    np.testing.assert_array_equal(read_dicom_seg(out / "sag_slice2d_msk.dcm", src), labels)
    seg = hd.seg.segread(str(out / "sag_slice2d_msk.dcm"))
    descs = {str(d.SegmentLabel): d for d in (seg.get_segment_description(n) for n in seg.segment_numbers)}
    if lowest:
        body = descs["L5_body"]
        assert body.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == LOCAL_SCHEME
        assert body.AnatomicRegionSequence[0].CodeMeaning == "L5 vertebra"
        assert descs["disc_L4"].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "L4/L5 disc"
    else:  # positional ids are not levels: no level code anywhere
        assert {k[:4] for k in descs} <= {"body", "disc"}
        assert all(
            d.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator == LOCAL_SCHEME for d in descs.values()
        )
        assert not any("AnatomicRegionSequence" in d for d in descs.values())
