"""Issue 18 examples: the wrong kind of image is refused (exit 2, nothing written) or flagged, --force runs it.

Each test reads the shared real data through the ``shared_data`` fixture (skipped when absent).
"""

from __future__ import annotations

import json

import pytest

from neurospine.cli.main import main

pytest.importorskip("onnxruntime")

IXI = "ixi_t1_2mm/t1/IXI511-HH-2238_T1.nii.gz"


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.mark.slow
def test_spine_on_a_brain_t1_is_refused_then_forced(shared_data, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    code = main(["spine", str(shared_data / IXI), "--out", str(out), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "head (brain) MRI" in err and "--force" in err
    assert _files(out) == []
    code = main(["spine", str(shared_data / IXI), "--out", str(out), "--threads", "1", "--force", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and str(payload["measures"]["plausibility"]).startswith("forced: ")
    assert any(w.startswith("plausibility") for w in payload["warnings"])


def test_brain_t1_shows_a_head_to_the_spine_check(shared_data) -> None:
    """The evidence behind the spine refusal above, fast: the IXI T1w has the top of a head in view."""
    from neurospine.io import load_volume
    from neurospine.plausibility.common import evidence

    assert evidence(load_volume(shared_data / IXI)).head_in_view


@pytest.mark.parametrize(
    "case", ["sct_testing_data/sct-t2_img.nii.gz", "sct_tutorial_unlabeled/tut-t2lumbar_img.nii.gz"]
)
def test_brainage_t1_on_spine_t2w_is_refused(shared_data, tmp_path, capsys, case) -> None:
    pred = tmp_path / "pred.csv"
    code = main(["brainage", "t1", str(shared_data / case), "--out", str(pred)])
    err = capsys.readouterr().err
    assert code == 2 and "whole-head T1-weighted MRI" in err and case.split("/")[-1] in err
    assert not pred.exists()


def test_brainage_t1_check_accepts_ixi(shared_data) -> None:
    from neurospine.brainage.api import t1_plausibility

    images = sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[:10]
    assert [v.status for v in t1_plausibility(images)] == ["ok"] * len(images)


@pytest.mark.parametrize("case", ["xr-normal-ap_img.nii.gz", "xr-damaged-ap_img.nii.gz"])
def test_slice2d_on_an_ap_radiograph_is_refused(shared_data, tmp_path, capsys, case) -> None:
    out = tmp_path / "o"
    code = main(["slice2d", str(shared_data / "spineproject_xray" / case), "--out", str(out), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "AP/PA" in err and "lateral radiograph" in err
    assert _files(out) == []


@pytest.mark.slow
def test_slice2d_on_a_lateral_radiograph_runs_unflagged(shared_data, tmp_path, capsys) -> None:
    src = shared_data / "spineproject_xray" / "xr-normal-lat_img.nii.gz"
    code = main(["slice2d", str(src), "--out", str(tmp_path / "o"), "--threads", "1", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and payload["measures"]["plausibility"] == "ok"


def test_cord_on_cervical_t1_prints_no_sacrum_warning(shared_data, tmp_path, capsys) -> None:
    src = shared_data / "sct_testing_data" / "sct-t1_img.nii.gz"
    code = main(["cord", str(src), "--out", str(tmp_path / "o"), "--threads", "1"])
    text = capsys.readouterr().out
    # levels come from the whole-spine model's bodies or, where it names none, from the discs in front of the cord:
    # either way positional and said so, and nothing about a sacrum on a cervical scan
    assert code == 0 and "positional" in text and "check the qc image" in text.lower()
    assert "sacrum" not in text.lower()


def test_cord_on_ct_is_refused(shared_data, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    code = main(["cord", str(shared_data / "verse014_ct" / "verse014_img.nii.gz"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "CT" in err and "--force" in err
    assert _files(out) == []


@pytest.mark.slow
def test_slice2d_warns_when_pixel_mm_disagrees_with_the_anatomy(shared_data, tmp_path, capsys) -> None:
    """The issue's lateral radiograph: the count swings with --pixel-mm; the anatomical pixel size does not, and a
    --pixel-mm far from it is reported."""
    src = shared_data / "spineproject_xray" / "xr-normal-lat_img.nii.gz"

    def run(*extra: str) -> dict:
        out = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        code = main(["slice2d", str(src), "--out", str(out), "--json", "--threads", "1", *extra])
        assert code == 0
        return json.loads(capsys.readouterr().out)

    est = run("--pixel-mm", "0.2")["measures"]["pixel_mm_anatomy"]
    assert run("--pixel-mm", "0.3")["measures"]["pixel_mm_anatomy"] == pytest.approx(est)
    assert 150.0 / 1373 <= est <= 430.0 / 1373 * 1.3  # within the film-size range of a lateral radiograph
    far = run("--pixel-mm", f"{2 * est:.3f}")
    assert any("suggest a pixel size" in w and "check the pixel size" in w for w in far["warnings"])


def test_spine_on_8bit_ct_without_hounsfield_units_is_flagged(shared_data, tmp_path, capsys) -> None:
    """fewshot CT is min-max scaled to 8 bits (no HU): the bones being the brightest tissue gives it away."""
    src = shared_data / "fewshot_ct_sag" / "fst-11_img.nii.gz"
    code = main(["spine", str(src), "--out", str(tmp_path / "o"), "--threads", "1", "--json", "--no-snapshot"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and "looks like CT" in str(payload["measures"]["plausibility"])


def test_slice2d_on_a_ct_slice_exported_as_png_is_not_refused(shared_data, tmp_path, capsys) -> None:
    """A sagittal CT slice saved as a picture (8-bit, no header) is a supported input: its modality guess may be
    "xray" with doubt, which must not trigger the AP-radiograph refusal (it did before)."""
    import numpy as np
    from PIL import Image

    from neurospine.slice2d.io2d import load_input

    loaded = load_input(shared_data / "fewshot_ct_sag" / "fst-36_img.nii.gz")
    pixels = np.asarray(loaded.slice_plane(loaded.n_slices() // 2).pixels, dtype=np.float32)
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    png = tmp_path / "ct-slice.png"
    Image.fromarray((np.clip((pixels - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)).save(png)
    code = main(["slice2d", str(png), "--out", str(tmp_path / "o"), "--threads", "1", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and not str(payload["measures"]["plausibility"]).startswith("forced")


def test_slice2d_on_a_headerless_ap_pelvis_picture_is_flagged(shared_data, tmp_path, capsys) -> None:
    """The lower half of the AP radiograph saved as PNG (no header): modality uncertain and bodies the network
    is unsure of, two doubts together."""
    import nibabel as nib
    import numpy as np
    from PIL import Image

    data = np.asarray(nib.load(str(shared_data / "spineproject_xray" / "xr-normal-ap_img.nii.gz")).dataobj)
    sq = data.squeeze().astype(np.float32)
    half = sq[sq.shape[0] // 2 :] if sq.shape[0] >= sq.shape[1] else sq[:, sq.shape[1] // 2 :]
    lo, hi = np.percentile(half, [0.5, 99.5])
    png = tmp_path / "pelvis.png"
    Image.fromarray((np.clip((half - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)).save(png)
    code = main(["slice2d", str(png), "--out", str(tmp_path / "o"), "--threads", "1", "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 0 and "modality guess uncertain" in str(payload["measures"]["plausibility"])


def test_cord_on_8bit_ct_is_refused_as_ct(shared_data, tmp_path, capsys) -> None:
    """No HU to refuse on before the model runs, but the level estimate's spine segmentation shows the bones as the
    brightest tissue: refused with one line and nothing written (docs/decisions/cord-ct-refusal-bone.md)."""
    src = shared_data / "fewshot_ct_sag" / "fst-11_img.nii.gz"
    out = tmp_path / "o"
    code = main(["cord", str(src), "--out", str(out), "--threads", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "CT without Hounsfield units" in err and "--force" in err
    assert sum("error:" in line for line in err.splitlines()) == 1
    assert _files(out) == []


@pytest.mark.slow
def test_cord_on_8bit_ct_with_force_runs_flagged(shared_data, tmp_path, capsys) -> None:
    src = shared_data / "fewshot_ct_sag" / "fst-11_img.nii.gz"
    code = main(["cord", str(src), "--out", str(tmp_path / "o"), "--threads", "2", "--json", "--force"])
    payload = json.loads(capsys.readouterr().out)
    plausibility = str(payload["measures"]["plausibility"])
    assert code == 0 and plausibility.startswith("forced") and "bones are the brightest tissue" in plausibility


@pytest.mark.parametrize("tool", ["spine", "cord", "slice2d"])
def test_a_mask_given_as_the_image_is_refused_before_any_model_runs(shared_data, tmp_path, capsys, tool) -> None:
    """A reference label map given where the image belongs (a common slip: the `_seg`/`_msk` file) is refused
    with one line and nothing written."""
    mask = shared_data / "tptbox_samples" / "tpt-mri_subreg.nii.gz"
    out = tmp_path / "o"
    code = main([tool, str(mask), "--out", str(out), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "label map (segmentation mask)" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1
    assert _files(out) == []
