"""``neurospine slice2d`` in-process: help text, a run with the tiny model, input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neurospine.cli.main import main

pytest.importorskip("onnx")


def test_help_mentions_inputs_outputs(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["slice2d", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in (
        "_slice2d_msk.nii.gz",
        "_radiomics.csv",
        "_heights.csv",
        "--slice",
        "Example",
        "docs/tools/slice2d.md",
    ):
        assert word in text
    page = (Path(__file__).resolve().parents[2] / "docs" / "tools" / "slice2d.md").read_text(encoding="utf-8")
    assert "only the chosen slice" in page


def test_cli_run_json(tmp_path, monkeypatch, capsys) -> None:
    from neurospine.slice2d.tiny_model import phantom_plane, write_tiny_model

    write_tiny_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    img, _ = phantom_plane()
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "ph.png")
    code = main(["slice2d", str(tmp_path / "ph.png"), "--out", str(tmp_path / "o"), "--json", "--threads", "1"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["measures"]["n_bodies"] == 4
    assert (tmp_path / "o" / "ph_slice2d_msk.nii.gz").is_file()
    assert (tmp_path / "o" / "ph_slice2d.png").is_file()


def test_cli_bad_input_exit_2(tmp_path, capsys) -> None:
    (tmp_path / "bad.png").write_bytes(b"nope")
    code = main(["slice2d", str(tmp_path / "bad.png"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.png" in err and "Fix:" in err and "Traceback" not in err


def test_cli_bad_level(tmp_path) -> None:
    code = main(["slice2d", str(tmp_path / "x.png"), "--out", str(tmp_path / "o"), "--lowest-level", "Q9"])
    assert code == 2
