"""``neurospine table``: export the cohort table of a batch output folder (CSV or Parquet)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurospine.cli import common


def register(sub: Any) -> None:
    p = sub.add_parser(
        "table",
        help="export the tidy cohort table of a batch run (csv/parquet)",
        description="One row per scan x task: entities, status, QC mark, error, model versions, timings and every "
        "measure as a column with its unit in the name. Example: neurospine table results --format parquet "
        "--out cohort.parquet --marks qc_marks.json; neurospine table results -o - | head",
    )
    p.add_argument("dir", help="the --out folder of `neurospine batch` (or its derivatives/neurospine)")
    p.add_argument("--format", choices=("csv", "parquet"), help="default: from --out's suffix, else csv")
    common.add_out(
        p, "output file, - for standard output (default: DIR/derivatives/neurospine/cohort.<format>)", required=False
    )
    p.add_argument("--marks", help="QC marks JSON saved from the report; stored in the database first")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.batch import derivatives_root
    from neurospine.batch.table import export_table

    fmt = args.format or ("parquet" if args.out and Path(args.out).suffix in (".parquet", ".pq") else "csv")
    out = args.out if args.out else derivatives_root(args.dir) / f"cohort.{fmt}"
    common.check_output_file(out)
    path = export_table(args.dir, out, fmt=fmt, marks_file=args.marks)
    if not common.to_stdout(out):
        common.say(args, f"{path}")
    return 0
