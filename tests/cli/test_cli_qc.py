"""``neurospine spine IMAGE -o OUT --qc QC_DIR``: single runs add themselves to one self-contained QC page."""

from __future__ import annotations

import base64
import re
import shutil

import pytest

from neurospine.cli.main import main
from neurospine.io import save_volume
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model


@pytest.fixture
def threshold_model(tmp_path, monkeypatch):
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))


def test_spine_qc_page_collects_runs(tmp_path, threshold_model, capsys) -> None:
    qc = tmp_path / "qc"
    for name, codes in (("sub-01_T2w", "LAS"), ("sub-02_ses-3_T2w", "PIR")):
        img = save_volume(lumbar_phantom(codes), tmp_path / f"{name}.nii.gz")
        assert main(["spine", str(img), "--out", str(tmp_path / "out"), "--qc", str(qc)]) == 0
    assert f"qc page    {qc / 'qc_report.html'}" in capsys.readouterr().out
    page = (qc / "qc_report.html").read_text()
    assert page.count("<tr class=case ") == 2
    assert "sub-01" in page and "ses-3" in page
    uris = re.findall(r'<img class=thumb src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 2 and all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    # the measures read as numbers a person writes (volumes in the thousands with separators)
    cells = re.findall(r"<tr><td>volume_mm3_L\d</td><td>([^<]+)</td></tr>", page)
    assert cells and all(re.fullmatch(r"\d{1,3}(,\d{3})*(\.\d+)?", c) for c in cells), cells
    assert "e+0" not in page
    # the page needs nothing beside it: delete the outputs and the per-run records, it still holds the pictures
    shutil.rmtree(tmp_path / "out")
    moved = tmp_path / "moved.html"
    shutil.copy(qc / "qc_report.html", moved)
    assert len(re.findall(r'src="data:image/png;base64,', moved.read_text())) == 2
    # re-running a scan replaces its row instead of adding one
    img = tmp_path / "sub-01_T2w.nii.gz"
    assert main(["spine", str(img), "--out", str(tmp_path / "out"), "--qc", str(qc), "--no-snapshot"]) == 0
    page = (qc / "qc_report.html").read_text()
    assert page.count("<tr class=case ") == 2 and page.count("no picture") == 1
