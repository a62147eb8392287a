"""Where cases run: in this process, in local worker processes, or on a Dask cluster.

Workers only compute: each case writes into its own temporary folder and returns a ``CaseOutcome``.
The parent process moves the folder into place and writes the database, so a crash anywhere leaves
finished cases intact and unfinished ones invisible.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from neurospine.batch.manifest import MANIFEST_NAME, build_manifest, jsonable, utc_now
from neurospine.errors import NeuroSpineError
from neurospine.io import write_text_atomic

log = logging.getLogger(__name__)

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: key in a case's timings: seconds spent inside the task function itself
TASK_CALL_KEY = "batch_task_call_s"


@dataclass(frozen=True)
class CaseJob:
    """Everything a worker needs to run one scan x task (picklable, no open handles)."""

    case_key: str
    run_id: str
    input_path: str
    input_sha256: str
    entities: dict[str, str]
    task: str
    task_target: str
    options: dict[str, Any]
    options_sha256: str
    threads: int
    tmp_dir: str
    attempt: int = 0


@dataclass(frozen=True)
class CaseOutcome:
    job: CaseJob
    status: str  # done | failed
    started: str
    finished: str
    duration_s: float
    models: dict[str, str] = field(default_factory=dict)
    measures: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    worker: str = ""


def _relative_outputs(outputs: dict[str, Path], tmp: Path) -> tuple[dict[str, str], list[str]]:
    rel: dict[str, str] = {}
    warnings: list[str] = []
    for key, p in outputs.items():
        path = Path(p)
        try:
            rel[str(key)] = path.resolve().relative_to(tmp.resolve()).as_posix()
        except ValueError:
            rel[str(key)] = path.as_posix()
            warnings.append(f"output '{key}' was written outside the case folder: {path}")
    return rel, warnings


def execute_case(job: CaseJob) -> CaseOutcome:
    """Run one case into ``job.tmp_dir`` (created afresh) and write its manifest there.

    Never raises for a failing case: errors come back as ``status='failed'`` with the message.
    """
    from neurospine.batch.tasks import resolve

    started = utc_now()
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    tmp = Path(job.tmp_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        fn = resolve(job.task_target)
        t_call = time.perf_counter()
        result = fn(Path(job.input_path), tmp, threads=job.threads, **job.options)
        call_s = time.perf_counter() - t_call
        outputs = dict(getattr(result, "outputs", {}) or {})
        rel, warnings = _relative_outputs(outputs, tmp)
        missing = [k for k, v in rel.items() if not (tmp / v).exists() and not Path(v).exists()]
        if missing:
            raise RuntimeError(f"task reported outputs that do not exist: {', '.join(missing)}")
        models = {str(k): str(v) for k, v in (getattr(result, "models", {}) or {}).items()}
        measures = jsonable(dict(getattr(result, "measures", {}) or {}))
        timings = {str(k): float(v) for k, v in (getattr(result, "timings_s", {}) or {}).items()}
        timings[TASK_CALL_KEY] = call_s  # the task function alone; duration_s adds the batch layer's work
        warnings = [*map(str, getattr(result, "warnings", []) or []), *warnings]
        finished = utc_now()
        duration = time.perf_counter() - t0
        manifest = build_manifest(
            case_key=job.case_key,
            run_id=job.run_id,
            task=job.task,
            task_target=job.task_target,
            input_path=job.input_path,
            input_sha256=job.input_sha256,
            entities=job.entities,
            options=job.options,
            threads=job.threads,
            models=models,
            timings_s=timings,
            started=started,
            finished=finished,
            duration_s=duration,
            outputs=rel,
            measures=measures,
            warnings=warnings,
            extra=dict(getattr(result, "extra", {}) or {}),
        )
        import json

        write_text_atomic(tmp / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
        return CaseOutcome(job, "done", started, finished, duration, models, measures, timings, warnings, worker=worker)
    except Exception as e:  # one case's failure must never stop the cohort
        if isinstance(e, NeuroSpineError):
            message = str(e)
        else:
            message = f"internal error {type(e).__name__}: {e}"
        shutil.rmtree(tmp, ignore_errors=True)
        return CaseOutcome(
            job,
            "failed",
            started,
            utc_now(),
            time.perf_counter() - t0,
            error_type=type(e).__name__,
            error=message,
            traceback=traceback.format_exc(),
            worker=worker,
        )


def worker_died(job: CaseJob, why: str) -> CaseOutcome:
    now = utc_now()
    shutil.rmtree(job.tmp_dir, ignore_errors=True)
    return CaseOutcome(job, "failed", now, now, 0.0, error_type="WorkerDied", error=why)


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Worker processes start with BLAS/OpenMP pools sized to the per-case thread count."""
    saved = {k: os.environ.get(k) for k in _THREAD_ENV}
    for k in _THREAD_ENV:
        os.environ.setdefault(k, str(max(1, threads)))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class SerialExecutor:
    """Cases one after another in this process (``--jobs 1``): the least overhead."""

    name = "serial"

    def run(self, jobs: Sequence[CaseJob]) -> Iterator[CaseOutcome]:
        for job in jobs:
            yield execute_case(job)

    def close(self) -> None:
        pass


#: Exit status of a worker that ended because the batch process that started it is gone.
PARENT_GONE_EXIT = 75


def exit_with_parent() -> None:
    """Worker initializer: end this process as soon as the process that asked for it dies.

    Workers are forked from the fork server, so they are not children of the batch process and a signal to it
    (even SIGKILL) does not reach them; left alone they would wait for work forever, and with them the fork
    server and the resource tracker. ``multiprocessing.parent_process().sentinel`` is the read end of a pipe
    whose write end only the batch process holds: it turns readable (EOF) when that process is gone, however
    it ended. A daemon thread waits on it and then exits the worker (and its running case) at once.
    """
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(PARENT_GONE_EXIT)

    threading.Thread(target=watch, name="neurospine-exit-with-parent", daemon=True).start()


class ProcessExecutor:
    """``--jobs N`` worker processes (from a fork server, so no lock or thread state leaks into them).

    Every worker exits when the batch process dies (:func:`exit_with_parent`), and :meth:`close` stops
    running workers at once, so no process outlives an interrupted or killed batch.

    If a worker dies (segfault, out of memory, ``os._exit``) the pool breaks: the cases that had started
    are re-run one at a time in a fresh single-worker pool, so only the case that kills its worker again
    is recorded as failed; the others go on in a new pool.
    """

    def __init__(self, jobs: int, threads: int = 1) -> None:
        self.jobs = max(1, int(jobs))
        self.threads = threads
        self.name = f"processes:{self.jobs}"
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        import multiprocessing

        # forkserver: a clean server process (no threads, locks or open database of ours) imports neurospine
        # once; workers are forked from it, so starting (and restarting) them is cheap
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["neurospine.batch.executors", "neurospine.batch.tasks"])
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=exit_with_parent)
        return self._pool

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, jobs: Sequence[CaseJob]) -> Iterator[CaseOutcome]:
        with _thread_env(self.threads):  # inherited by the workers when they start
            yield from self._run(list(jobs))

    def _run(self, pending: list[CaseJob]) -> Iterator[CaseOutcome]:
        while pending:
            suspects: list[CaseJob] = []
            pool = self._new_pool(self.jobs)
            futures: dict[Future[CaseOutcome], CaseJob] = {pool.submit(execute_case, j): j for j in pending}
            pending = []
            for fut in as_completed(futures):
                job = futures[fut]
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    (suspects if Path(job.tmp_dir).exists() else pending).append(job)
            self._shutdown()
            yield from self._run_alone([replace(j, attempt=j.attempt + 1) for j in suspects])

    def _run_alone(self, suspects: list[CaseJob]) -> Iterator[CaseOutcome]:
        """Re-run each suspect alone in a one-worker pool; the pool is replaced only when a case breaks it."""
        for job in suspects:
            pool = self._pool or self._new_pool(1)
            try:
                yield pool.submit(execute_case, job).result()
            except BrokenProcessPool:
                self._shutdown()
                yield worker_died(job, "the worker process died while running this case (crash or out of memory)")
        self._shutdown()

    def close(self) -> None:
        """Stop at once (an interrupted run): cancel queued cases and end the workers, running cases included."""
        if self._pool is not None:
            workers = list(getattr(self._pool, "_processes", {}).values())  # stdlib keeps no public handle
            self._pool.shutdown(wait=False, cancel_futures=True)
            for proc in workers:
                with contextlib.suppress(Exception):
                    proc.terminate()
            for proc in workers:
                with contextlib.suppress(Exception):
                    proc.join(timeout=5)
            self._pool = None


#: seconds to wait for a Dask scheduler to answer
CONNECT_TIMEOUT_S = 20


class DaskExecutor:
    """The same cases on a Dask distributed cluster (``--scheduler tcp://host:8786``).

    Workers need the same filesystem paths as this process (shared storage, as on HPC clusters).
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.name = f"dask:{address}"
        self._client: Any = None

    def _connect(self) -> Any:
        from neurospine.errors import InputError

        try:
            from distributed import Client
        except ImportError as e:
            raise InputError(
                None, "--scheduler needs dask distributed, which is not installed", "pip install 'neurospine[cluster]'"
            ) from e
        try:
            return Client(self.address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=True)
        except OSError as e:
            raise InputError(
                None,
                f"cannot reach the Dask scheduler at {self.address} ({e})",
                "start it (dask scheduler / dask-jobqueue) and pass its address",
            ) from e

    def run(self, jobs: Sequence[CaseJob]) -> Iterator[CaseOutcome]:
        from distributed import as_completed as dask_as_completed

        self._client = self._connect()
        futures: dict[str, tuple[Any, CaseJob]] = {}
        for job in jobs:
            fut = self._client.submit(execute_case, job, key=f"neurospine-{job.run_id}-{len(futures)}", pure=False)
            futures[fut.key] = (fut, job)
        for fut in dask_as_completed([f for f, _ in futures.values()]):
            job = futures[fut.key][1]
            try:
                yield fut.result()
            except Exception as e:  # KilledWorker, CancelledError, communication errors
                yield worker_died(job, f"dask could not run this case ({type(e).__name__}: {e})")
            finally:
                fut.release()

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None


def make_executor(jobs: int, scheduler: str | None, threads: int) -> SerialExecutor | ProcessExecutor | DaskExecutor:
    if scheduler:
        return DaskExecutor(scheduler)
    if jobs <= 1:
        return SerialExecutor()
    return ProcessExecutor(jobs, threads)
