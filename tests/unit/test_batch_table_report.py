"""Cohort table export (csv/parquet, units in names, QC marks joined) and the HTML report (escaping)."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.batch import BatchConfig, run_batch
from neurospine.batch.demo import make_demo_dataset
from neurospine.batch.report import human_number, render_report, write_report
from neurospine.batch.table import cohort_rows, export_table, import_marks
from neurospine.errors import InputError

EVIL = '<img src=x onerror="alert(1)">&x'


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cohort")
    make_demo_dataset(base / "ds", n_subjects=3, shape=(8, 32, 48), corrupt=1)
    run_batch(BatchConfig(base / "ds", base / "out", tasks=["info", "selftest"], progress=False, options={}))
    return base / "out"


def test_table_csv_columns_and_rows(out: Path, tmp_path: Path) -> None:
    path = export_table(out, tmp_path / "cohort.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 6  # 3 scans x 2 tasks, one row each
    cols = list(rows[0])
    assert cols[:5] == ["subject", "session", "suffix", "acq", "task"]
    assert {"foreground_volume_mm3", "spacing_x_mm", "fov_volume_mm3", "qc_mark", "input_sha256"} <= set(cols)
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(done) == 4 and len(failed) == 2
    assert all(r["foreground_volume_mm3"] == "" and "corrupt" in r["error"] for r in failed)
    assert all(float(r["foreground_volume_mm3"]) > 0 and r["shape_x_vox"] == "8" for r in done)
    assert {r["subject"] for r in rows} == {"001", "002", "003"}


def test_table_parquet_types(out: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = export_table(out, tmp_path / "cohort.parquet")
    table = pq.read_table(str(path))
    assert table.num_rows == 6
    assert str(table.schema.field("foreground_volume_mm3").type) == "double"
    assert str(table.schema.field("subject").type) == "string"  # "001" keeps its zeros
    assert table.column("subject").to_pylist()[0] == "001"


def test_marks_roundtrip_into_table_and_report(out: Path, tmp_path: Path) -> None:
    _columns, rows = cohort_rows(out)
    done = [r for r in rows if r["status"] == "done"]
    marks = {
        "format": "neurospine-qc-marks/1",
        "marks": {done[0]["case_key"]: {"mark": "fail", "note": EVIL}, done[1]["case_key"]: "artifact"},
    }
    mfile = tmp_path / "qc_marks.json"
    mfile.write_text(json.dumps(marks))
    path = export_table(out, tmp_path / "t.csv", marks_file=mfile)
    by_key = {r["case_key"]: r for r in csv.DictReader(path.open())}
    assert by_key[done[0]["case_key"]]["qc_mark"] == "fail"
    assert by_key[done[0]["case_key"]]["qc_note"] == EVIL
    assert by_key[done[1]["case_key"]]["qc_mark"] == "artifact"
    page = write_report(out, tmp_path / "r.html").read_text()
    embedded = re.search(r'<script type="application/json" id="ns-marks">(.*?)</script>', page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1))[done[0]["case_key"]]["mark"] == "fail"
    assert EVIL not in page and "<img src=x" not in page

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"marks": {"x": {"mark": "meh"}}}))
    with pytest.raises(InputError, match="unknown QC mark"):
        import_marks(out, bad)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        import_marks(out, bad)


def test_report_rows_and_escaping(tmp_path: Path) -> None:
    scans = tmp_path / "scans"
    scans.mkdir()
    evil_name = 'x<script>alert("p")<'
    nib.save(
        nib.Nifti1Image(np.random.default_rng(0).random((6, 20, 20)).astype(np.float32), np.eye(4)),
        str(scans / f"{evil_name}.nii.gz"),
    )
    (scans / "bad'\"&.nii.gz").write_bytes(b"\x1f\x8b\x08junk")
    run_batch(BatchConfig(scans, tmp_path / "o", tasks=["info"], progress=False))
    page = render_report(tmp_path / "o")
    assert page.count("<tr class=case ") == 2
    assert "<script>alert" not in page and "bad'\"&" not in page
    assert "x&lt;script&gt;alert(&quot;p&quot;)&lt;" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
    assert page.count("<script") == 2  # the marks JSON and the page's own code, nothing injected
    imgs = re.findall(r'<img class=thumb src="([^"]+)"', page)
    assert len(imgs) == 1 and imgs[0].startswith("data:image/png;base64,")  # embedded: works when moved
    png = base64.b64decode(imgs[0].split(",", 1)[1])
    snap = next((tmp_path / "o/derivatives/neurospine").rglob("*_snapshot.png"))
    assert png == snap.read_bytes()
    assert "no picture (failed)" in page
    assert 'src="sub-' not in page and "file:" not in page  # no link to a file beside the page


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (37130.4, "37,130"),
        (3.713e04, "37,130"),
        (1234567, "1,234,567"),
        (123.456, "123.5"),
        (12.3456, "12.35"),
        (2.5, "2.5"),
        (1.0, "1"),
        (0.012345, "0.0123"),
        (0.00012345, "0.000123"),
        (-4.2e-7, "-0.00000042"),
        (0.0, "0"),
        (float("nan"), "n/a"),
        (7, "7"),
        ("T2w", "T2w"),
    ],
)
def test_human_numbers(value: object, text: str) -> None:
    assert human_number(value) == text
    assert "e+" not in human_number(value) and "e-" not in human_number(value)


def test_table_without_database(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no neurospine results database"):
        export_table(tmp_path, tmp_path / "x.csv")
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_large_pictures_are_scaled_down_when_embedded(tmp_path: Path) -> None:
    from PIL import Image

    from neurospine.batch.report import MAX_SIDE_PX, data_uri

    big = tmp_path / "big.png"
    Image.fromarray((np.random.default_rng(0).random((1200, 2000)) * 255).astype(np.uint8)).save(big)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(small)
    for path, size in ((big, (MAX_SIDE_PX, 480)), (small, (60, 40))):
        uri = data_uri(path)
        assert uri is not None and uri.startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size == size
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert data_uri(tmp_path / "broken.png") is None and data_uri(tmp_path / "missing.png") is None
