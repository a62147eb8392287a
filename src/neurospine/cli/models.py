"""``neurospine models``: list the shipped model cards."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from neurospine.cli import common


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list shipped models (version, sha256, metrics)",
        description="List the model cards shipped with neurospine. Example: neurospine models --json",
    )
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    common.add_out(p, "write the listing to this file instead of standard output", required=False)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from neurospine.io import write_text_atomic
    from neurospine.models import list_cards

    if args.out:
        common.check_output_file(args.out)
    cards = list_cards()
    if args.json:
        text = json.dumps([asdict(c) for c in cards], indent=2) + "\n"
    else:
        rows = [("name", "version", "task", "sha256", "trained on")]
        for c in cards:
            data = ", ".join(d.get("name", "?") for d in c.training_data)
            rows.append((c.name, c.version, c.task, c.sha256[:12], data))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        text = "".join("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] + "\n" for r in rows)
    if args.out:
        write_text_atomic(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
