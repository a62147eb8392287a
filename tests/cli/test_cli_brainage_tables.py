"""Issue 18, brain age on real-world tables: missing columns, model names, ages matched by id.

Pinned examples: a table lacking the 8 whole-brain columns recalibrates and predicts (with
``brainage_features_regional``, named in one warning line) or is refused naming the columns; every
feature-model name ``neurospine models`` prints works as ``--model``; ``--ages`` matches on ``ixi_id``;
an image without an age warns.
"""

from __future__ import annotations

import csv
import json
import logging

import numpy as np
import pytest

from neurospine.cli.main import main

#: the columns an external site's FreeSurfer export lacked in issue 18
EIGHT_GLOBAL = (
    "eTIV",
    "BrainSegVolNotVent",
    "CortexVol",
    "lhCerebralWhiteMatterVol",
    "rhCerebralWhiteMatterVol",
    "CerebralWhiteMatterVol",
    "MaskVol",
    "SurfaceHoles",
)


def _table(shared_data, dst, rows, *, drop=(), blank=()):
    """Rows of the fcon1000 table, without the ``drop`` columns and with the ``blank`` columns emptied."""
    src = shared_data / "brain_features" / "data_fcon1000.csv"
    with src.open(newline="", encoding="utf-8") as fh:
        data = list(csv.reader(fh))
    keep = [j for j, h in enumerate(data[0]) if h not in drop]
    empty = {j for j, h in enumerate(data[0]) if h in blank}
    with dst.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([data[0][j] for j in keep])
        for i in rows:
            w.writerow(["" if j in empty else data[1 + i][j] for j in keep])
    return dst


def _read(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _warnings(caplog, name="neurospine.brainage"):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith(name)]


@pytest.mark.parametrize("how", ["absent", "empty"])
def test_recalibrate_and_predict_a_table_without_the_8_global_columns(shared_data, tmp_path, caplog, how):
    rows = np.random.default_rng(3).choice(1078, size=50, replace=False).tolist()
    kw = {"drop": EIGHT_GLOBAL} if how == "absent" else {"blank": EIGHT_GLOBAL}
    local = _table(shared_data, tmp_path / "local.csv", rows[:25], **kw)
    other = _table(shared_data, tmp_path / "other.csv", rows[25:], **kw)
    with caplog.at_level(logging.WARNING):
        assert main(["brainage", "recalibrate", str(local), "--out", str(tmp_path / "site")]) == 0
    warned = _warnings(caplog)
    assert len(warned) == 1 and "brainage_features_regional" in warned[0]
    assert all(c in warned[0] for c in EIGHT_GLOBAL)
    card = json.loads((tmp_path / "site.json").read_text())
    assert "brainage_features_regional" in card["description"]
    assert not set(EIGHT_GLOBAL) & set(card["inputs"]["features"])
    for model in ([], ["--model", str(tmp_path / "site.npz")], ["--model", str(tmp_path / "site")]):
        out = tmp_path / "pred.csv"
        assert main(["brainage", "predict", str(other), *model, "--passes", "20", "--out", str(out)]) == 0
        got = _read(out)
        assert len(got) == 25 and all(float(r["lo95"]) <= float(r["age_pred"]) <= float(r["hi95"]) for r in got)
        out.unlink()


def test_named_model_lacking_columns_is_refused_with_the_list(shared_data, tmp_path, capsys):
    table = _table(shared_data, tmp_path / "t.csv", range(5), drop=EIGHT_GLOBAL)
    out = tmp_path / "p.csv"
    rc = main(["brainage", "predict", str(table), "--model", "brainage_features", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert all(c in err for c in EIGHT_GLOBAL) and "--model brainage_features_regional" in err
    assert not out.exists()


def test_table_lacking_regional_columns_too_is_refused(shared_data, tmp_path, capsys):
    table = _table(shared_data, tmp_path / "t.csv", range(30), drop=(*EIGHT_GLOBAL, "Left-Hippocampus"))
    for cmd in ("predict", "recalibrate"):
        out = tmp_path / cmd
        assert main(["brainage", cmd, str(table), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "Left-Hippocampus" in err and "eTIV" in err and len(err.strip().splitlines()) == 1
        assert not list(tmp_path.glob(f"{cmd}*"))


def test_every_feature_model_name_from_models_works_as_model(shared_data, tmp_path, capsys):
    assert main(["models", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in cards if c["framework"] == "numpy-npz"]
    assert {"brainage_features", "brainage_features_regional"} <= set(names)
    table = _table(shared_data, tmp_path / "t.csv", range(12))
    for name in names:
        pred, site = tmp_path / f"{name}.csv", tmp_path / f"{name}_site"
        assert main(["brainage", "predict", str(table), "--model", name, "--passes", "10", "--out", str(pred)]) == 0
        assert len(_read(pred)) == 12
        assert (
            main(["brainage", "recalibrate", str(table), "--model", name, "--mode", "offset", "--out", str(site)]) == 0
        )
        assert name in json.loads(site.with_suffix(".json").read_text())["description"]
    other = next(c["name"] for c in cards if c["framework"] != "numpy-npz")
    assert main(["brainage", "predict", str(table), "--model", other, "--out", str(tmp_path / "x.csv")]) == 2
    assert "not a feature-table model" in capsys.readouterr().err
    assert main(["brainage", "predict", str(table), "--model", "no_such_model", "--out", str(tmp_path / "x.csv")]) == 2
    assert "brainage_features_regional" in capsys.readouterr().err


# ---------------------------------------------------------------- brainage t1 --ages


@pytest.fixture
def ixi_pair(shared_data):
    folder = shared_data / "ixi_t1_2mm"
    with (folder / "ages.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:2]
    return [folder / r["file"] for r in rows], rows


def _ages_file(path, header, rows):
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_t1_ages_match_ixi_id_and_warn_for_a_missing_subject(ixi_pair, tmp_path, caplog):
    images, rows = ixi_pair
    # the shared IXI ages file as it is: ids in ixi_id (IXI012-HH-1211 for IXI012-HH-1211_T1.nii.gz)
    ages = _ages_file(tmp_path / "ages.csv", ["ixi_id", "site", "age"], [[rows[0]["ixi_id"], "HH", rows[0]["age"]]])
    out = tmp_path / "pred.csv"
    with caplog.at_level(logging.WARNING):
        args = ["brainage", "t1", *map(str, images), "--ages", str(ages), "--passes", "2", "--threads", "1"]
        assert main([*args, "--out", str(out)]) == 0
    got = {r["id"]: r for r in _read(out)}
    first, second = (img.name.removesuffix(".nii.gz") for img in images)
    assert float(got[first]["age"]) == pytest.approx(float(rows[0]["age"]))
    assert got[first]["gap"] != "" and got[second]["age"] == "" and got[second]["gap"] == ""
    warned = _warnings(caplog)
    assert len(warned) == 1 and images[1].name in warned[0] and "ixi_id" in warned[0]


def test_t1_ages_without_an_id_column_is_exit_2(ixi_pair, tmp_path, capsys):
    images, rows = ixi_pair
    ages = _ages_file(tmp_path / "ages.csv", ["scan", "age"], [[rows[0]["ixi_id"], rows[0]["age"]]])
    out = tmp_path / "pred.csv"
    rc = main(["brainage", "t1", str(images[0]), "--ages", str(ages), "--passes", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists() and "Traceback" not in err
    assert all(c in err for c in ("id", "sub_id", "participant_id", "ixi_id")) and "--id-column" in err
    args = ["brainage", "t1", str(images[0]), "--ages", str(ages), "--id-column", "scan", "--passes", "2"]
    rc = main([*args, "--threads", "1", "--out", str(out)])
    assert rc == 0 and float(_read(out)[0]["age"]) == pytest.approx(float(rows[0]["age"]))


@pytest.mark.parametrize(
    ("command", "name", "expected"),
    [("spine", "brainage_features", "spine_semantic"), ("cord", "brainage_t1", "cord_softseg")],
)
def test_a_model_name_of_another_task_is_exit_2_naming_the_right_ones(tmp_path, capsys, command, name, expected):
    from neurospine.io import save_volume
    from tests.conftest import make_volume

    img = save_volume(make_volume((40, 48, 12), (1.0, 1.0, 3.0), "PIR"), tmp_path / "sub-01_T2w.nii.gz")
    extra = ["--no-auto-levels"] if command == "cord" else []
    rc = main([command, str(img), "--out", str(tmp_path / "o"), "--model", name, "--threads", "1", *extra])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and f"'{name}' is not a {command} model" in err and expected in err
