"""``neurospine brainage`` in-process through ``neurospine.cli.main.main``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from neurospine.cli.main import main

EXPECTED = ["id", "age_pred", "sd", "lo95", "hi95", "gap", "gap_z"]


def _subset(shared_data, dst, rows, drop=()):
    src = shared_data / "brain_features" / "data_fcon1000.csv"
    with src.open(newline="", encoding="utf-8") as fh:
        data = list(csv.reader(fh))
    keep = [j for j, h in enumerate(data[0]) if h not in drop]
    with dst.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        for r in [data[0]] + [data[1 + i] for i in rows]:
            w.writerow([r[j] for j in keep])
    return dst


def _read(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_cli_fit_predict_recalibrate(shared_data, tmp_path):
    rng = np.random.default_rng(1)
    rows = rng.choice(1078, size=100, replace=False).tolist()
    train = _subset(shared_data, tmp_path / "train.csv", rows[:70])
    test = _subset(shared_data, tmp_path / "test.csv", rows[70:])
    assert (
        main(["brainage", "fit", str(train), "--age-column", "age", "--out", str(tmp_path / "m"), "--max-epochs", "15"])
        == 0
    )
    assert (tmp_path / "m.npz").is_file()
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["framework"] == "numpy-npz" and len(card["sha256"]) == 64
    out = tmp_path / "pred.csv"
    assert (
        main(
            ["brainage", "predict", str(test), "--model", str(tmp_path / "m.npz"), "--passes", "20", "--out", str(out)]
        )
        == 0
    )
    got = _read(out)
    assert list(got[0].keys())[:7] == EXPECTED and len(got) == 30
    assert all(float(r["lo95"]) <= float(r["age_pred"]) <= float(r["hi95"]) for r in got)
    assert (
        main(["brainage", "recalibrate", str(test), "--model", str(tmp_path / "m.npz"), "--out", str(tmp_path / "m2")])
        == 0
    )
    assert (tmp_path / "m2.npz").is_file() and (tmp_path / "m2.json").is_file()
    assert "cross_fitted_local_mae_years" in json.loads((tmp_path / "m2.json").read_text())["notes"]
    m3 = tmp_path / "m3"
    args = ["brainage", "recalibrate", str(test), "--model", str(tmp_path / "m.npz"), "--out", str(m3)]
    assert main([*args, "--mode", "features+linear"]) == 0
    from neurospine.brainage.model import BrainAgeModel

    site = BrainAgeModel.load(tmp_path / "m3.npz")
    assert site.feature_offset is not None and site.meta["recalibration"]["mode"] == "features+linear"


def test_cli_missing_columns_exit_2(shared_data, tmp_path, capsys):
    train = _subset(shared_data, tmp_path / "train.csv", list(range(80)))
    bad = _subset(shared_data, tmp_path / "bad.csv", list(range(5)), drop=("Left-Hippocampus", "eTIV"))
    from neurospine.brainage.features import read_table
    from neurospine.brainage.model import FitConfig, fit_table

    fit_table(read_table(train), cfg=FitConfig(hidden=(8,), max_epochs=3)).save(tmp_path / "m")
    rc = main(["brainage", "predict", str(bad), "--model", str(tmp_path / "m.npz"), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "Left-Hippocampus" in err and "eTIV" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["brainage", "predict", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "p.csv")]) == 2
    assert main(["brainage", "t1", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path / "p.csv")]) in (2, 3)
    assert "Traceback" not in capsys.readouterr().err


def test_cli_predict_with_shipped_model(shared_data, tmp_path):
    from neurospine.models.registry import shipped_dir

    if not (shipped_dir() / "brainage_features.json").is_file():
        pytest.skip("brainage_features not shipped in this checkout")
    src = _subset(shared_data, tmp_path / "t.csv", list(range(0, 1078, 90)))
    out = tmp_path / "pred.csv"
    assert main(["brainage", "predict", str(src), "--out", str(out), "--passes", "30"]) == 0
    got = _read(out)
    assert len(got) == 12 and all(float(r["sd"]) > 0 for r in got)


def test_cli_t1_with_shipped_model(shared_data, tmp_path):
    from neurospine.models.registry import shipped_dir

    if not (shipped_dir() / "brainage_t1.json").is_file():
        pytest.skip("brainage_t1 not shipped in this checkout")
    img = sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[0]
    ages = tmp_path / "ages.csv"
    ages.write_text(f"id,age\n{img.name[:-7]},40.0\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    assert main(["brainage", "t1", str(img), "--out", str(out), "--ages", str(ages), "--passes", "20"]) == 0
    (row,) = _read(out)
    assert 0 < float(row["age_pred"]) < 120 and float(row["lo95"]) <= float(row["hi95"])
    assert float(row["gap"]) == pytest.approx(float(row["age_pred"]) - 40.0, abs=1e-2)
