"""``neurospine`` command line: a thin shell over the public API.

Each sub-command lives in its own module ``neurospine.cli.<name>`` exposing
``register(subparsers) -> None``; the registered handler takes the parsed ``argparse.Namespace``
and returns an exit code. Heavy imports happen inside handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from neurospine.cli.common import (
    OneLineParser,
    add_verbosity,
    add_verbosity_everywhere,
    restore_logging,
    setup_logging,
)
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

    parser = OneLineParser(
        prog="neurospine",
        description="Spine and brain MRI segmentation and biomarkers, on the CPU, with shipped models.",
    )
    parser.add_argument("--version", action="version", version=f"neurospine {__version__}")
    add_verbosity(parser, top=True)
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
    add_verbosity_everywhere(parser)  # -q/-v on every command, after its own options
    return parser


class Terminated(BaseException):
    """SIGTERM arrived: unwind (workers stopped, temporary files removed) and exit 143."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While a command runs, SIGTERM raises :class:`Terminated` so every ``finally`` runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    previous_level = setup_logging(args.verbose, args.quiet)
    try:
        with _sigterm_unwinds():
            return int(args.handler(args) or 0)
    except NeuroSpineError as e:
        sys.stderr.write(f"neurospine: error: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("neurospine: interrupted\n")
        return 130
    except Terminated:
        sys.stderr.write("neurospine: terminated (SIGTERM)\n")
        return 143
    except BrokenPipeError:  # `neurospine table DIR -o - | head`: the reader left; not an error of ours
        _silence_stdout()
        return 141
    finally:
        restore_logging(previous_level)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
