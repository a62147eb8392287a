"""Brain-age feature model: tables, missing columns, fit/predict/recalibrate round trip on real data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from neurospine.brainage.features import FeatureTable, apply_aliases, read_table
from neurospine.brainage.model import BrainAgeModel, FitConfig, fit_table
from neurospine.brainage.recalibration import recalibrate_table
from neurospine.errors import InputError

FAST = FitConfig(hidden=(32, 16), max_epochs=150, patience=20, seed=0)


def write_subset(src: Path, dst: Path, rows: list[int], rename: dict[str, str] | None = None) -> Path:
    with src.open(newline="", encoding="utf-8") as fh:
        data = list(csv.reader(fh))
    header = [rename.get(h, h) if rename else h for h in data[0]]
    with dst.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in rows:
            w.writerow(data[1 + i])
    return dst


def test_missing_columns_error_lists_them(tmp_path):
    t = FeatureTable(str(tmp_path / "x.csv"), ["a", "b"], ["age", "f1"], np.array([[30.0, 1.0], [40.0, 2.0]]))
    with pytest.raises(InputError) as e:
        t.matrix(["f1", "Left-Hippocampus", "rh_S_central_thickness"])
    msg = str(e.value)
    assert "2 feature column(s)" in msg and "Left-Hippocampus" in msg and "rh_S_central_thickness" in msg


def test_thalamus_alias_applied_only_when_target_absent_or_zero():
    vals = np.array([[1.0, 7000.0], [2.0, 7100.0]])
    t = apply_aliases(FeatureTable("t", ["a", "b"], ["age", "Left-Thalamus-Proper"], vals))
    assert "Left-Thalamus" in t.columns and "Left-Thalamus-Proper" not in t.columns
    both = np.array([[6900.0, 0.0], [7000.0, 0.0]])
    t2 = apply_aliases(FeatureTable("t", ["a", "b"], ["Left-Thalamus", "Left-Thalamus-Proper"], both))
    assert t2.column("Left-Thalamus").tolist() == [6900.0, 7000.0]
    zero_target = np.array([[0.0, 7000.0], [0.0, 7100.0]])
    t3 = apply_aliases(FeatureTable("t", ["a", "b"], ["Left-Thalamus", "Left-Thalamus-Proper"], zero_target))
    assert t3.column("Left-Thalamus").tolist() == [7000.0, 7100.0]


def test_read_table_errors(tmp_path):
    with pytest.raises(InputError):
        read_table(tmp_path / "absent.csv")
    p = tmp_path / "bad.csv"
    p.write_text("sub_id,age,f\ns1,30\n", encoding="utf-8")
    with pytest.raises(InputError):
        read_table(p)


def test_fit_predict_recalibrate_round_trip_real(shared_data, tmp_path):
    src = shared_data / "brain_features" / "data_fcon1000.csv"
    rng = np.random.default_rng(0)
    rows = rng.choice(1078, size=260, replace=False).tolist()
    table = read_table(write_subset(src, tmp_path / "sub.csv", rows[:200]))
    model = fit_table(table, cfg=FAST)
    assert model.conformal.n == 30 and len(model.features) > 150
    saved = model.save(tmp_path / "m")
    again = BrainAgeModel.load(saved)
    test = read_table(write_subset(src, tmp_path / "test.csv", rows[200:]))
    r1 = model.predict_table(test, passes=20)
    r2 = again.predict_table(test, passes=20)
    assert [r["age_pred"] for r in r1] == pytest.approx([r["age_pred"] for r in r2])
    pred = np.array([r["age_pred"] for r in r1])
    age = np.array([r["age"] for r in r1])
    assert np.abs(pred - age).mean() < np.abs(age - age.mean()).mean()  # beats predicting the mean
    for r in r1:
        assert r["lo95"] <= r["age_pred"] <= r["hi95"] and r["sd"] > 0
        assert r["gap_z"] == pytest.approx(r["gap"] / r["sd"])
        assert 0 <= r["p_accelerated"] <= 1
    # a site that adds 10 years to every age: recalibration removes the offset
    shifted = FeatureTable(test.path, test.ids, test.columns, test.values.copy())
    shifted.values[:, shifted.columns.index("age")] += 10.0
    local = shifted.subset(list(range(20)))
    rec = recalibrate_table(model, local, mode="offset", passes=20)
    assert rec.offset == pytest.approx(10.0, abs=3.0) and rec.scale == 1.0 and rec.conformal.n == 20
    r3 = rec.predict_table(shifted.subset(list(range(20, 60))), passes=20)
    err_rec = np.mean([abs(r["gap"]) for r in r3])
    err_raw = np.mean([abs(r["gap"]) for r in model.predict_table(shifted.subset(list(range(20, 60))), passes=20)])
    assert err_rec < err_raw - 4.0


def test_missing_features_at_predict(shared_data, tmp_path):
    src = shared_data / "brain_features" / "data_fcon1000.csv"
    table = read_table(write_subset(src, tmp_path / "sub.csv", list(range(100))))
    model = fit_table(table, cfg=FitConfig(hidden=(8,), max_epochs=5, patience=5))
    drop = write_subset(
        src,
        tmp_path / "drop.csv",
        list(range(5)),
        rename={"Left-Hippocampus": "LeftHippo", "rh_S_central_thickness": "x"},
    )
    with pytest.raises(InputError) as e:
        model.predict_table(read_table(drop))
    assert "Left-Hippocampus" in str(e.value) and "rh_S_central_thickness" in str(e.value)


def test_fit_predict_work_without_torch(tmp_path):
    """fit/predict/recalibrate are user commands: they must not need torch or onnxruntime."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None\n"
        "import numpy as np\n"
        "from neurospine.brainage import fit_arrays, recalibrate_arrays, FitConfig\n"
        "rng = np.random.default_rng(0); x = rng.normal(size=(120, 5)); y = 40 + 10 * x[:, 0]\n"
        "m = fit_arrays(x, y, list('abcde'), FitConfig(hidden=(8,), max_epochs=5))\n"
        "r = recalibrate_arrays(m, x[:20], y[:20] + 3, mode='offset', passes=5)\n"
        "print(float(m.predictive(x[:3], passes=5).median[0]), r.offset)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
