"""Static HTML QC report of a batch output folder: one row per case, marking saved as JSON.

The page is one self-contained file beside the results (snapshots are linked relatively, nothing is
fetched from elsewhere). Marks live in the browser's localStorage until "Save marks" downloads them as
``qc_marks.json``; ``neurospine report DIR --marks FILE`` or ``neurospine table DIR --marks FILE`` stores
them in the results database. All text from the data (file names, entities, errors, notes) is escaped.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from neurospine.batch import db
from neurospine.batch.manifest import read_manifest, utc_now
from neurospine.batch.report_assets import CSS, JS
from neurospine.batch.runner import database_path, derivatives_root

log = logging.getLogger(__name__)

REPORT_NAME = "qc_report.html"
MAX_MEASURES = 8


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _script_json(obj: Any) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can end the element or start markup."""
    text = json.dumps(obj, sort_keys=True)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _snapshot(root: Path, case: dict[str, Any]) -> str | None:
    """Relative path (from the report) of the case's snapshot PNG, if the task produced one."""
    if case["status"] != "done" or not case["output_dir"]:
        return None
    manifest = read_manifest(root / case["output_dir"])
    outputs = (manifest or {}).get("outputs", {})
    pngs = [(k, v) for k, v in outputs.items() if str(v).lower().endswith(".png")]
    if not pngs:
        return None
    pngs.sort(key=lambda kv: (0 if "snapshot" in kv[0] or "qc" in kv[0] else 1, kv[0]))
    rel = f"{case['output_dir']}/{pngs[0][1]}"
    return rel if (root / rel).is_file() else None


def _key_first(name: str) -> tuple[int, str]:
    """Biomarkers before grid facts (shape/spacing), otherwise the task's own order."""
    return (1 if name.startswith(("shape_", "spacing_")) else 0, "")


def _measures_html(measures: dict[str, Any]) -> str:
    items = sorted(measures.items(), key=lambda kv: _key_first(kv[0]))[:MAX_MEASURES]
    if not items:
        return ""
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in items)
    more = (
        f"<tr><td colspan=2>+{len(measures) - MAX_MEASURES} more in the table</td></tr>"
        if len(measures) > MAX_MEASURES
        else ""
    )
    return f"<table class=measures>{body}{more}</table>"


def _row(root: Path, c: dict[str, Any]) -> str:
    key = str(c["case_key"])
    snap = _snapshot(root, c)
    snap_html = f'<img loading="lazy" src="{_e(quote(snap))}" alt="snapshot of {_e(key)}">' if snap else ""
    ses = f" ses-{_e(c['session'])}" if c["session"] else ""
    radios = "".join(f'<label><input type=radio name="m-{_e(key)}" value="{m}"> {m}</label>' for m in db.MARKS)
    err = f"<div class=err>{_e(c['error'])}</div>" if c["error"] else ""
    return (
        f'<tr class=case data-key="{_e(key)}" data-task="{_e(c["task"])}" data-status="{_e(c["status"])}">'
        f"<td class=snap>{snap_html}</td>"
        f"<td><b>sub-{_e(c['subject'])}{ses}</b><br><span class=meta>{_e(c['input_rel'] or c['input_path'])}</span>"
        f"<br><span class=meta>{_e(key)}</span></td>"
        f"<td>{_e(c['task'])}</td>"
        f'<td><span class="status status-{_e(c["status"])}">{_e(c["status"])}</span>{err}</td>'
        f"<td>{_measures_html(c['measures'])}</td>"
        f'<td class=marks>{radios}<input class=note type=text placeholder="note" aria-label="note">'
        f"<button class=clear type=button>clear</button></td>"
        "</tr>"
    )


def render_report(out_dir: str | Path) -> str:
    """The report page as a string."""
    from neurospine import __version__

    root = derivatives_root(out_dir)
    con = db.connect(database_path(out_dir), create=False)
    try:
        cases = list(db.iter_cases(con))
        marks_rows = con.execute("SELECT case_key, mark, note, updated FROM qc_marks").fetchall()
        last_run = con.execute("SELECT run_id, finished, status FROM runs ORDER BY started DESC LIMIT 1").fetchone()
    finally:
        con.close()
    report_id = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:16]
    embedded = {}
    for r in marks_rows:
        # marks from the database count as made at the moment they were stored (ms since epoch)
        from datetime import datetime

        t = (
            int(datetime.fromisoformat(str(r["updated"]).replace("Z", "+00:00")).timestamp() * 1000)
            if r["updated"]
            else 0
        )
        embedded[str(r["case_key"])] = {"mark": r["mark"], "note": r["note"] or "", "t": t}
    tasks = sorted({str(c["task"]) for c in cases})
    statuses = sorted({str(c["status"]) for c in cases})
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in statuses}
    task_opts = "".join(f"<option>{_e(t)}</option>" for t in tasks)
    status_opts = "".join(f"<option>{_e(s)}</option>" for s in statuses)
    mark_opts = "".join(f"<option>{m}</option>" for m in ("unmarked", *db.MARKS))
    run_text = f"last run {_e(last_run['run_id'])} ({_e(last_run['status'])})" if last_run else ""
    rows = "\n".join(_row(root, c) for c in cases)
    csp = "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>neurospine QC report</title>
<style>{CSS}</style></head>
<body><div id="ns-report" data-report-id="{_e(report_id)}">
<header><h1>neurospine QC report</h1>
<div class=meta>{_e(root)} · {len(cases)} cases ({_e(", ".join(f"{k}: {v}" for k, v in counts.items()))}) ·
{run_text} · neurospine {_e(__version__)} · generated {_e(utc_now())}</div>
<div class=toolbar>
<label>task <select id="f-task"><option value="">all</option>{task_opts}</select></label>
<label>status <select id="f-status"><option value="">all</option>{status_opts}</select></label>
<label>mark <select id="f-mark"><option value="">all</option>{mark_opts}</select></label>
<input id="f-text" type="search" placeholder="filter by subject / file" aria-label="filter">
<span>shown <b id="shown">0</b></span>
<span>pass <b id="count-pass">0</b> · fail <b id="count-fail">0</b> · artifact <b id="count-artifact">0</b></span>
<button id="save" type="button">Save marks (qc_marks.json)</button><span id="saved"></span>
</div></header>
<table><thead><tr><th>snapshot</th><th>case</th><th>task</th><th>status</th><th>measures</th><th>QC</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script type="application/json" id="ns-marks">{_script_json(embedded)}</script>
<script>{JS}</script>
</div></body></html>
"""


def write_report(out_dir: str | Path, path: str | Path | None = None, *, marks_file: str | Path | None = None) -> Path:
    """Write the QC report (default ``<derivatives>/qc_report.html``); import ``marks_file`` first if given."""
    from neurospine.io import write_text_atomic

    if marks_file is not None:
        from neurospine.batch.table import import_marks

        n = import_marks(out_dir, marks_file)
        log.info("imported %d QC marks from %s", n, marks_file)
    target = Path(path) if path is not None else derivatives_root(out_dir) / REPORT_NAME
    root = derivatives_root(out_dir)
    if target.resolve().parent != root:
        log.warning("the report links snapshots relative to %s; keep it in that folder to see them", root)
    return write_text_atomic(target, render_report(out_dir))
