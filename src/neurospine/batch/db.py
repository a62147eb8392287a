"""Results database: SQLite in WAL mode, one file in the derivatives folder, written by one process.

Tables: ``runs`` (one row per ``neurospine batch`` invocation), ``cases`` (one row per scan x task,
updated in place when a case is re-run), ``measures`` (long format: case, name, value), ``qc_marks``
(pass/fail/artifact from the HTML report) and ``input_hashes`` (sha256 cache keyed by size+mtime).
Every write is one transaction; a killed process leaves the last committed state.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurospine.errors import InputError

DB_NAME = "neurospine.sqlite3"
SCHEMA_VERSION = "1"
STATUSES = ("done", "failed", "skipped")
MARKS = ("pass", "fail", "artifact")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    status TEXT NOT NULL,              -- running | finished | interrupted
    neurospine_version TEXT NOT NULL,
    host TEXT,
    dataset TEXT,
    tasks TEXT,
    executor TEXT,
    config_json TEXT,
    n_cases INTEGER DEFAULT 0,
    n_done INTEGER DEFAULT 0,
    n_failed INTEGER DEFAULT 0,
    n_skipped INTEGER DEFAULT 0,
    n_reused INTEGER DEFAULT 0
);
CREATE TABLE IF NOT EXISTS input_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    case_id INTEGER PRIMARY KEY,
    case_key TEXT NOT NULL UNIQUE,     -- sub-X/[ses-Y/]anat/<stem>/<task>
    run_id TEXT REFERENCES runs(run_id),
    subject TEXT NOT NULL,
    session TEXT,
    suffix TEXT,
    entities_json TEXT,
    input_path TEXT NOT NULL,
    input_rel TEXT,
    input_sha256 TEXT NOT NULL,
    task TEXT NOT NULL,
    task_target TEXT,
    options_json TEXT NOT NULL,
    options_sha256 TEXT NOT NULL,
    models_json TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL CHECK (status IN ('done', 'failed', 'skipped')),
    error_type TEXT,
    error TEXT,
    output_dir TEXT,
    manifest TEXT,
    started TEXT,
    finished TEXT,
    duration_s REAL,
    timings_json TEXT,
    warnings_json TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS cases_task ON cases(task);
CREATE TABLE IF NOT EXISTS measures (
    case_id INTEGER NOT NULL REFERENCES cases(case_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value_num,                         -- no type affinity: ints stay ints, floats stay floats
    value_text TEXT,
    PRIMARY KEY (case_id, name)
);
CREATE TABLE IF NOT EXISTS qc_marks (
    case_key TEXT PRIMARY KEY,
    mark TEXT CHECK (mark IN ('pass', 'fail', 'artifact')),
    note TEXT,
    updated TEXT,
    source TEXT
);
"""


@dataclass(frozen=True)
class CaseRecord:
    """What the runner stores for one finished (done, failed or skipped) case."""

    case_key: str
    run_id: str
    subject: str
    session: str | None
    suffix: str | None
    entities: Mapping[str, str]
    input_path: str
    input_rel: str
    input_sha256: str
    task: str
    task_target: str
    options: Mapping[str, Any]
    options_sha256: str
    models: Mapping[str, str]
    status: str
    error_type: str | None
    error: str | None
    output_dir: str | None
    manifest: str | None
    started: str | None
    finished: str | None
    duration_s: float | None
    timings: Mapping[str, float]
    warnings: list[str]
    worker: str | None
    measures: Mapping[str, float | int | str | None]


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """Open (and create) the database in WAL mode with autocommit off-by-hand (explicit transactions)."""
    if not create and not path.is_file():
        raise InputError(path, "no neurospine results database here", "give the --out folder of `neurospine batch`")
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
    con.row_factory = sqlite3.Row
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process never corrupts or loses commits
        con.execute("PRAGMA foreign_keys=ON")
        if create:
            con.executescript(_SCHEMA)
            con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
    except sqlite3.DatabaseError as e:
        con.close()
        raise InputError(path, f"results database unreadable ({e})", "move it away and re-run the batch") from e
    return con


class Transaction:
    """``with Transaction(con):`` -> BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error)."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.con.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def start_run(
    con: sqlite3.Connection,
    run_id: str,
    started: str,
    version: str,
    host: str,
    dataset: str,
    tasks: str,
    executor: str,
    config: Mapping[str, Any],
) -> None:
    with Transaction(con):
        con.execute("UPDATE runs SET status='interrupted' WHERE status='running'")
        con.execute(
            "INSERT INTO runs(run_id, started, status, neurospine_version, host, dataset, tasks, executor, config_json)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            (run_id, started, "running", version, host, dataset, tasks, executor, _json(config)),
        )


def finish_run(con: sqlite3.Connection, run_id: str, finished: str, status: str, counts: Mapping[str, int]) -> None:
    with Transaction(con):
        con.execute(
            "UPDATE runs SET finished=?, status=?, n_cases=?, n_done=?, n_failed=?, n_skipped=?, n_reused=? "
            "WHERE run_id=?",
            (
                finished,
                status,
                counts.get("cases", 0),
                counts.get("done", 0),
                counts.get("failed", 0),
                counts.get("skipped", 0),
                counts.get("reused", 0),
                run_id,
            ),
        )


def cached_sha256(con: sqlite3.Connection, path: str, size: int, mtime_ns: int) -> str | None:
    row = con.execute(
        "SELECT sha256 FROM input_hashes WHERE path=? AND size=? AND mtime_ns=?", (path, size, mtime_ns)
    ).fetchone()
    return None if row is None else str(row["sha256"])


def store_sha256(con: sqlite3.Connection, items: list[tuple[str, int, int, str]]) -> None:
    if not items:
        return
    with Transaction(con):
        con.executemany("INSERT OR REPLACE INTO input_hashes(path, size, mtime_ns, sha256) VALUES (?,?,?,?)", items)


def existing_cases(con: sqlite3.Connection) -> dict[str, sqlite3.Row]:
    rows = con.execute(
        "SELECT case_key, run_id, input_sha256, task, options_sha256, models_json, status, output_dir, manifest "
        "FROM cases"
    ).fetchall()
    return {str(r["case_key"]): r for r in rows}


def _measure_row(case_id: int, name: str, value: Any) -> tuple[int, str, float | int | None, str | None]:
    if isinstance(value, bool):
        return case_id, name, int(value), None
    if isinstance(value, int | float):
        return case_id, name, value, None
    if value is None:
        return case_id, name, None, None
    try:  # numpy scalars
        return case_id, name, float(value), None
    except (TypeError, ValueError):
        return case_id, name, None, str(value)


def upsert_case(con: sqlite3.Connection, rec: CaseRecord) -> int:
    """Insert or replace the case and its measures in one transaction; returns ``case_id``."""
    if rec.status not in STATUSES:
        raise ValueError(f"bad status {rec.status}")
    values = (
        rec.case_key,
        rec.run_id,
        rec.subject,
        rec.session,
        rec.suffix,
        _json(dict(rec.entities)),
        rec.input_path,
        rec.input_rel,
        rec.input_sha256,
        rec.task,
        rec.task_target,
        _json(dict(rec.options)),
        rec.options_sha256,
        _json(dict(rec.models)),
        rec.status,
        rec.error_type,
        rec.error,
        rec.output_dir,
        rec.manifest,
        rec.started,
        rec.finished,
        rec.duration_s,
        _json(dict(rec.timings)),
        _json(list(rec.warnings)),
        rec.worker,
    )
    cols = (
        "case_key, run_id, subject, session, suffix, entities_json, input_path, input_rel, input_sha256, task, "
        "task_target, options_json, options_sha256, models_json, status, error_type, error, output_dir, manifest, "
        "started, finished, duration_s, timings_json, warnings_json, worker"
    )
    names = [c.strip() for c in cols.split(",")]
    update = ", ".join(f"{c}=excluded.{c}" for c in names if c != "case_key")
    with Transaction(con):
        con.execute(
            f"INSERT INTO cases({cols}) VALUES ({','.join('?' * len(names))}) "
            f"ON CONFLICT(case_key) DO UPDATE SET {update}",
            values,
        )
        case_id = int(con.execute("SELECT case_id FROM cases WHERE case_key=?", (rec.case_key,)).fetchone()[0])
        con.execute("DELETE FROM measures WHERE case_id=?", (case_id,))
        con.executemany(
            "INSERT INTO measures(case_id, name, value_num, value_text) VALUES (?,?,?,?)",
            [_measure_row(case_id, str(k), v) for k, v in rec.measures.items()],
        )
    return case_id


def iter_cases(con: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Every case with its measures (dict name -> value) and QC mark, ordered by subject/session/input/task."""
    marks = {str(r["case_key"]): r for r in con.execute("SELECT case_key, mark, note FROM qc_marks")}
    measures: dict[int, dict[str, Any]] = {}
    for r in con.execute("SELECT case_id, name, value_num, value_text FROM measures"):
        measures.setdefault(int(r["case_id"]), {})[str(r["name"])] = (
            r["value_num"] if r["value_text"] is None else r["value_text"]
        )
    for r in con.execute("SELECT * FROM cases ORDER BY subject, session, input_rel, task"):
        row = dict(r)
        mark = marks.get(str(row["case_key"]))
        row["qc_mark"] = None if mark is None else mark["mark"]
        row["qc_note"] = None if mark is None else mark["note"]
        row["measures"] = measures.get(int(row["case_id"]), {})
        yield row


def store_marks(con: sqlite3.Connection, marks: Mapping[str, Mapping[str, Any]], updated: str, source: str) -> int:
    """Insert/replace QC marks (``case_key -> {"mark": ..., "note": ...}``); returns how many were stored."""
    rows = []
    for key, m in marks.items():
        mark = m.get("mark") or None
        note = m.get("note") or None
        if mark is not None and mark not in MARKS:
            raise InputError(source, f"unknown QC mark '{mark}' for {key}", f"use one of {', '.join(MARKS)}")
        rows.append((str(key), mark, None if note is None else str(note), updated, source))
    with Transaction(con):
        con.executemany(
            "INSERT OR REPLACE INTO qc_marks(case_key, mark, note, updated, source) VALUES (?,?,?,?,?)", rows
        )
    return len(rows)
