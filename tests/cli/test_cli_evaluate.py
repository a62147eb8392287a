"""``neurospine evaluate``: CSV output, options, and one-line errors with exit code 2."""

from __future__ import annotations

import csv
import gzip
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.cli.evaluate import parse_labels
from neurospine.cli.main import main
from neurospine.io import Volume, save_volume


def affine(spacing_mm, origin=(0.0, 0.0, 0.0)):
    aff = np.diag([*spacing_mm, 1.0])
    aff[:3, 3] = origin
    return aff


@pytest.fixture
def pair(tmp_path):
    ref = np.zeros((40, 30, 8), np.uint8)
    ref[0:10, 5:20, 2:6] = 20
    ref[10:13, 5:20, 2:6] = 120
    ref[13:23, 5:20, 2:6] = 21
    pred = ref.copy()
    pred[0:2] = 0
    paths = {}
    for name, arr in (("pred", pred), ("ref", ref)):
        paths[name] = tmp_path / f"{name}.nii.gz"
        save_volume(Volume(arr, affine((0.5, 0.5, 3.0))), paths[name], is_label=True)
    return paths["pred"], paths["ref"], tmp_path


def read_rows(path):
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_writes_csv_and_summary(pair, capsys):
    pred, ref, d = pair
    out = d / "out" / "eval.csv"
    assert main(["evaluate", str(pred), str(ref), "--out", str(out)]) == 0
    rows = read_rows(out)
    summary = {r["group"]: r for r in rows if r["level"] == "summary"}
    assert set(summary) == {"vertebra", "disc", "all"}
    assert summary["all"]["tp"] == "3" and float(summary["all"]["pq"]) > 0.9
    stdout = capsys.readouterr().out
    assert "PQ" in stdout and f"wrote {len(rows)} rows" in stdout


def test_semantic_mode_and_labels(pair):
    pred, ref, d = pair
    out = d / "sem.csv"
    assert main(["evaluate", str(pred), str(ref), "--out", str(out), "--mode", "semantic", "--labels", "20,120"]) == 0
    rows = read_rows(out)
    assert [r["label"] for r in rows] == ["20", "120"]
    assert float(rows[0]["dice"]) == pytest.approx(2 * 8 / 18)


def test_match_and_no_distances_options(pair):
    pred, ref, d = pair
    out = d / "m.csv"
    args = ["evaluate", str(pred), str(ref), "--out", str(out)]
    args += ["--match", "label", "--no-distances", "--empty", "perfect"]
    assert main(args) == 0
    rows = read_rows(out)
    assert all(r["assd_mm"] == "nan" for r in rows if r["level"] == "instance")


def test_grid_mismatch_is_a_one_line_error(pair, capsys):
    pred, ref, d = pair
    other = d / "shifted.nii.gz"
    img = nib.load(pred)
    save_volume(Volume(np.asarray(img.dataobj), affine((0.5, 0.5, 3.0), origin=(5.0, 0.0, 0.0))), other)
    out = d / "never.csv"
    assert main(["evaluate", str(other), str(ref), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("neurospine: error:")
    assert str(other) in err and str(ref) in err and "--resample" in err
    assert not out.exists()
    assert main(["evaluate", str(other), str(ref), "--out", str(out), "--resample"]) == 0
    assert out.exists()


@pytest.mark.parametrize("problem", ["missing", "truncated", "not_image"])
def test_bad_input_exits_2_without_output(pair, capsys, problem):
    pred, ref, d = pair
    bad = d / "bad.nii.gz"
    if problem == "truncated":
        bad.write_bytes(gzip.compress(pred.read_bytes())[:200])
    elif problem == "not_image":
        bad.write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))
    out = d / "bad.csv"
    assert main(["evaluate", str(bad), str(ref), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("neurospine: error:") and str(bad) in err and "Traceback" not in err
    assert not out.exists()


def test_parse_labels():
    assert parse_labels("41, 42,20-22") == [20, 21, 22, 41, 42]
    for bad in ("", "a", "5-2", "0", "-3"):
        with pytest.raises(Exception, match="label list"):
            parse_labels(bad)


def test_bad_labels_is_a_usage_error(pair, capsys):
    pred, ref, d = pair
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(pred), str(ref), "--out", str(d / "x.csv"), "--labels", "L1"])
    assert e.value.code == 2
    assert "bad label list" in capsys.readouterr().err


def test_bad_threshold_is_a_usage_error(pair, capsys):
    pred, ref, d = pair
    with pytest.raises(SystemExit) as e:
        main(["evaluate", str(pred), str(ref), "--out", str(d / "x.csv"), "--threshold", "1.5"])
    assert e.value.code == 2 and "threshold" in capsys.readouterr().err


def test_help_explains_inputs_outputs_and_example(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    assert "PRED" in text and "REF" in text and "--out" in text and "examples:" in text and "ASSD" in text
    page = (Path(__file__).resolve().parents[2] / "docs" / "tools" / "evaluate.md").read_text(encoding="utf-8")
    assert "inf" in page and "--empty perfect" in page


def test_console_entry_point_has_no_traceback(pair):
    _pred, ref, d = pair
    proc = subprocess.run(
        [sys.executable, "-m", "neurospine", "evaluate", str(d / "nope.nii.gz"), str(ref), "--out", str(d / "o.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "file not found" in proc.stderr
