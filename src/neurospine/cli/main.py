"""``neurospine`` command line: a thin shell over the public API.

Each sub-command lives in its own module ``neurospine.cli.<name>`` exposing
``register(subparsers) -> None``; the registered handler takes the parsed ``argparse.Namespace``
and returns an exit code. Heavy imports happen inside handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from neurospine.cli.helpfmt import CommandParser
from neurospine.errors import NeuroSpineError

log = logging.getLogger("neurospine")

#: Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "spine",
    "cord",
    "slice2d",
    "brainage",
    "evaluate",
    "batch",
    "table",
    "report",
    "train",
    "synth",
    "models",
    "labels",
)


def build_parser() -> argparse.ArgumentParser:
    from neurospine import __version__

    parser = CommandParser(
        prog="neurospine",
        description="Spine and brain MRI segmentation and biomarkers, on the CPU, with shipped models.",
    )
    parser.add_argument("--version", action="version", version=f"neurospine {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"neurospine.cli.{name}")
        except ModuleNotFoundError as e:  # a command still under construction in this checkout
            if e.name != f"neurospine.cli.{name}":
                raise
            log.debug("command module %s not present", name)
            continue
        module.register(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except NeuroSpineError as e:
        sys.stderr.write(f"neurospine: error: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("neurospine: interrupted\n")
        return 130


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
