"""``neurospine report``: static HTML QC report of a batch output folder."""

from __future__ import annotations

import argparse
from typing import Any

from neurospine.cli import common


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="write the HTML QC report of a batch run (mark pass/fail/artifact)",
        description="Write one self-contained HTML page (pictures embedded: it works when moved or mailed, no "
        "internet needed) with a row per case: picture (click to enlarge), status, key measures and "
        "pass/fail/artifact marking. Single runs write the same page with `neurospine spine|cord ... --qc DIR`. "
        "Marks are kept in the browser until 'Save marks' "
        "downloads qc_marks.json; pass it back with --marks (or to `neurospine table --marks`). "
        "Example: neurospine report results --marks ~/Downloads/qc_marks.json",
    )
    p.add_argument("dir", help="the --out folder of `neurospine batch` (or its derivatives/neurospine)")
    p.add_argument("--marks", help="QC marks JSON saved from the report; stored in the database and shown")
    common.add_out(
        p, "HTML file, - for standard output (default DIR/derivatives/neurospine/qc_report.html)", required=False
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.batch.report import write_report

    if args.out is not None:
        common.check_output_file(args.out)
    path = write_report(args.dir, args.out, marks_file=args.marks)
    if not common.to_stdout(args.out):
        common.say(args, f"{path}")
    return 0
