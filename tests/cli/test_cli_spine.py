"""``neurospine spine`` in-process: outputs, JSON summary, exit codes, help."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurospine.cli.main import main
from neurospine.io import Volume, save_volume
from tests.conftest import make_affine
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model


@pytest.fixture
def threshold_model(tmp_path, monkeypatch):
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))


def test_cli_spine_writes_the_five_outputs(tmp_path, threshold_model, capsys):
    img = save_volume(lumbar_phantom("LAS"), tmp_path / "sub-01_T2w.nii.gz")
    code = main(["spine", str(img), "--out", str(tmp_path / "out"), "--threads", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "5 vertebrae" in out and "L1 L2 L3 L4 L5 S1" in out
    for suffix in (
        "_seg-spine_msk.nii.gz",
        "_seg-vert_msk.nii.gz",
        "_seg-spine_ctd.json",
        "_seg-spine_snp.png",
        "_spine.csv",
    ):
        assert (tmp_path / "out" / f"sub-01_T2w{suffix}").is_file(), suffix


def test_cli_spine_json(tmp_path, threshold_model, capsys):
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    assert main(["spine", str(img), "--out", str(tmp_path / "o"), "--json", "--no-snapshot"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["measures"]["naming_anchor"] == "S1"
    assert "snapshot" not in payload["outputs"] and payload["models"]["spine_semantic"] == "0.0.1-test"


def test_cli_spine_axial_stack_is_exit_2(tmp_path, threshold_model, capsys):
    rng = np.random.default_rng(0)
    vol = Volume(rng.random((64, 64, 10)).astype(np.float32), make_affine((0.6, 0.6, 5.0), "RAS"))
    img = save_volume(vol, tmp_path / "ax.nii.gz")
    assert main(["spine", str(img), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "axial" in err and "sagittal" in err and "Traceback" not in err


def test_cli_spine_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["spine", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path / "o")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_cli_spine_help_explains_outputs(capsys):
    with pytest.raises(SystemExit):
        main(["spine", "--help"])
    out = capsys.readouterr().out
    assert "_seg-vert_msk.nii.gz" in out and "Example" in out


def test_cli_spine_extra_vertebra_option(tmp_path, threshold_model, capsys, monkeypatch):
    import neurospine.spine.api as api

    seen: dict[str, object] = {}
    real = api.run_file

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "run_file", spy)
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    assert main(["spine", str(img), "--out", str(tmp_path / "o"), "--no-snapshot", "--extra-vertebra", "t13"]) == 0
    assert seen["extra_vertebra"] == "t13"
    with pytest.raises(SystemExit):
        main(["spine", str(img), "--out", str(tmp_path / "o"), "--extra-vertebra", "t11"])
    assert "--extra-vertebra" in capsys.readouterr().err
