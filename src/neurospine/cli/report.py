"""``neurospine report``: static HTML QC report of a batch output folder."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write the HTML QC report of a batch run (mark pass/fail/artifact)",
        description="Write one self-contained HTML page (no internet needed) with a row per case: snapshot, "
        "status, key measures and pass/fail/artifact marking. Marks are kept in the browser until 'Save marks' "
        "downloads qc_marks.json; pass it back with --marks (or to `neurospine table --marks`). "
        "Example: neurospine report results --marks ~/Downloads/qc_marks.json",
    )
    p.add_argument("dir", help="the --out folder of `neurospine batch` (or its derivatives/neurospine)")
    p.add_argument("--marks", help="QC marks JSON saved from the report; stored in the database and shown")
    p.add_argument("--out", help="HTML file (default DIR/derivatives/neurospine/qc_report.html)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.batch.report import write_report

    path = write_report(args.dir, args.out, marks_file=args.marks)
    sys.stdout.write(f"{path}\n")
    return 0
