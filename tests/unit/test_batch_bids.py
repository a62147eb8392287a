"""Dataset discovery: BIDS layout, entities, filters, plain folders and globs."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.batch.bids import discover, parse_bids_name
from neurospine.errors import InputError


def _img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), str(path))
    return path


def test_parse_bids_name() -> None:
    ents, suffix = parse_bids_name("sub-01_ses-2_acq-sag_run-3_T2w.nii.gz")
    assert ents == {"sub": "01", "ses": "2", "acq": "sag", "run": "3"}
    assert suffix == "T2w"
    assert parse_bids_name("case001.nii.gz") == ({}, None)
    assert parse_bids_name("scan_T1w.nii")[1] == "T1w"


def test_discover_bids_with_sessions_and_filters(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    _img(ds / "sub-01/anat/sub-01_acq-sag_T2w.nii.gz")
    _img(ds / "sub-01/anat/sub-01_acq-ax_T2w.nii.gz")
    _img(ds / "sub-02/ses-a/anat/sub-02_ses-a_acq-sag_T2w.nii.gz")
    _img(ds / "sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz")
    _img(ds / "sub-03/anat/sub-03_acq-sag_T2w.nii")
    (ds / "sub-03/anat/sub-03_acq-sag_T2w.json").write_text("{}")
    _img(ds / "derivatives/neurospine/sub-01/anat/sub-01_acq-sag_T2w.nii.gz")  # never an input
    _img(ds / "sub-04/func/sub-04_task-rest_bold.nii.gz")  # not anat

    scans = discover(ds)
    assert [s.rel_input for s in scans] == [
        "sub-01/anat/sub-01_acq-ax_T2w.nii.gz",
        "sub-01/anat/sub-01_acq-sag_T2w.nii.gz",
        "sub-02/ses-a/anat/sub-02_ses-a_T1w.nii.gz",
        "sub-02/ses-a/anat/sub-02_ses-a_acq-sag_T2w.nii.gz",
        "sub-03/anat/sub-03_acq-sag_T2w.nii",
    ]
    ses = next(s for s in scans if s.session)
    assert ses.subject == "02" and ses.session == "a"
    assert ses.rel_dir == Path("sub-02/ses-a/anat/sub-02_ses-a_T1w")

    t2_sag = discover(ds, suffix="T2w", acq="sag")
    assert [s.subject for s in t2_sag] == ["01", "02", "03"]
    assert [s.subject for s in discover(ds, subjects=["sub-02", "03"])] == ["02", "02", "03"]
    assert discover(ds, suffix="FLAIR") == []


def test_discover_plain_folder_and_glob(tmp_path: Path) -> None:
    _img(tmp_path / "scans/case_001.nii.gz")
    _img(tmp_path / "scans/nested/case-002.nii.gz")
    _img(tmp_path / "scans/.hidden/case_003.nii.gz")
    (tmp_path / "scans/notes.txt").write_text("x")
    scans = discover(tmp_path / "scans")
    assert sorted(s.subject for s in scans) == ["case001", "case002"]
    globbed = discover(str(tmp_path / "scans" / "*.nii.gz"))
    assert [s.subject for s in globbed] == ["case001"]
    single = discover(tmp_path / "scans/case_001.nii.gz")
    assert len(single) == 1 and single[0].rel_dir == Path("sub-case001/anat/case_001")


def test_discover_collision_and_missing(tmp_path: Path) -> None:
    _img(tmp_path / "a/x.nii.gz")
    _img(tmp_path / "a/b/x.nii.gz")
    with pytest.raises(InputError, match="same output folder"):
        discover(tmp_path / "a")
    with pytest.raises(InputError, match="dataset not found"):
        discover(tmp_path / "nope")
    with pytest.raises(InputError, match="not an image"):
        discover(_write(tmp_path / "t.txt"))


def _write(p: Path) -> Path:
    p.write_text("x")
    return p
