"""Tidy cohort table: one row per scan x task, measures as columns (units in their names), QC marks joined."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from neurospine.batch import db
from neurospine.batch.bids import ENTITY_ORDER
from neurospine.batch.manifest import utc_now
from neurospine.batch.runner import database_path
from neurospine.errors import InputError

log = logging.getLogger(__name__)

FIXED_COLUMNS = ("subject", "session", "suffix")
CASE_COLUMNS = (
    "task",
    "status",
    "qc_mark",
    "qc_note",
    "error",
    "input_path",
    "input_sha256",
    "models",
    "duration_s",
    "started",
    "finished",
    "output_dir",
    "case_key",
)
MARKS_FORMAT = "neurospine-qc-marks/1"


def read_marks_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Marks saved by the HTML report: ``{"marks": {case_key: {"mark": ..., "note": ...}}}``.

    A plain ``{case_key: "fail"}`` mapping is accepted too.
    """
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise InputError(p, "marks file not found", "give the JSON saved from the QC report") from e
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(p, f"marks file is not valid JSON ({e})", "give the JSON saved from the QC report") from e
    marks = raw.get("marks", raw) if isinstance(raw, dict) else None
    if not isinstance(marks, dict):
        raise InputError(p, "marks file has no 'marks' object", "give the JSON saved from the QC report")
    out: dict[str, dict[str, Any]] = {}
    for key, value in marks.items():
        if isinstance(value, str):
            out[str(key)] = {"mark": value, "note": None}
        elif isinstance(value, dict):
            out[str(key)] = {"mark": value.get("mark"), "note": value.get("note")}
        else:
            raise InputError(p, f"mark of {key} is neither a string nor an object", "re-save it from the report")
    return out


def import_marks(out_dir: str | Path, marks_file: str | Path) -> int:
    """Store the marks of ``marks_file`` in the results database; returns how many were stored."""
    marks = read_marks_file(marks_file)
    con = db.connect(database_path(out_dir), create=False)
    try:
        known = {str(r[0]) for r in con.execute("SELECT case_key FROM cases")}
        unknown = sorted(set(marks) - known)
        if unknown:
            log.warning("%d marks name cases not in this database (first: %s); stored anyway", len(unknown), unknown[0])
        return db.store_marks(con, marks, utc_now(), str(Path(marks_file).resolve()))
    finally:
        con.close()


def _models_text(models_json: str | None) -> str:
    models = json.loads(models_json or "{}")
    return ";".join(f"{k}={v}" for k, v in sorted(models.items()))


def cohort_rows(out_dir: str | Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Column names and rows of the cohort table."""
    con = db.connect(database_path(out_dir), create=False)
    try:
        cases = list(db.iter_cases(con))
    finally:
        con.close()
    entity_keys: set[str] = set()
    measure_keys: set[str] = set()
    rows: list[dict[str, Any]] = []
    for c in cases:
        entities = {k: v for k, v in json.loads(c["entities_json"] or "{}").items() if k not in ("sub", "ses")}
        entity_keys |= set(entities)
        measure_keys |= set(c["measures"])
        row: dict[str, Any] = {
            "subject": c["subject"],
            "session": c["session"],
            "suffix": c["suffix"],
            **entities,
            "task": c["task"],
            "status": c["status"],
            "qc_mark": c["qc_mark"],
            "qc_note": c["qc_note"],
            "error": c["error"],
            "input_path": c["input_rel"] or c["input_path"],
            "input_sha256": c["input_sha256"],
            "models": _models_text(c["models_json"]),
            "duration_s": c["duration_s"],
            "started": c["started"],
            "finished": c["finished"],
            "output_dir": c["output_dir"],
            "case_key": c["case_key"],
        }
        row.update(c["measures"])
        rows.append(row)
    ordered_entities = [k for k in ENTITY_ORDER if k in entity_keys] + sorted(entity_keys - set(ENTITY_ORDER))
    clash = measure_keys & (set(FIXED_COLUMNS) | set(CASE_COLUMNS) | entity_keys)
    if clash:
        raise InputError(None, f"measure names clash with table columns: {sorted(clash)}", "report this bug")
    columns = [*FIXED_COLUMNS, *ordered_entities, *CASE_COLUMNS, *sorted(measure_keys)]
    return columns, rows


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    from neurospine.io import atomic_path

    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})


def _write_parquet(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise InputError(
            path, "parquet output needs pyarrow", "pip install 'neurospine[parquet]' or use --format csv"
        ) from e
    from neurospine.io import atomic_path

    arrays = {}
    for col in columns:
        values = [r.get(col) for r in rows]
        kinds = {type(v) for v in values if v is not None}
        if kinds and kinds <= {int, float} and col not in FIXED_COLUMNS:
            arrays[col] = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        else:
            arrays[col] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    table = pa.table(arrays)
    with atomic_path(path) as tmp:
        pq.write_table(table, str(tmp))


def export_table(
    out_dir: str | Path, path: str | Path, *, fmt: str | None = None, marks_file: str | Path | None = None
) -> Path:
    """Write the cohort table of a batch output folder to ``path`` (csv or parquet, from the suffix or ``fmt``)."""
    target = Path(path)
    kind = fmt or ("parquet" if target.suffix.lower() in (".parquet", ".pq") else "csv")
    if kind not in ("csv", "parquet"):
        raise InputError(target, f"unknown table format '{kind}'", "use csv or parquet")
    if marks_file is not None:
        import_marks(out_dir, marks_file)
    columns, rows = cohort_rows(out_dir)
    if kind == "csv":
        _write_csv(target, columns, rows)
    else:
        _write_parquet(target, columns, rows)
    log.info("wrote %d rows x %d columns to %s", len(rows), len(columns), target)
    return target
