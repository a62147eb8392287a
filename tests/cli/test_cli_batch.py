"""``neurospine batch``, ``table`` and ``report`` from the command line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from neurospine.batch.demo import make_demo_dataset
from neurospine.cli.main import main


def test_help_explains_inputs_outputs_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd, words in (
        ("batch", ("DATASET", "--tasks", "--jobs", "--scheduler", "derivatives", "Example")),
        ("table", ("csv", "parquet", "--marks", "Example")),
        ("report", ("HTML", "--marks", "Example")),
    ):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        text = capsys.readouterr().out
        assert all(w in text for w in words), (cmd, words)
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    assert "selftest" not in capsys.readouterr().out  # test helper stays out of the listing


def test_batch_table_report_roundtrip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    make_demo_dataset(ds, n_subjects=3, shape=(8, 32, 48), t1w=True)
    out = tmp_path / "out"
    rc = main(
        [
            "batch",
            str(ds),
            "--out",
            str(out),
            "--tasks",
            "info",
            "--suffix",
            "T2w",
            "--acq",
            "sag",
            "--subjects",
            "sub-001",
            "002",
            "--jobs",
            "2",
            "--option",
            "snapshot=true",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "2 cases: 2 done" in text
    rc = main(
        [
            "batch",
            str(ds),
            "--out",
            str(out),
            "--tasks",
            "info",
            "--suffix",
            "T2w",
            "--acq",
            "sag",
            "--subjects",
            "sub-001",
            "002",
            "--option",
            "snapshot=true",
        ]
    )
    assert rc == 0 and "2 already done" in capsys.readouterr().out

    assert main(["table", str(out)]) == 0
    table = Path(capsys.readouterr().out.strip())
    assert table == out / "derivatives/neurospine/cohort.csv"
    rows = list(csv.DictReader(table.open()))
    assert [r["subject"] for r in rows] == ["001", "002"]

    assert main(["report", str(out)]) == 0
    page = Path(capsys.readouterr().out.strip())
    assert page.name == "qc_report.html" and page.read_text().count("<tr class=case ") == 2
    marks = tmp_path / "marks.json"
    marks.write_text(json.dumps({"marks": {rows[0]["case_key"]: {"mark": "pass", "note": "ok"}}}))
    assert main(["report", str(out), "--marks", str(marks)]) == 0
    capsys.readouterr()
    assert main(["table", str(out), "--format", "parquet", "--out", str(tmp_path / "c.parquet")]) == 0
    import pyarrow.parquet as pq

    t = pq.read_table(str(tmp_path / "c.parquet")).to_pylist()
    assert t[0]["qc_mark"] == "pass" and t[0]["qc_note"] == "ok" and t[1]["qc_mark"] is None


def test_failures_and_bad_input_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "ds"
    make_demo_dataset(ds, n_subjects=2, shape=(8, 32, 48), corrupt=1)
    proc = subprocess.run(
        [sys.executable, "-m", "neurospine", "batch", str(ds), "--out", str(tmp_path / "o"), "--tasks", "info"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "1 failed" in proc.stdout and "FAILED sub-002" in proc.stdout
    assert "Traceback" not in proc.stderr and "corrupt" in proc.stderr  # one warning line per failed case
    assert main(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--tasks", "info"]) == 2
    assert "dataset not found" in capsys.readouterr().err
    assert main(["batch", str(ds), "--out", str(tmp_path / "o"), "--tasks", "info,bogus"]) == 2
    assert "unknown task 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # a usage error: one line, exit 2
        main(["batch", str(ds), "--out", str(tmp_path / "o"), "--tasks", "info", "--jobs", "0"])
    assert e.value.code == 2 and "--jobs" in capsys.readouterr().err
    assert main(["table", str(tmp_path / "nothing")]) == 2
    assert "no neurospine results database" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["batch", str(ds), "--out", "x", "--tasks", "info", "--option", "no-equals"])
    assert e.value.code == 2
