"""``neurospine labels``: print or export the label table."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line


def register(sub: Any) -> None:
    from neurospine.labels import KIND_FILES, TABLE_KINDS

    kinds = "; ".join(f"{k}: {v}" for k, v in KIND_FILES.items())
    p = sub.add_parser(
        "labels",
        help="label tables of the masks neurospine writes (text, JSON, ITK-SNAP, 3D Slicer)",
        description="Label values of the masks neurospine writes, one table per kind of mask. "
        "Example: neurospine labels --format itksnap --kind instance > vert.txt. " + docs_line("labels.md"),
    )
    p.add_argument(
        "--format",
        choices=("table", "itksnap", "slicer", "json"),
        default="table",
        help="table (readable, default), itksnap (label description file), slicer (colour table) or json",
    )
    p.add_argument(
        "--kind",
        choices=TABLE_KINDS,
        default="semantic",
        help=f"which mask's table (default semantic): {kinds}",
    )
    common.add_out(p, "write to this file instead of standard output (- = standard output)", required=False)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine import labels
    from neurospine.io import write_text_atomic

    if args.format == "itksnap":
        text = labels.export_itksnap(args.kind)
    elif args.format == "slicer":
        text = labels.export_slicer(args.kind)
    elif args.format == "json":
        text = labels.export_json(args.kind)
    else:
        text = "".join(f"{r.value}\t{r.name}\t{r.region}\n" for r in labels.all_label_rows(args.kind))
    if args.out:
        common.check_output_file(args.out)
        write_text_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
