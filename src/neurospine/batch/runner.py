"""``run_batch``: discover scans, skip finished cases, run the rest, move outputs into place, record.

Crash safety, in order, for every case:
1. a worker writes the outputs and manifest into ``.neurospine-tmp/<run>/<n>`` (invisible to readers);
2. the parent renames that folder onto ``sub-*/[ses-*/]anat/<stem>/<task>`` (an older copy is first
   renamed into the trash folder);
3. the parent commits the case to the database; only then is the older copy deleted.
A kill between steps leaves either nothing visible or a complete folder not yet marked done, which the
next run re-computes and replaces. Leftover temporary and trash folders are removed at the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from neurospine.batch import db
from neurospine.batch.bids import Scan, discover
from neurospine.batch.executors import CaseJob, CaseOutcome, make_executor
from neurospine.batch.manifest import MANIFEST_NAME, file_sha256, options_sha256, utc_now
from neurospine.batch.tasks import TaskSpec, VersionCheck, check_available, parse_tasks
from neurospine.errors import InputError

log = logging.getLogger(__name__)

DERIV_SUBDIR = Path("derivatives") / "neurospine"
TMP_DIR = ".neurospine-tmp"
TRASH_DIR = ".neurospine-trash"
LOCK_NAME = ".neurospine.lock"


@dataclass(frozen=True)
class BatchConfig:
    dataset: str | Path
    out_dir: str | Path
    tasks: Sequence[str] = ("info",)
    suffix: str | None = None
    acq: str | None = None
    subjects: Sequence[str] | None = None
    jobs: int = 1
    scheduler: str | None = None
    threads: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    #: True/"auto": a bar on a terminal, one plain line per finished case elsewhere; "plain"; False/"off"
    progress: bool | str = True
    retry_failed: bool = True


@dataclass
class BatchSummary:
    run_id: str
    derivatives: Path
    database: Path
    cases: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    reused: int = 0
    wall_s: float = 0.0
    executor: str = ""
    failures: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "cases": self.cases,
            "done": self.done,
            "failed": self.failed,
            "skipped": self.skipped,
            "reused": self.reused,
        }


def derivatives_root(out_dir: str | Path) -> Path:
    """``OUT/derivatives/neurospine`` (accepts that folder itself too)."""
    out = Path(out_dir).expanduser().resolve()
    if (out / db.DB_NAME).is_file() or out.parts[-2:] == DERIV_SUBDIR.parts:
        return out
    return out / DERIV_SUBDIR


def database_path(out_dir: str | Path) -> Path:
    return derivatives_root(out_dir) / db.DB_NAME


@contextlib.contextmanager
def _exclusive(root: Path) -> Iterator[None]:
    """One writer per output folder. The OS drops the lock when the process dies, even on SIGKILL."""
    root.mkdir(parents=True, exist_ok=True)
    fh = (root / LOCK_NAME).open("a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise InputError(
                root,
                "another `neurospine batch` is writing to this folder",
                "wait for it to finish or choose another --out",
            ) from e
        yield
    finally:
        fh.close()


def write_dataset_description(root: Path, dataset: str) -> Path:
    from neurospine import __version__
    from neurospine.io import write_text_atomic

    desc = {
        "Name": "neurospine derivatives",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "neurospine",
                "Version": __version__,
                "Description": "spine and brain MRI masks and biomarkers (CPU)",
            }
        ],
        "SourceDatasets": [{"URL": Path(dataset).resolve().as_uri() if Path(dataset).exists() else str(dataset)}],
    }
    path = root / "dataset_description.json"
    return write_text_atomic(path, json.dumps(desc, indent=2) + "\n")


def _clean_leftovers(root: Path) -> None:
    for name in (TMP_DIR, TRASH_DIR):
        d = root / name
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)


def _hash_inputs(con: Any, scans: Sequence[Scan]) -> dict[Path, str | InputError]:
    """sha256 of every input, reusing the cached value when size and mtime are unchanged."""
    from concurrent.futures import ThreadPoolExecutor

    out: dict[Path, str | InputError] = {}
    todo: list[tuple[Path, int, int]] = []
    for s in scans:
        try:
            st = s.path.stat()
        except OSError as e:
            out[s.path] = InputError(s.path, f"cannot read the file ({e.strerror or e})", "check permissions")
            continue
        cached = db.cached_sha256(con, str(s.path), st.st_size, st.st_mtime_ns)
        if cached is None:
            todo.append((s.path, st.st_size, st.st_mtime_ns))
        else:
            out[s.path] = cached

    def digest(p: Path) -> str | InputError:
        try:
            return file_sha256(p)
        except OSError as e:
            return InputError(p, f"cannot read the file ({e.strerror or e})", "check permissions")

    # hashlib and file reads release the GIL: a few threads hash several inputs at once
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = list(pool.map(digest, [p for p, _, _ in todo]))
    fresh = []
    for (p, size, mtime), d in zip(todo, digests, strict=True):
        out[p] = d
        if isinstance(d, str):
            fresh.append((str(p), size, mtime, d))
    db.store_sha256(con, fresh)
    return out


def _install(tmp: Path, final: Path, trash_root: Path) -> Path | None:
    """Rename ``tmp`` onto ``final``; an existing ``final`` goes to the trash first (returned)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        trash_root.mkdir(parents=True, exist_ok=True)
        old = trash_root / uuid.uuid4().hex
        os.rename(final, old)
    os.rename(tmp, final)
    return old


def _retire(final: Path, trash_root: Path) -> Path | None:
    if not final.exists():
        return None
    trash_root.mkdir(parents=True, exist_ok=True)
    old = trash_root / uuid.uuid4().hex
    os.rename(final, old)
    return old


def _record_unrun(
    con: Any,
    scan: Scan,
    spec: TaskSpec,
    key: str,
    run_id: str,
    sha: str,
    options: Mapping[str, Any],
    opt_sha: str,
    status: str,
    error_type: str,
    error: str,
) -> None:
    """Record a case that is decided without running the task (unreadable input, not applicable)."""
    now = utc_now()
    record = _record_from(
        scan,
        spec,
        key,
        run_id,
        sha,
        options,
        opt_sha,
        status=status,
        error_type=error_type,
        error=error,
        started=now,
        finished=now,
    )
    db.upsert_case(con, record)


def _record_from(
    scan: Scan, spec: TaskSpec, key: str, run_id: str, sha: str, options: Mapping[str, Any], opt_sha: str, **kw: Any
) -> db.CaseRecord:
    base: dict[str, Any] = dict(
        case_key=key,
        run_id=run_id,
        subject=scan.subject,
        session=scan.session,
        suffix=scan.suffix,
        entities=scan.entities,
        input_path=str(scan.path),
        input_rel=scan.rel_input,
        input_sha256=sha,
        task=spec.name,
        task_target=spec.target,
        options=options,
        options_sha256=opt_sha,
        models={},
        status="failed",
        error_type=None,
        error=None,
        output_dir=None,
        manifest=None,
        started=None,
        finished=None,
        duration_s=None,
        timings={},
        warnings=[],
        worker=None,
        measures={},
    )
    base.update(kw)
    return db.CaseRecord(**base)


def run_batch(config: BatchConfig) -> BatchSummary:
    """Run every selected scan x task not already finished; returns the counts of this run."""
    from neurospine import __version__

    t_start = time.perf_counter()
    specs = parse_tasks(list(config.tasks))
    for spec in specs:
        check_available(spec)
    scans = discover(config.dataset, suffix=config.suffix, acq=config.acq, subjects=config.subjects)
    if not scans:
        raise InputError(
            config.dataset,
            "no images found (after the --suffix/--acq/--subjects filters)",
            "check the dataset path and the filters",
        )
    options = dict(config.options)
    root = derivatives_root(config.out_dir)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    summary = BatchSummary(run_id, root, root / db.DB_NAME)
    with _exclusive(root):
        _clean_leftovers(root)
        write_dataset_description(root, str(config.dataset))
        con = db.connect(root / db.DB_NAME)
        executor = make_executor(config.jobs, config.scheduler, config.threads)
        summary.executor = executor.name
        db.start_run(
            con,
            run_id,
            utc_now(),
            __version__,
            socket.gethostname(),
            str(config.dataset),
            ",".join(s.name for s in specs),
            executor.name,
            {
                "tasks": [s.target for s in specs],
                "suffix": config.suffix,
                "acq": config.acq,
                "subjects": list(config.subjects or []),
                "jobs": config.jobs,
                "scheduler": config.scheduler,
                "threads": config.threads,
                "options": options,
            },
        )
        status = "interrupted"
        try:
            jobs = _plan(con, scans, specs, options, config, run_id, root, summary)
            lookup = ({str(s.path): s for s in scans}, {s.name: s for s in specs})
            _execute(con, executor, jobs, lookup, root, summary, config.progress)
            status = "finished"
        finally:
            executor.close()
            summary.wall_s = time.perf_counter() - t_start
            with contextlib.suppress(Exception):
                db.finish_run(con, run_id, utc_now(), status, summary.counts())
            con.close()
            if status == "finished":
                _clean_leftovers(root)
    return summary


def _plan(
    con: Any,
    scans: Sequence[Scan],
    specs: Sequence[TaskSpec],
    options: dict[str, Any],
    config: BatchConfig,
    run_id: str,
    root: Path,
    summary: BatchSummary,
) -> list[CaseJob]:
    hashes = _hash_inputs(con, scans)
    existing = db.existing_cases(con)
    versions = VersionCheck()
    jobs: list[CaseJob] = []
    tmp_root = root / TMP_DIR / run_id
    opt_shas = {spec.name: options_sha256(spec.target, options) for spec in specs}
    for scan in scans:
        digest = hashes[scan.path]
        for spec in specs:
            key = f"{scan.rel_dir.as_posix()}/{spec.name}"
            opt_sha = opt_shas[spec.name]
            summary.cases += 1
            if isinstance(digest, InputError):
                _record_unrun(con, scan, spec, key, run_id, "", options, opt_sha, "failed", "InputError", str(digest))
                summary.failed += 1
                summary.failures.append((key, str(digest)))
                continue
            old = existing.get(key)
            if old is not None and _still_valid(old, digest, opt_sha, spec, versions, root, config.retry_failed):
                summary.reused += 1
                continue
            if spec.suffixes is not None and scan.suffix not in spec.suffixes:
                reason = (
                    f"task {spec.name} takes {'/'.join(spec.suffixes)} images, this scan is "
                    f"{scan.suffix or 'of unknown type'}"
                )
                _record_unrun(
                    con, scan, spec, key, run_id, digest, options, opt_sha, "skipped", "NotApplicable", reason
                )
                summary.skipped += 1
                continue
            jobs.append(
                CaseJob(
                    case_key=key,
                    run_id=run_id,
                    input_path=str(scan.path),
                    input_sha256=digest,
                    entities=dict(scan.entities),
                    task=spec.name,
                    task_target=spec.target,
                    options=options,
                    options_sha256=opt_sha,
                    threads=config.threads,
                    tmp_dir=str(tmp_root / f"{len(jobs):06d}"),
                )
            )
    return jobs


def _still_valid(
    old: Any, digest: str, opt_sha: str, spec: TaskSpec, versions: VersionCheck, root: Path, retry_failed: bool
) -> bool:
    if old["input_sha256"] != digest or old["options_sha256"] != opt_sha:
        return False
    if old["status"] == "failed":
        return not retry_failed
    if old["status"] == "skipped":
        return True
    if not old["output_dir"] or not (root / old["output_dir"] / MANIFEST_NAME).is_file():
        return False
    return versions.is_current(spec, json.loads(old["models_json"] or "{}"))


_Lookup = tuple[dict[str, Scan], dict[str, TaskSpec]]


def _execute(
    con: Any,
    executor: Any,
    jobs: list[CaseJob],
    lookup: _Lookup,
    root: Path,
    summary: BatchSummary,
    progress: bool | str,
) -> None:
    from neurospine.progress import Progress

    trash = root / TRASH_DIR
    with Progress("batch", len(jobs), mode=progress, delay_s=0.0, transient=False) as bar:  # type: ignore[arg-type]
        for outcome in executor.run(jobs):
            _commit(con, outcome, lookup, root, trash, summary)
            bar.end(outcome.job.case_key, ok=outcome.status == "done", seconds=outcome.duration_s)


def _commit(con: Any, oc: CaseOutcome, lookup: _Lookup, root: Path, trash: Path, summary: BatchSummary) -> None:
    job = oc.job
    scan, spec = lookup[0][job.input_path], lookup[1][job.task]
    rel_dir = job.case_key
    final = root / rel_dir
    opt_sha = job.options_sha256
    common = dict(
        models=oc.models,
        started=oc.started,
        finished=oc.finished,
        duration_s=oc.duration_s,
        timings=oc.timings,
        warnings=oc.warnings,
        worker=oc.worker,
    )
    if oc.status == "done" and not Path(job.tmp_dir).is_dir():
        oc = replace(
            oc,
            status="failed",
            error_type="OutputsMissing",
            error=f"the worker reported success but its folder {job.tmp_dir} is not visible here; "
            "the output folder must be on storage shared with the workers",
        )
    if oc.status == "done":
        old = _install(Path(job.tmp_dir), final, trash)
        rec = _record_from(
            scan,
            spec,
            job.case_key,
            job.run_id,
            job.input_sha256,
            job.options,
            opt_sha,
            status="done",
            output_dir=rel_dir,
            manifest=f"{rel_dir}/{MANIFEST_NAME}",
            measures=oc.measures,
            **common,
        )
        summary.done += 1
    else:
        shutil.rmtree(job.tmp_dir, ignore_errors=True)
        old = _retire(final, trash)  # a stale older result must not sit beside a failed record
        rec = _record_from(
            scan,
            spec,
            job.case_key,
            job.run_id,
            job.input_sha256,
            job.options,
            opt_sha,
            status="failed",
            error_type=oc.error_type,
            error=oc.error,
            **common,
        )
        summary.failed += 1
        summary.failures.append((job.case_key, oc.error or ""))
        log.warning("%s failed: %s", job.case_key, oc.error)
        if oc.traceback and oc.error_type not in ("InputError", "GeometryError"):
            log.debug("%s traceback:\n%s", job.case_key, oc.traceback)
    db.upsert_case(con, rec)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
