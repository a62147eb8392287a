"""Batch runs: outputs layout, database, resume/skip rules, failures isolated, manifests, worker crashes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import nibabel as nib
import pytest

from neurospine.batch import BatchConfig, run_batch
from neurospine.batch.demo import make_demo_dataset
from neurospine.batch.tasks import TaskSpec, register_task
from neurospine.batch.verify import verify_outputs
from neurospine.errors import InputError

SHAPE = (8, 32, 48)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    make_demo_dataset(tmp_path / "ds", n_subjects=3, sessions=("1", "2"), shape=SHAPE, corrupt=1)
    return tmp_path / "ds"


def _cfg(ds: Path, out: Path, **kw: object) -> BatchConfig:
    base: dict[str, object] = dict(tasks=["info"], progress=False)
    base.update(kw)
    return BatchConfig(ds, out, **base)  # type: ignore[arg-type]


def _db(out: Path) -> sqlite3.Connection:
    con = sqlite3.connect(out / "derivatives/neurospine/neurospine.sqlite3")
    con.row_factory = sqlite3.Row
    return con


def test_run_layout_database_and_manifest(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    s = run_batch(_cfg(dataset, out))
    assert (s.cases, s.done, s.failed, s.reused) == (6, 5, 1, 0)
    root = out / "derivatives/neurospine"
    desc = json.loads((root / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "neurospine"
    assert desc["GeneratedBy"][0]["Version"]
    case_dir = root / "sub-001/ses-1/anat"  # BIDS derivatives: flat per scan
    manifest = json.loads((case_dir / "sub-001_ses-1_acq-sag_mod-T2w_desc-info_provenance.json").read_text())
    assert manifest["task"] == "info" and len(manifest["input"]["sha256"]) == 64
    assert manifest["input"]["entities"] == {"sub": "001", "ses": "1", "acq": "sag"}
    assert manifest["outputs"] == {
        "foreground_mask": "sub-001_ses-1_acq-sag_mod-T2w_fgmask.nii.gz",
        "snapshot": "sub-001_ses-1_acq-sag_mod-T2w_snapshot.png",
    }
    assert manifest["neurospine_version"] and manifest["timings_s"]["total_s"] > 0
    mask = nib.load(str(case_dir / manifest["outputs"]["foreground_mask"]))
    src = nib.load(str(dataset / "sub-001/ses-1/anat/sub-001_ses-1_acq-sag_T2w.nii.gz"))
    assert mask.shape == src.shape and (mask.affine == src.affine).all()

    con = _db(out)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    failed = con.execute("SELECT * FROM cases WHERE status='failed'").fetchall()
    assert len(failed) == 1 and failed[0]["error_type"] == "InputError"
    assert "sub-003_ses-2" in failed[0]["input_path"] and "corrupt" in failed[0]["error"]
    n = con.execute("SELECT COUNT(*) FROM measures m JOIN cases c USING(case_id) WHERE c.task='info'").fetchone()[0]
    assert n == 5 * len(manifest["measures"])
    run = con.execute("SELECT * FROM runs").fetchone()
    assert run["status"] == "finished" and run["n_done"] == 5 and run["n_failed"] == 1
    assert verify_outputs(out).ok and verify_outputs(out).leftovers == []


def test_resume_skips_done_and_reruns_changed(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_batch(_cfg(dataset, out))
    again = run_batch(_cfg(dataset, out))
    assert (again.done, again.reused, again.failed) == (0, 5, 1)  # failed cases are retried (and fail again)
    keep = run_batch(_cfg(dataset, out, retry_failed=False))
    assert (keep.done, keep.reused, keep.failed) == (0, 6, 0)

    # a changed input is re-run, and only that one
    changed = dataset / "sub-002/ses-1/anat/sub-002_ses-1_acq-sag_T2w.nii.gz"
    img = nib.load(str(changed))
    nib.save(nib.Nifti1Image(img.get_fdata() * 2, img.affine), str(changed))
    s = run_batch(_cfg(dataset, out, retry_failed=False))
    assert (s.done, s.reused) == (1, 5)
    # other options are other results: everything re-runs
    s = run_batch(_cfg(dataset, out, retry_failed=False, options={"snapshot": False}))
    assert s.done == 5
    con = _db(out)
    assert con.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 6  # updated in place, never duplicated
    # a deleted case folder is noticed and recomputed
    next((out / "derivatives/neurospine").glob("sub-001/ses-2/anat/*_desc-info_provenance.json")).unlink()
    s = run_batch(_cfg(dataset, out, retry_failed=False, options={"snapshot": False}))
    assert (s.done, s.reused) == (1, 5)
    assert verify_outputs(out).ok


def test_model_version_change_reruns(dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    card = {"name": "fake-model", "version": "1.0", "task": "selftest", "file": "fake.onnx", "sha256": "0" * 64}
    (models / "fake-model.json").write_text(json.dumps(card))
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(models))
    out = tmp_path / "out"
    cfg = _cfg(dataset, out, tasks=["selftest"], options={"model_card": "fake-model"}, retry_failed=False)
    assert run_batch(cfg).done == 5
    assert run_batch(cfg).reused == 6
    card["version"] = "1.1"
    (models / "fake-model.json").write_text(json.dumps(card))
    s = run_batch(cfg)
    assert (s.done, s.reused) == (5, 1)
    con = _db(out)
    versions = {r[0] for r in con.execute("SELECT models_json FROM cases WHERE status='done'")}
    assert versions == {json.dumps({"fake-model": "1.1"})}
    manifest = json.loads(next(out.rglob("*_provenance.json")).read_text())
    assert manifest["model_cards"][0]["version"] == "1.1"


def test_injected_failure_isolated_and_not_applicable_skipped(dataset: Path, tmp_path: Path) -> None:
    register_task(TaskSpec("t1-only", "neurospine.batch.info_task", suffixes=("T1w",), hidden=True))
    out = tmp_path / "out"
    s = run_batch(_cfg(dataset, out, tasks=["selftest", "t1-only"], options={"fail_on": "sub-002_ses-1"}))
    assert (s.cases, s.done, s.failed, s.skipped) == (12, 4, 2, 6)
    con = _db(out)
    rows = {r["case_key"]: r for r in con.execute("SELECT * FROM cases")}
    bad = rows["sub-002/ses-1/anat/sub-002_ses-1_acq-sag_T2w/selftest"]
    assert bad["status"] == "failed" and "injected failure" in bad["error"] and bad["error_type"] == "RuntimeError"
    assert not (out / "derivatives/neurospine" / bad["case_key"]).exists()
    skipped = [r for r in rows.values() if r["status"] == "skipped"]
    assert len(skipped) == 6 and all("T1w" in r["error"] for r in skipped)
    s2 = run_batch(_cfg(dataset, out, tasks=["selftest", "t1-only"], options={"fail_on": "sub-002_ses-1"}))
    assert s2.skipped == 0 and s2.reused == 10


def test_worker_crash_fails_only_that_case(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    make_demo_dataset(ds, n_subjects=4, shape=SHAPE)
    out = tmp_path / "out"
    s = run_batch(_cfg(ds, out, tasks=["selftest"], jobs=2, options={"exit_on": "sub-002"}))
    assert (s.done, s.failed) == (3, 1)
    con = _db(out)
    died = con.execute("SELECT * FROM cases WHERE error_type='WorkerDied'").fetchall()
    assert [r["input_rel"] for r in died] == ["sub-002/anat/sub-002_acq-sag_T2w.nii.gz"]
    assert verify_outputs(out).ok


def test_unknown_or_missing_task_and_empty_dataset(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown task"):
        run_batch(_cfg(dataset, tmp_path / "o", tasks=["nope"]))
    with pytest.raises(InputError, match="not available"):
        run_batch(_cfg(dataset, tmp_path / "o", tasks=["neurospine.batch.no_such_module:run_file"]))
    with pytest.raises(InputError, match="no images"):
        run_batch(_cfg(dataset, tmp_path / "o", suffix="FLAIR"))
    assert not (tmp_path / "o").exists()


def test_lock_refuses_second_writer(dataset: Path, tmp_path: Path) -> None:
    import fcntl

    root = tmp_path / "out/derivatives/neurospine"
    root.mkdir(parents=True)
    with (root / ".neurospine.lock").open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        with pytest.raises(InputError, match="another"):
            run_batch(_cfg(dataset, tmp_path / "out"))


def test_crash_between_rename_and_commit_is_healed(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrowest window: a case folder is in place but its row is not committed when the process dies."""
    from neurospine.batch import db as dbmod

    out = tmp_path / "out"
    real = dbmod.upsert_case
    calls = {"n": 0}

    def dying_upsert(con, rec):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # stands in for SIGKILL right after the rename
        return real(con, rec)

    monkeypatch.setattr(dbmod, "upsert_case", dying_upsert)
    with pytest.raises(KeyboardInterrupt):
        run_batch(_cfg(dataset, out, retry_failed=False))
    interim = verify_outputs(out)
    # the one case whose files are in place but not committed: its files are strays until the next start
    assert interim.problems and all("no case recorded as done claims" in p for p in interim.problems)
    assert len({p.split("_mod-")[0] for p in interim.problems}) == 1
    monkeypatch.setattr(dbmod, "upsert_case", real)
    s = run_batch(_cfg(dataset, out, retry_failed=False))
    assert s.done + s.reused == 5 and s.done >= 1
    final = verify_outputs(out)
    assert final.ok and final.leftovers == []
    con = _db(out)
    assert con.execute("SELECT status FROM runs ORDER BY started").fetchall()[0][0] == "interrupted"


def test_brainage_t1_on_real_ixi_scans(shared_data: Path, tmp_path: Path) -> None:
    """The shipped brain-age CNN through the batch layer on 2 real IXI T1w volumes; T2w scans are skipped."""
    src = sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[:2]
    if len(src) < 2:
        pytest.skip("IXI T1w volumes not in ../shared/data")
    ds = tmp_path / "ds"
    for i, f in enumerate(src):
        link = ds / f"sub-{i:02d}" / "anat" / f"sub-{i:02d}_T1w.nii.gz"
        link.parent.mkdir(parents=True)
        link.symlink_to(f)
    make_demo_dataset(tmp_path / "t2", n_subjects=1, shape=SHAPE)
    (ds / "sub-09/anat").mkdir(parents=True)
    (ds / "sub-09/anat/sub-09_acq-sag_T2w.nii.gz").symlink_to(tmp_path / "t2/sub-001/anat/sub-001_acq-sag_T2w.nii.gz")
    (ds / "participants.tsv").write_text("participant_id\tage\tsex\nsub-00\t41.5\tF\nsub-01\tn/a\tM\n")
    s = run_batch(_cfg(ds, tmp_path / "out", tasks=["brainage-t1"]))
    assert (s.done, s.skipped, s.failed) == (2, 1, 0)
    con = _db(tmp_path / "out")
    ages = [r[0] for r in con.execute("SELECT value_num FROM measures WHERE name='brain_age_years'")]
    assert len(ages) == 2 and all(5 < a < 100 for a in ages)
    models = {r[0] for r in con.execute("SELECT models_json FROM cases WHERE status='done'")}
    assert len(models) == 1 and "brainage_t1" in next(iter(models))
    # participants.tsv: sub-00's age gives the brain-age gap; sub-01 (age n/a) has none
    measures = {
        (r["subject"], r["name"]): r["value_num"]
        for r in con.execute("SELECT c.subject, m.name, m.value_num FROM measures m JOIN cases c USING(case_id)")
    }
    assert measures[("00", "age_years")] == 41.5
    assert measures[("00", "brain_age_gap_years")] == pytest.approx(measures[("00", "brain_age_years")] - 41.5)
    assert ("01", "age_years") not in measures and ("01", "brain_age_gap_years") not in measures
    root = tmp_path / "out/derivatives/neurospine"
    assert (root / "sub-00/anat/sub-00_mod-T1w_desc-brainage_snp.png").is_file()  # T1 mid-slices for the report
    from neurospine.batch.report import render_report

    page = render_report(tmp_path / "out")
    assert page.count('<img class=thumb src="data:image/png;base64,') == 2  # every brain-age row has its picture
    assert run_batch(_cfg(ds, tmp_path / "out", tasks=["brainage-t1"])).reused == 3
    (ds / "participants.tsv").write_text("participant_id\tage\nsub-00\t41.5\nsub-01\t63\n")
    s = run_batch(_cfg(ds, tmp_path / "out", tasks=["brainage-t1"]))
    assert (s.done, s.reused) == (1, 2)  # a new age is a new result: only sub-01 runs again
