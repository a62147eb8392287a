"""``neurospine cord`` in-process: outputs, JSON, exit codes."""

from __future__ import annotations

import json

import numpy as np

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
    assert "_csa.csv" in out and "--levels" in out
