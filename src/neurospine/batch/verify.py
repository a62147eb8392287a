"""Consistency check of a batch output folder: the database and the files on disk agree.

Used by the kill-and-resume tests and benchmark, and useful after copying results around.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from neurospine.batch import db
from neurospine.batch.layout import case_files, read_json
from neurospine.batch.runner import TMP_DIR, TRASH_DIR, database_path, derivatives_root


@dataclass
class VerifyReport:
    cases: dict[str, str] = field(default_factory=dict)  # case_key -> status
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # temporary/trash folders still present

    @property
    def ok(self) -> bool:
        return not self.problems


def _subject_files(root: Path) -> set[str]:
    """Every file below the subject folders, relative to the derivatives root."""
    return {p.relative_to(root).as_posix() for p in root.glob("sub-*/**/*") if p.is_file()}


def verify_outputs(out_dir: str | Path) -> VerifyReport:
    """Every done case has all its files and a provenance manifest matching the database; no stray files."""
    root = derivatives_root(out_dir)
    rep = VerifyReport()
    con = db.connect(database_path(out_dir), create=False)
    try:
        rows = con.execute(
            "SELECT case_key, status, input_sha256, output_dir, manifest, models_json FROM cases"
        ).fetchall()
        n_meas = dict(con.execute("SELECT case_id, COUNT(*) FROM measures GROUP BY case_id").fetchall())
        ids = dict(con.execute("SELECT case_key, case_id FROM cases").fetchall())
    finally:
        con.close()
    claimed: set[str] = set()
    for r in rows:
        key, status = str(r["case_key"]), str(r["status"])
        if key in rep.cases:
            rep.problems.append(f"{key}: recorded twice")
        rep.cases[key] = status
        if status != "done":
            continue
        path = root / str(r["manifest"])
        manifest = read_json(path)
        if manifest is None:
            rep.problems.append(f"{key}: done but {path} is missing or unreadable")
            continue
        if manifest.get("input", {}).get("sha256") != r["input_sha256"]:
            rep.problems.append(f"{key}: manifest input sha256 differs from the database")
        if manifest.get("models", {}) != json.loads(r["models_json"] or "{}"):
            rep.problems.append(f"{key}: manifest model versions differ from the database")
        if len(manifest.get("measures", {})) != n_meas.get(ids[key], 0):
            rep.problems.append(
                f"{key}: {n_meas.get(ids[key], 0)} measures in the database, "
                f"{len(manifest.get('measures', {}))} in the manifest"
            )
        case_dir = path.parent
        for name in case_files(manifest):
            p = Path(name) if Path(name).is_absolute() else case_dir / name
            claimed.add(p.relative_to(root).as_posix() if not Path(name).is_absolute() else name)
            if not p.is_file() or p.stat().st_size == 0:
                rep.problems.append(f"{key}: output {name} ({p}) missing or empty")
    for stray in sorted(_subject_files(root) - claimed):
        rep.problems.append(f"{stray}: file on disk that no case recorded as done claims")
    rep.leftovers = [str(p) for name in (TMP_DIR, TRASH_DIR) for p in (root / name).glob("*")]
    return rep
