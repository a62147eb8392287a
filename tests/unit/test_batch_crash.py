"""SIGKILL a real ``neurospine batch`` subprocess at random moments, resume, and check that no case is lost,
duplicated or half-written (the database and the files agree; every output is whole)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.batch.crashtest import kill_resume_trial
from neurospine.batch.demo import make_demo_dataset

N_SUBJECTS = 8


def _expected(ds: Path) -> set[str]:
    return {
        f"{p.parent.relative_to(ds).as_posix()}/{p.name.removesuffix('.nii.gz')}/selftest" for p in ds.rglob("*.nii.gz")
    }


def _check(ds: Path, out: Path, res) -> None:  # type: ignore[no-untyped-def]
    assert res.problems == []
    assert res.leftovers == []
    assert res.final_returncode == 1  # one corrupt input: a failed case, never a crash
    assert set(res.cases) == _expected(ds)  # nothing lost, nothing extra (duplicates are reported as problems)
    statuses = sorted(res.cases.values())
    assert statuses == ["done"] * (N_SUBJECTS - 1) + ["failed"]
    root = out / "derivatives/neurospine"
    for key, status in res.cases.items():
        if status == "done":  # outputs whole: the mask decompresses completely and matches its input grid
            scan = key.rsplit("/", 2)[0]  # sub-X/[ses-Y/]anat/<stem>/selftest -> the flat anat folder
            stem = key.rsplit("/", 2)[1].removesuffix("_T2w")
            mask = root / scan / f"{stem}_mod-T2w_desc-selftest_fgmask.nii.gz"
            data = np.asarray(nib.load(str(mask)).dataobj)
            assert data.shape == (8, 32, 48)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    make_demo_dataset(tmp_path / "ds", n_subjects=N_SUBJECTS, shape=(8, 32, 48), corrupt=1)
    return tmp_path / "ds"


def test_sigkill_and_resume_serial(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = kill_resume_trial(dataset, out, options=["sleep_s=0.15"], kills=3, max_delay_s=3.0, seed=1)
    assert res.kills >= 1
    _check(dataset, out, res)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_sigkill_and_resume_processes(dataset: Path, tmp_path: Path, seed: int) -> None:
    out = tmp_path / "out"
    res = kill_resume_trial(dataset, out, options=["sleep_s=0.2"], jobs=2, kills=5, max_delay_s=4.0, seed=seed)
    assert res.kills >= 1
    _check(dataset, out, res)
