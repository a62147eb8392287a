"""``neurospine demo``: a synthetic scan through the spine pipeline, offline."""

from __future__ import annotations

import pytest

from neurospine.cli.main import main
from tests.unit.test_spine_support import write_threshold_model


def test_demo_writes_scan_truth_and_outputs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("neurospine.synth")
    write_threshold_model(tmp_path / "models")  # fast, deterministic stand-in for the shipped model
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--levels", "L1-S1", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert str(out / "synthetic_spine.nii.gz") in printed and "truth:" in printed
    assert (out / "synthetic_spine.nii.gz").is_file()
    assert (out / "synthetic_spine_truth-vert_msk.nii.gz").is_file()
    for suffix in (
        "_seg-spine_msk.nii.gz",
        "_seg-vert_msk.nii.gz",
        "_seg-spine_ctd.json",
        "_seg-spine_snp.png",
        "_spine.csv",
    ):
        assert (out / "spine" / f"synthetic_spine{suffix}").is_file(), suffix


def test_demo_help(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "nothing is downloaded" in capsys.readouterr().out


def test_demo_without_out_writes_a_temporary_folder_and_says_where(tmp_path, monkeypatch, capsys):
    import tempfile

    pytest.importorskip("neurospine.synth")
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["demo", "--levels", "L1-S1", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    made = list((tmp_path / "tmp").glob("neurospine-demo-*"))
    assert len(made) == 1 and (made[0] / "synthetic_spine.nii.gz").is_file()
    assert f"everything is in {made[0].resolve()}" in printed
    assert not any(work.iterdir())  # nothing lands in the current folder
