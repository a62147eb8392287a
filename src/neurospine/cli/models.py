"""``neurospine models``: list the shipped model cards."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list shipped models (version, sha256, metrics)",
        description="List the model cards shipped with neurospine. Example: neurospine models --json",
    )
    p.add_argument("--json", action="store_true", help="print the full cards as JSON")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from neurospine.models import list_cards

    cards = list_cards()
    if args.json:
        sys.stdout.write(json.dumps([asdict(c) for c in cards], indent=2) + "\n")
        return 0
    rows = [("name", "version", "task", "sha256", "trained on")]
    for c in cards:
        data = ", ".join(d.get("name", "?") for d in c.training_data)
        rows.append((c.name, c.version, c.task, c.sha256[:12], data))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        sys.stdout.write("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] + "\n")
    return 0
