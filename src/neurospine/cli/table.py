"""``neurospine table``: export the cohort table of a batch output folder (CSV or Parquet)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "table",
        help="export the tidy cohort table of a batch run (csv/parquet)",
        description="One row per scan x task: entities, status, QC mark, error, model versions, timings and every "
        "measure as a column with its unit in the name. Example: neurospine table results --format parquet "
        "--out cohort.parquet --marks qc_marks.json",
    )
    p.add_argument("dir", help="the --out folder of `neurospine batch` (or its derivatives/neurospine)")
    p.add_argument("--format", choices=("csv", "parquet"), help="default: from --out's suffix, else csv")
    p.add_argument("--out", help="output file (default: DIR/derivatives/neurospine/cohort.<format>)")
    p.add_argument("--marks", help="QC marks JSON saved from the report; stored in the database first")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.batch import derivatives_root
    from neurospine.batch.table import export_table

    fmt = args.format or ("parquet" if args.out and Path(args.out).suffix in (".parquet", ".pq") else "csv")
    out = Path(args.out) if args.out else derivatives_root(args.dir) / f"cohort.{fmt}"
    path = export_table(args.dir, out, fmt=fmt, marks_file=args.marks)
    sys.stdout.write(f"{path}\n")
    return 0
