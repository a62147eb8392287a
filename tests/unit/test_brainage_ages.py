"""``brainage.ages``: the id column of an ages table and how images are matched to its rows."""

from __future__ import annotations

import logging

import pytest

from neurospine.brainage.ages import ID_COLUMNS, ages_for_images, read_ages
from neurospine.errors import InputError


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("column", ["id", "sub_id", "participant_id", "ixi_id", "IXI_ID"])
def test_each_known_id_column_is_found(tmp_path, column):
    t = read_ages(_write(tmp_path / "a.csv", f"site,{column},age\nx,sub-01,30.5\n"))
    assert t.id_column == column and t.ages == {"sub-01": 30.5}


def test_id_column_option_wins_and_must_exist(tmp_path):
    path = _write(tmp_path / "a.csv", "id,scan,age\nA,B,40\n")
    assert read_ages(path, "scan").ages == {"B": 40.0}
    with pytest.raises(InputError, match="looked for nope"):
        read_ages(path, "nope")


def test_missing_id_column_names_the_columns_looked_for(tmp_path):
    with pytest.raises(InputError) as e:
        read_ages(_write(tmp_path / "a.csv", "scan,age\nA,40\n"))
    assert all(c in str(e.value) for c in ID_COLUMNS) and "scan" in str(e.value) and e.value.exit_code == 2


def test_missing_age_column_and_conflicting_rows_are_errors(tmp_path):
    with pytest.raises(InputError, match="no 'age' column"):
        read_ages(_write(tmp_path / "a.csv", "id,years\nA,40\n"))
    with pytest.raises(InputError, match="twice"):
        read_ages(_write(tmp_path / "b.csv", "id,age\nA,40\nA,41\n"))


def test_matching_rules(tmp_path):
    t = read_ages(
        _write(
            tmp_path / "a.tsv",
            "participant_id\tage\tfile\nsub-01\t20\t\nsub-010\t30\t\nIXI012-HH-1211\t38.78\t\n"
            "exact_T1w\t50\t\nx\t60\tdir/other_scan.nii.gz\nsub-02\t\t\n",
        )
    )
    assert t.age_of("/d/sub-01_T1w.nii.gz") == 20  # participant id starts the BIDS name
    assert t.age_of("/d/sub-010_T1w.nii.gz") == 30  # the longest matching id, not sub-01
    assert t.age_of("IXI012-HH-1211_T1.nii.gz") == pytest.approx(38.78)
    assert t.age_of("exact_T1w.nii.gz") == 50
    assert t.age_of("/e/other_scan.nii.gz") == 60  # by the file column
    assert t.age_of("sub-011_T1w.nii.gz") is None  # sub-01 is not a prefix of sub-011 at a separator
    assert t.age_of("sub-02_T1w.nii.gz") is None  # empty age


def test_each_image_without_an_age_warns_once(tmp_path, caplog):
    path = _write(tmp_path / "a.csv", "id,age\nsub-01,20\n")
    with caplog.at_level(logging.WARNING, logger="neurospine.brainage.ages"):
        got = ages_for_images(path, ["sub-01_T1w.nii.gz", "sub-02_T1w.nii.gz", "sub-03_T1w.nii.gz"])
    assert got == {"sub-01_T1w": 20.0}
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and "sub-02_T1w.nii.gz" in msgs[0] and "sub-03_T1w.nii.gz" in msgs[1]
