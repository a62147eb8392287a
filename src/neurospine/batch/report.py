"""Static HTML QC report: one row per case (picture, status, measures, pass/fail/artifact marks).

The page is one self-contained file: every picture is embedded as a ``data:`` URI, so a moved or mailed
copy shows them all, and nothing is fetched from elsewhere. Clicking a picture enlarges it. Marks live in
the browser's localStorage until "Save marks" downloads them as ``qc_marks.json``;
``neurospine report DIR --marks FILE`` or ``neurospine table DIR --marks FILE`` stores them in the results
database. All text from the data (file names, entities, errors, notes) is escaped.

Two sources: a batch output folder (``render_report``), or single runs (``neurospine spine ... --qc DIR``,
``record_single_run``), each adding its case to ``DIR`` and rewriting ``DIR/qc_report.html``, as SCT's ``-qc``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurospine.batch import db
from neurospine.batch.layout import read_json
from neurospine.batch.manifest import utc_now
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


#: pictures larger than this are not embedded (the row says so); keeps a cohort page loadable
MAX_IMAGE_BYTES = 4_000_000
#: embedded pictures are scaled down to at most this many pixels on their longer side
MAX_SIDE_PX = 800


def human_number(value: Any) -> str:
    """A number as a person writes it: ``37130`` not ``3.713e+04``; ``12.35``; ``0.0123``; ints with separators."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "n/a" if value != value else ("∞" if value > 0 else "-∞")
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        text = f"{value:.1f}"
    elif a >= 1:
        text = f"{value:.2f}"
    else:
        digits = 2 - math.floor(math.log10(a))  # three significant digits, never scientific notation
        text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _fmt(value: Any) -> str:
    return human_number(value)


def data_uri(path: Path) -> str | None:
    """``data:image/png;base64,...`` of a picture file (None when missing or too large)."""
    try:
        size = path.stat().st_size
    except OSError:
        return None
    if size > MAX_IMAGE_BYTES:
        log.warning("%s is %d bytes: not embedded in the report", path, size)
        return None
    kind = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif"}.get(path.suffix.lower())
    if kind is None:
        return None
    raw = path.read_bytes()
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as im:
            if max(im.size) > MAX_SIDE_PX:  # a cohort page must stay loadable: large pictures are scaled down
                im.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX), Image.Resampling.LANCZOS)
                buf = io.BytesIO()
                im.save(buf, format="PNG", optimize=True)
                raw, kind = buf.getvalue(), "png"
    except OSError:
        return None  # not a readable picture
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode("ascii")


def pick_picture(outputs: dict[str, Any], folder: Path) -> Path | None:
    """The case's QC picture: a snapshot/qc/overlay PNG among its outputs (paths relative to ``folder``)."""
    pngs = [(str(k), str(v)) for k, v in outputs.items() if str(v).lower().endswith(".png")]
    if not pngs:
        return None
    pngs.sort(key=lambda kv: (0 if any(w in kv[0] for w in ("snapshot", "qc", "overlay")) else 1, kv[0]))
    path = Path(pngs[0][1])
    path = path if path.is_absolute() else folder / path
    return path if path.is_file() else None


def _snapshot(root: Path, case: dict[str, Any]) -> str | None:
    """The case's picture as a data URI, if its task drew one."""
    if "picture_uri" in case:  # single runs store the picture itself
        uri = case["picture_uri"]
        return str(uri) if isinstance(uri, str) and uri.startswith("data:image/") else None
    if case["status"] != "done" or not case.get("manifest"):
        return None
    manifest = read_json(root / case["manifest"])
    picture = pick_picture((manifest or {}).get("outputs", {}), (root / case["manifest"]).parent)
    return None if picture is None else data_uri(picture)


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
    if snap:
        snap_html = f'<img class=thumb src="{_e(snap)}" alt="picture of {_e(key)}" title="click to enlarge" tabindex=0>'
    else:
        why = "no picture (failed)" if c["status"] == "failed" else "no picture"
        snap_html = f"<span class=nopic>{why}</span>"
    ses = f" ses-{_e(c['session'])}" if c.get("session") else ""
    radios = "".join(f'<label><input type=radio name="m-{_e(key)}" value="{m}"> {m}</label>' for m in db.MARKS)
    err = f"<div class=err>{_e(c['error'])}</div>" if c.get("error") else ""
    if c.get("notes"):
        err += f"<div class=meta>{_e(c['notes'])}</div>"
    return (
        f'<tr class=case data-key="{_e(key)}" data-task="{_e(c["task"])}" data-status="{_e(c["status"])}">'
        f"<td class=snap>{snap_html}</td>"
        f"<td><b>sub-{_e(c['subject'])}{ses}</b><br>"
        f"<span class=meta>{_e(c.get('input_rel') or c['input_path'])}</span>"
        f"<br><span class=meta>{_e(key)}</span></td>"
        f"<td>{_e(c['task'])}</td>"
        f'<td><span class="status status-{_e(c["status"])}">{_e(c["status"])}</span>{err}</td>'
        f"<td>{_measures_html(c['measures'])}</td>"
        f'<td class=marks>{radios}<input class=note type=text placeholder="note" aria-label="note">'
        f"<button class=clear type=button>clear</button></td>"
        "</tr>"
    )


def render_report(out_dir: str | Path) -> str:
    """The report page of a batch output folder, as a string."""
    root = derivatives_root(out_dir)
    con = db.connect(database_path(out_dir), create=False)
    try:
        cases = list(db.iter_cases(con))
        marks_rows = con.execute("SELECT case_key, mark, note, updated FROM qc_marks").fetchall()
        last_run = con.execute("SELECT run_id, finished, status FROM runs ORDER BY started DESC LIMIT 1").fetchone()
    finally:
        con.close()
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
    run_text = f"last run {last_run['run_id']} ({last_run['status']})" if last_run else ""
    return render_page(root, cases, embedded, run_text)


def render_page(root: Path, cases: Sequence[dict[str, Any]], embedded: dict[str, Any], run_text: str = "") -> str:
    """The page for ``cases`` (dicts with the ``cases`` table's columns, ``measures`` and optionally
    ``picture``, a PNG path); ``embedded`` holds stored marks by case key."""
    from neurospine import __version__

    report_id = hashlib.sha256(str(root).encode("utf-8")).hexdigest()[:16]
    tasks = sorted({str(c["task"]) for c in cases})
    statuses = sorted({str(c["status"]) for c in cases})
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in statuses}
    task_opts = "".join(f"<option>{_e(t)}</option>" for t in tasks)
    status_opts = "".join(f"<option>{_e(s)}</option>" for s in statuses)
    mark_opts = "".join(f"<option>{m}</option>" for m in ("unmarked", *db.MARKS))
    rows = "\n".join(_row(root, c) for c in cases)
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>neurospine QC report</title>
<style>{CSS}</style></head>
<body><div id="ns-report" data-report-id="{_e(report_id)}">
<header><h1>neurospine QC report</h1>
<div class=meta>{_e(root)} · {len(cases)} cases ({_e(", ".join(f"{k}: {v}" for k, v in counts.items()))}) ·
{_e(run_text)} · neurospine {_e(__version__)} · generated {_e(utc_now())}</div>
<div class=toolbar>
<label>task <select id="f-task"><option value="">all</option>{task_opts}</select></label>
<label>status <select id="f-status"><option value="">all</option>{status_opts}</select></label>
<label>mark <select id="f-mark"><option value="">all</option>{mark_opts}</select></label>
<input id="f-text" type="search" placeholder="filter by subject / file" aria-label="filter">
<span>shown <b id="shown">0</b></span>
<span>pass <b id="count-pass">0</b> · fail <b id="count-fail">0</b> · artifact <b id="count-artifact">0</b></span>
<button id="save" type="button">Save marks (qc_marks.json)</button><span id="saved"></span>
</div></header>
<table><thead><tr><th>picture</th><th>case</th><th>task</th><th>status</th><th>measures</th><th>QC</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<div id="lightbox" class="lightbox hidden" role="dialog" aria-label="enlarged picture"><img id="lightbox-img" alt="">
<div id="lightbox-caption"></div></div>
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
    return write_text_atomic(target, render_report(out_dir))


QC_CASES_DIR = "qc_cases"


def record_single_run(result: Any, qc_dir: str | Path, *, rebuild: bool = True) -> Path:
    """Add one ``TaskResult`` to the QC folder ``qc_dir`` and rewrite its ``qc_report.html`` (all runs so far;
    ``rebuild=False`` leaves the page for one :func:`write_single_run_report` after several runs).

    Each run leaves ``qc_dir/qc_cases/<stem>_<task>.json`` (the row, with its picture embedded, so the page
    does not depend on the output folder staying where it is); the page is rebuilt from those files."""
    from neurospine.batch.bids import parse_bids_name
    from neurospine.io import stem_of, write_text_atomic

    qc = Path(qc_dir)
    stem = stem_of(result.input_path)
    entities, _ = parse_bids_name(Path(str(result.input_path).rstrip("/")).name)
    picture = pick_picture(dict(result.outputs), Path("."))
    case = {
        "case_key": f"{stem}/{result.task}",
        "subject": entities.get("sub", stem),
        "session": entities.get("ses"),
        "input_path": str(Path(result.input_path).resolve()),
        "input_rel": Path(result.input_path).name,
        "task": result.task,
        "status": "done",
        "error": None,
        "notes": "; ".join(map(str, result.warnings)),
        "measures": {k: v for k, v in result.measures.items() if v is not None},
        "picture_uri": None if picture is None else data_uri(picture),
        "recorded": utc_now(),
    }
    write_text_atomic(qc / QC_CASES_DIR / f"{stem}_{result.task}.json", json.dumps(case, indent=1) + "\n")
    return write_single_run_report(qc) if rebuild else qc / REPORT_NAME


def write_single_run_report(qc_dir: str | Path) -> Path:
    from neurospine.io import write_text_atomic

    qc = Path(qc_dir)
    cases = []
    for f in sorted((qc / QC_CASES_DIR).glob("*.json")):
        case = read_json(f)
        if case is not None and "case_key" in case:
            cases.append(case)
    return write_text_atomic(qc / REPORT_NAME, render_page(qc.resolve(), cases, {}, f"{len(cases)} single runs"))
