"""``neurospine cord`` in-process: outputs, JSON, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neurospine.cli.main import main
from neurospine.io import Volume, save_volume
from tests.conftest import make_affine
from tests.unit.test_cord_pipeline import _write_onnx_model, cylinder_image


def test_cli_cord_writes_outputs_and_json(tmp_path, monkeypatch, capsys):
    _write_onnx_model(tmp_path / "models", random=False)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 4.0), (80, 70, 8))
    img = save_volume(vol, tmp_path / "sub-01_T2w.nii.gz")
    code = main(["cord", str(img), "--out", str(tmp_path / "out"), "--threads", "1", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["measures"]["n_slices"] == 8
    for suffix in (
        "_seg-cord_soft.nii.gz",
        "_seg-cord_msk.nii.gz",
        "_seg-canal_msk.nii.gz",
        "_csa.csv",
        "_csa_perlevel.csv",
        "_qc-cord.png",
    ):
        assert (tmp_path / "out" / f"sub-01_T2w{suffix}").is_file(), suffix


def test_cli_cord_missing_file_is_exit_2(tmp_path, capsys):
    code = main(["cord", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_cord_no_cord_is_exit_4_with_qc(tmp_path, monkeypatch, capsys):
    _write_onnx_model(tmp_path / "models", random=False, nothing=True)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    rng = np.random.default_rng(0)
    vol = Volume(rng.normal(10, 1, (40, 40, 6)).astype(np.float32), make_affine((0.5, 0.5, 5.0), "LAS"))
    img = save_volume(vol, tmp_path / "flat.nii.gz")
    code = main(["cord", str(img), "--out", str(tmp_path / "out"), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "no spinal cord found" in err
    assert (tmp_path / "out" / "flat_qc-cord.png").is_file()


def test_cli_cord_help_mentions_outputs(capsys):
    try:
        main(["cord", "--help"])
    except SystemExit as e:
        assert e.code == 0
    out = capsys.readouterr().out
    assert "_csa.csv" in out and "--levels" in out and "docs/tools/cord.md" in out
    page = (Path(__file__).resolve().parents[2] / "docs" / "tools" / "cord.md").read_text(encoding="utf-8")
    assert "below_conus_level" in page and "levels_positional" in page  # the long explanations live in the docs


def _csv_rows(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_cli_cord_axial_without_levels_warns_and_writes(tmp_path, monkeypatch, capsys):
    _write_onnx_model(tmp_path / "models", random=False)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 4.0), (80, 70, 8))  # thick axial: the spine model refuses it
    img = save_volume(vol, tmp_path / "sub-01_T2star.nii.gz")
    code = main(["cord", str(img), "--out", str(tmp_path / "out"), "--threads", "1", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["measures"]["levels_source"] == "none"
    assert "spine_semantic" not in payload["models"]
    (warning,) = payload["warnings"]
    assert "no vertebral levels" in warning and "axial" in warning and "--levels VERT_MASK" in warning
    rows = _csv_rows(tmp_path / "out" / "sub-01_T2star_csa.csv")
    assert len(rows) == 8 and {r["levels_source"] for r in rows} == {"none"} and not any(r["level"] for r in rows)
    per = _csv_rows(tmp_path / "out" / "sub-01_T2star_csa_perlevel.csv")
    assert [r["level"] for r in per] == ["all"]


def test_cli_cord_no_auto_levels_skips_the_spine_model(tmp_path, monkeypatch, capsys):
    # a phantom without vertebrae: the spine model (when it runs, or when it is missing) leaves a warning
    _write_onnx_model(tmp_path / "models", random=False)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    vol, _ = cylinder_image("RAS", (1.0, 1.0, 1.0), (48, 48, 48))
    img = save_volume(vol, tmp_path / "iso.nii.gz")
    args = ["cord", str(img), "--threads", "1", "--json"]
    assert main([*args, "--out", str(tmp_path / "a"), "--no-auto-levels"]) == 0
    opted_out = json.loads(capsys.readouterr().out)
    assert opted_out["measures"]["levels_source"] == "none" and opted_out["warnings"] == []
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    auto = json.loads(capsys.readouterr().out)
    assert auto["measures"]["levels_source"] == "none"
    assert any(w.startswith("no vertebral levels: the spine model") for w in auto["warnings"]), auto["warnings"]


def test_cli_cord_estimates_levels_with_the_shipped_models(tmp_path, capsys):
    from neurospine.cord.levels import level_name
    from neurospine.errors import ModelNotFoundError
    from neurospine.models import load_card
    from neurospine.synth import SynthConfig, generate_case

    try:
        load_card("cord_softseg"), load_card("spine_semantic")
    except ModelNotFoundError:
        import pytest

        pytest.skip("shipped models not installed")
    cfg = SynthConfig(levels="T10-S1", plane="sagittal", spacing_mm=(1.2, 1.2, 4.0), fov_mm=(48.0, 120.0, None))
    case = generate_case(21, cfg)
    img = save_volume(case.image, tmp_path / "synth_T2w.nii.gz")
    assert main(["cord", str(img), "--out", str(tmp_path / "out"), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    m = payload["measures"]
    assert m["levels_source"] == "estimated" and m["levels_positional"] == int(m["levels_anchor"] == "positional")
    assert "spine_semantic" in payload["models"]
    assert any("estimated from the whole-spine model" in w for w in payload["warnings"])
    per = _csv_rows(tmp_path / "out" / "synth_T2w_csa_perlevel.csv")
    named = [r["level"] for r in per if r["level"] != "all"]
    assert len(named) >= 5 and set(named) <= set(case.meta["levels_present"]), named
    assert {r["levels_source"] for r in per} == {"estimated"}
    rows = _csv_rows(tmp_path / "out" / "synth_T2w_csa.csv")
    assert sum(bool(r["level"]) for r in rows) >= 0.8 * len(rows)
    assert all(f"csa_mm2_{n}" in m for n in named) and level_name(20) == "L1"


def test_cli_cord_slab_option_reaches_the_segmentation(tmp_path, monkeypatch, capsys):
    """--slab-mm 0 reproduces the slab-free result; a bad value is an argparse error (exit 2), not a traceback."""
    from neurospine.cord import segment as seg_mod

    seen: list[float] = []
    real = seg_mod.segment_volume

    def spy(image, predict, options=None, **kwargs):
        seen.append(options.slab_mm)
        return real(image, predict, options, **kwargs)

    monkeypatch.setattr("neurospine.cord.api.segment_volume", spy)
    _write_onnx_model(tmp_path / "models", random=False)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    vol, _ = cylinder_image("RAS", (0.9, 0.9, 0.9), (30, 30, 40))
    img = save_volume(vol, tmp_path / "iso.nii.gz")
    assert main(["cord", str(img), "--out", str(tmp_path / "a"), "--threads", "1", "--slab-mm", "0"]) == 0
    assert main(["cord", str(img), "--out", str(tmp_path / "b"), "--threads", "1", "--slab-mm", "2.5"]) == 0
    assert seen == [0.0, 2.5]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["cord", str(img), "--out", str(tmp_path / "c"), "--slab-mm", "-1"])
    assert exc.value.code == 2
    assert "thickness >= 0" in capsys.readouterr().err
