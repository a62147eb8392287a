"""What every command shares: one-line usage errors, -q/-v, checked numbers, safe outputs, progress.

Commands that write a folder of ``<stem>_*`` outputs per input image (spine, cord, slice2d) run through
:func:`run_per_image`: the folder is checked before any inference, inputs with the same stem are refused,
earlier outputs of a stem are refused unless ``--overwrite``, each stem is locked against a concurrent run,
and each run's files appear together (staged, then moved into place, stale ones of that stem removed).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

from neurospine.cli import output_options
from neurospine.cli.helpfmt import CommandParser
from neurospine.errors import InputError, NeuroSpineError, NoStructureFoundError

log = logging.getLogger(__name__)


# -- parsing --------------------------------------------------------------------------------------------------
class OneLineParser(CommandParser):
    """A parser with the shared help formatter whose usage errors are one line (what is wrong, where the
    help is) and exit 2; sub-command parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def add_verbosity(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``-q/--quiet`` and ``-v/--verbose``; on sub-commands they only override when given."""
    default: Any = 0 if top else argparse.SUPPRESS
    parser.add_argument("-v", "--verbose", action="count", default=default, help="more log lines (-vv: debug)")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="errors only: no progress or summary lines",
    )


def add_verbosity_everywhere(parser: argparse.ArgumentParser) -> None:
    """Add -q/-v to every sub-command (and their sub-commands) that does not have them yet."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                if "--quiet" not in sub._option_string_actions:
                    add_verbosity(sub)
                add_verbosity_everywhere(sub)


def add_out(parser: argparse.ArgumentParser, help: str, *, required: bool = True, **kw: Any) -> None:
    """``-o/--out``."""
    parser.add_argument("-o", "--out", required=required, help=help, **kw)


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace earlier outputs of these inputs in --out",
    )


def _number(text: str, kind: type) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a {'whole number' if kind is int else 'number'}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (threads, jobs, passes, counts)."""
    value = int(_number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give a whole number of at least 1")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0 (indices)."""
    value = int(_number(text, int))
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give a whole number of at least 0")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (sizes in mm)."""
    value = float(_number(text, float))
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not allowed: give a number greater than 0")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = float(_number(text, float))
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not allowed: give a number of at least 0")
    return value


# -- verbosity and printing ------------------------------------------------------------------------------------
def quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def to_stdout(path: str | Path | None) -> bool:
    """``-o -``, ``-o /dev/stdout`` and the like: the data itself goes to standard output."""
    from neurospine.io.save import writes_to_stdout

    return writes_to_stdout(path)


def info_stream(args: argparse.Namespace) -> TextIO:
    """Where human-readable summaries go: stdout, or stderr when the data itself goes to stdout (``-o -``)."""
    return sys.stderr if to_stdout(getattr(args, "out", None)) else sys.stdout


def say(args: argparse.Namespace, text: str) -> None:
    """Write a summary line unless ``--quiet``."""
    if not quiet(args):
        stream = info_stream(args)
        stream.write(text if text.endswith("\n") else text + "\n")


def progress_mode(args: argparse.Namespace) -> str:
    if quiet(args):
        return "off"
    if getattr(args, "no_progress", False):
        return "plain"
    return "auto"


class _Stderr:
    """A stream that always writes to the current ``sys.stderr`` (redirected while a progress bar is drawn)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_HANDLER_NAME = "neurospine-cli"


def setup_logging(verbose: int, quiet: bool) -> int:
    """Log to stderr: errors only with -q, warnings by default, -v info, -vv debug.

    Returns the ``neurospine`` logger's previous level, for :func:`restore_logging` after the command.
    """
    level = (
        logging.ERROR if quiet else logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if handler is None and not root.handlers:
        handler = logging.StreamHandler(_Stderr())
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    ns = logging.getLogger("neurospine")
    previous = ns.level
    ns.setLevel(level)
    return previous


def restore_logging(previous: int) -> None:
    """Put the ``neurospine`` logger's level back (main() may run many times in one process, as in tests)."""
    logging.getLogger("neurospine").setLevel(previous)


# -- output checks --------------------------------------------------------------------------------------------
def check_output_file(path: str | Path) -> None:
    """Before any work: the file ``path`` can be written (``-`` = standard output; devices are written through).

    Raises :class:`InputError` when ``path`` is a folder or its folder cannot be created or written.
    """
    if to_stdout(path):
        return
    from neurospine.io.outdir import prepare_out_dir, remove_if_empty

    target = Path(path).expanduser()
    if target.is_dir():
        raise InputError(target, "is a folder, not a file", "give a file name (or - for standard output)")
    if target.exists() and not target.is_file():
        return  # a device, FIFO or /dev/stdout: written through, never replaced
    folder, created = prepare_out_dir(target.resolve().parent)
    if created:
        remove_if_empty(folder)  # the writer creates it again; do not leave an empty folder if the run fails


# -- per-image runs -------------------------------------------------------------------------------------------
@dataclass
class ImageRun:
    """One input's run: its result or the error that stopped it."""

    image: Path
    result: Any = None
    error: NeuroSpineError | None = None
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else int(self.error.exit_code)


def _rewrite_error(e: NeuroSpineError, rewrite: Callable[[str], str]) -> None:
    e.args = tuple(rewrite(a) if isinstance(a, str) else a for a in e.args)
    if isinstance(e, InputError) and e.path is not None:
        e.path = rewrite(e.path)


def _rewrite_result(result: Any, staging: Any) -> Any:
    try:
        return replace(
            result,
            outputs={k: staging.final(v) for k, v in result.outputs.items()},
            warnings=[staging.rewrite(str(w)) for w in result.warnings],
        )
    except TypeError:  # not a TaskResult: leave it
        return result


def report_error(e: NeuroSpineError) -> None:
    sys.stderr.write(f"neurospine: error: {e}\n")


def run_per_image(
    args: argparse.Namespace,
    images: Sequence[str | Path],
    out: str | Path,
    *,
    label: str,
    expected: Callable[[Path, Path], Sequence[Path]],
    run_one: Callable[[Path, Path], Any],
    keep_on: tuple[type[NeuroSpineError], ...] = (NoStructureFoundError,),
) -> list[ImageRun]:
    """Run ``run_one(image, folder)`` for every image, safely, into the output folder ``out``.

    ``expected(image, out_dir)`` lists the outputs a run of ``image`` may write. Every check happens before
    the first inference: the folder can be written, no two inputs share a stem, no outputs of an input are
    already there (unless ``args.overwrite``), no other process is writing them. A failing input is reported
    (one line) and the others still run; the files of a run appear only when it succeeds (or fails with one
    of ``keep_on``, e.g. "no cord found" keeps its QC image).
    """
    from neurospine.io import stem_of
    from neurospine.io.outdir import (
        clean_stale_staging,
        existing_outputs,
        prepare_out_dir,
        remove_if_empty,
        stem_lock,
    )

    paths = [Path(p) for p in images]
    for p in paths:
        if not p.exists():
            raise InputError(p, "file not found", "check the path")
    stems: dict[str, Path] = {}
    for p in paths:
        stem = stem_of(p)
        if stem in stems:
            raise InputError(
                p,
                f"{stems[stem].name} and {p.name} would both write outputs named {stem}_*",
                "run them into different -o/--out folders, or rename one",
            )
        stems[stem] = p
    out_dir, created = prepare_out_dir(out)
    runs: list[ImageRun] = []
    try:
        with contextlib.ExitStack() as locks:
            for stem in stems:
                locks.enter_context(stem_lock(out_dir, stem))
            for stem, p in stems.items():
                clean_stale_staging(out_dir, stem)
                found = existing_outputs(expected(p, out_dir))
                if found and not getattr(args, "overwrite", False):
                    raise InputError(
                        found[0],
                        f"already exists: {len(found)} output(s) of '{stem}' from an earlier run are in this folder",
                        "pass --overwrite to replace them, or choose another -o/--out",
                    )
            runs = list(_run_all(args, paths, out_dir, label, expected, run_one, keep_on))
    finally:
        if created and not any(r.error is None for r in runs):
            remove_if_empty(out_dir)
    return runs


def _run_all(
    args: argparse.Namespace,
    paths: Sequence[Path],
    out_dir: Path,
    label: str,
    expected: Callable[[Path, Path], Sequence[Path]],
    run_one: Callable[[Path, Path], Any],
    keep_on: tuple[type[NeuroSpineError], ...],
) -> Iterator[ImageRun]:
    from neurospine.io import stem_of
    from neurospine.io.outdir import staged_outputs
    from neurospine.progress import Progress

    with Progress(label, len(paths), mode=progress_mode(args), announce=True) as bar:  # type: ignore[arg-type]
        for p in paths:
            bar.begin(p.name)
            t0 = time.perf_counter()
            run = ImageRun(p)
            with staged_outputs(out_dir, stem_of(p), list(expected(p, out_dir))) as staging:
                try:
                    run.result = _rewrite_result(run_one(p, staging.dir), staging)
                    staging.install()
                except keep_on as e:
                    staging.install()
                    _rewrite_error(e, staging.rewrite)
                    run.error = e
                except NeuroSpineError as e:
                    _rewrite_error(e, staging.rewrite)
                    run.error = e
            run.seconds = time.perf_counter() - t0
            if run.error is not None:
                report_error(run.error)
            bar.end(p.name, ok=run.error is None, seconds=run.seconds)
            yield run


def run_task_per_image(
    args: argparse.Namespace,
    *,
    label: str,
    run_file: Callable[..., Any],
    output_paths: Callable[[Path, Path], Mapping[str, Path]],
    options: Mapping[str, Any],
    per_image: Callable[[Path], Mapping[str, Any]] | None = None,
) -> list[ImageRun]:
    """:func:`run_per_image` for a mask-writing task (spine, cord, slice2d) over ``args.images`` into ``args.out``.

    Each image runs as ``run_file(image, folder, threads=args.threads, **options, **per_image(image),
    force=args.force)``, then gets the DICOM-SEGs ``--output-format`` asks for; ``output_paths(image, out)`` names
    the pipeline's outputs of an image. DICOM-SEG requests are checked on every input first.
    """
    output_options.check(args, args.images)

    def one(image: Path, folder: Path) -> Any:
        extra = per_image(image) if per_image is not None else {}
        result = run_file(image, folder, threads=args.threads, **options, **extra, force=args.force)
        return output_options.export(result, args)

    return run_per_image(
        args,
        args.images,
        args.out,
        label=label,
        expected=lambda image, out: output_options.expected(args, list(output_paths(image, out).values())),
        run_one=one,
    )


def report_runs(
    args: argparse.Namespace,
    runs: Sequence[ImageRun],
    *,
    payload: Callable[[Any], Any],
    lines: Callable[[Any], Iterable[str]],
    qc_line: Callable[[Path], str],
) -> int:
    """After :func:`run_task_per_image`: add the results to ``--qc``'s page, then print them (``--json``:
    ``payload`` of each; else ``lines`` of each and ``qc_line`` of the page). Returns the exit code."""
    done = [r.result for r in runs if r.result is not None]
    qc_page = output_options.record_qc(done, args)
    if args.json:
        if done:
            write_json([payload(res) for res in done])
        return exit_code(runs)
    for res in done:
        for line in lines(res):
            say(args, line)
    if qc_page is not None:
        say(args, qc_line(qc_page))
    return exit_code(runs)


def result_payload(
    res: Any, middle: Mapping[str, Any] | None = None, *, timings_s: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """A task result as ``--json`` prints it: input, outputs, measures, then ``middle``'s entries, then timings
    (``timings_s`` in place of the result's own when given) and warnings."""
    return {
        "input": res.input_path,
        "outputs": {k: str(v) for k, v in res.outputs.items()},
        "measures": res.measures,
        **(middle or {}),
        "timings_s": res.timings_s if timings_s is None else timings_s,
        "warnings": res.warnings,
    }


@contextlib.contextmanager
def progress_of(args: argparse.Namespace, label: str, item: str) -> Iterator[None]:
    """Progress of one long step (a spinner after ~2 s on a terminal, plain start/end lines elsewhere)."""
    from neurospine.progress import Progress

    with Progress(label, 1, mode=progress_mode(args), announce=True) as bar:  # type: ignore[arg-type]
        bar.begin(item)
        ok = False
        try:
            yield
            ok = True
        finally:
            bar.end(item, ok=ok)


def exit_code(runs: Sequence[ImageRun]) -> int:
    """0 when every input succeeded, else the highest exit code among them."""
    return max((r.exit_code for r in runs), default=0)


def write_json(payloads: Sequence[Any]) -> None:
    """One input: its JSON object; several: a list of them."""
    import json

    value = payloads[0] if len(payloads) == 1 else list(payloads)
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
