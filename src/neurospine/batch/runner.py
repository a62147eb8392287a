"""``run_batch``: discover scans, skip finished cases, run the rest, move outputs into place, record.

The output is a BIDS derivatives dataset (``batch.layout``): every case's files sit flat in
``sub-*/[ses-*/]anat/`` with SPINEPS-style names and JSON sidecars.

Crash safety, in order, for every case:
1. a worker writes the outputs and manifest into ``.neurospine-tmp/<run>/<n>`` (invisible to readers);
2. the parent journals the names it is about to install, moves the older copy's files into the trash
   folder, renames the new files into the anat folder and writes the provenance file last;
3. the parent commits the case to the database; only then are the older copy and the journal deleted.
At the next start, the files of a journalled case the database does not hold are removed (the case is
computed again); leftover temporary and trash folders are removed.
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

from neurospine.batch import db, layout
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
    """``dataset_description.json`` (and the other root files of the derivatives dataset)."""
    layout.write_dataset_files(root, dataset, raw_link=Path(dataset).is_dir())
    return root / "dataset_description.json"


def _clean_leftovers(root: Path, con: Any = None) -> None:
    """Undo interrupted installs (needs the database), then remove temporary and trash folders."""
    if con is not None:
        committed = {
            str(r["case_key"]): str(r["run_id"])
            for r in con.execute("SELECT case_key, run_id FROM cases WHERE status='done'").fetchall()
        }
        layout.recover(root, root / TRASH_DIR, committed)
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
        con = db.connect(root / db.DB_NAME)
        _clean_leftovers(root, con)
        write_dataset_description(root, str(config.dataset))
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
            existing = db.existing_cases(con)
            jobs = _plan(con, scans, specs, options, config, run_id, root, summary, existing)
            lookup = ({str(s.path): s for s in scans}, {s.name: s for s in specs}, existing)
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
    existing: Mapping[str, Any],
) -> list[CaseJob]:
    hashes = _hash_inputs(con, scans)
    ages = participant_ages(config.dataset)
    versions = VersionCheck()
    jobs: list[CaseJob] = []
    tmp_root = root / TMP_DIR / run_id
    opt_shas = {spec.name: options_sha256(spec.target, options) for spec in specs}
    for scan in scans:
        digest = hashes[scan.path]
        for spec in specs:
            key = f"{scan.rel_dir.as_posix()}/{spec.name}"
            opt_sha = opt_shas[spec.name]
            case_options = options
            age = ages.get((scan.subject, scan.session)) or ages.get((scan.subject, None))
            if spec.name in AGE_TASKS and age is not None and "age" not in options:
                case_options = {**options, "age": age}  # the age is part of the result: changing it re-runs
                opt_sha = options_sha256(spec.target, case_options)
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
                    options=case_options,
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
    if not old["manifest"] or not (root / old["manifest"]).is_file():
        return False
    return versions.is_current(spec, json.loads(old["models_json"] or "{}"))


_Lookup = tuple[dict[str, Scan], dict[str, TaskSpec], Mapping[str, Any]]


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
    previous = lookup[2].get(job.case_key)
    old_manifest = str(previous["manifest"]) if previous is not None and previous["manifest"] else None
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
    journal: Path | None = None
    old: Path | None = None
    placed = None
    if oc.status == "done":
        try:
            placed, journal = layout.install_case(
                root, Path(job.tmp_dir), scan, MANIFEST_NAME, old_manifest, trash, scan.dataset_root is not None
            )
        except layout.OutputConflict as e:
            oc = replace(oc, status="failed", error_type="OutputConflict", error=str(e))
    if placed is not None:
        rec = _record_from(
            scan,
            spec,
            job.case_key,
            job.run_id,
            job.input_sha256,
            job.options,
            opt_sha,
            status="done",
            output_dir=placed.output_dir,
            manifest=placed.manifest,
            measures=oc.measures,
            **common,
        )
        summary.done += 1
    else:
        shutil.rmtree(job.tmp_dir, ignore_errors=True)
        old = layout.retire_case(root, old_manifest, trash)  # a stale older result must not sit beside a failure
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
    if journal is not None:
        layout.finish(journal)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: tasks that take the participant's age (``participants.tsv``) as option ``age``
AGE_TASKS = ("brainage-t1",)


def participant_ages(dataset: str | Path) -> dict[tuple[str, str | None], float]:
    """Ages from a BIDS dataset's ``participants.tsv`` (and ``sub-*/sub-*_sessions.tsv`` per session).

    Keys: (subject label, session label or None). Rows without a numeric age are left out."""
    root = Path(dataset)
    ages: dict[tuple[str, str | None], float] = {}
    if not root.is_dir():
        return ages
    tables = [(root / "participants.tsv", "participant_id")]
    tables += [(p, "session_id") for p in sorted(root.glob("sub-*/sub-*_sessions.tsv"))]
    for table, id_col in tables:
        if not table.is_file():
            continue
        lines = table.read_text(encoding="utf-8").splitlines()
        if not lines:
            continue
        head = [h.strip() for h in lines[0].split("\t")]
        if id_col not in head or "age" not in head:
            continue
        for line in lines[1:]:
            cells = [c.strip() for c in line.split("\t")]
            if len(cells) != len(head):
                continue
            row = dict(zip(head, cells, strict=True))
            try:
                age = float(row["age"])
            except ValueError:
                continue
            if age != age:
                continue
            if id_col == "participant_id":
                ages[(row[id_col].removeprefix("sub-"), None)] = age
            else:
                ages[(table.parent.name.removeprefix("sub-"), row[id_col].removeprefix("ses-"))] = age
    return ages
