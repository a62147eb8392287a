"""``neurospine batch``: run pipelines over a cohort (BIDS dataset, folder or glob), resumable."""

from __future__ import annotations

import argparse
import json
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got '{text}'")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def register(sub: Any) -> None:
    from neurospine.batch.tasks import task_names

    p = sub.add_parser(
        "batch",
        help="run pipelines over a cohort (BIDS dataset, folder or glob); resumable",
        usage="%(prog)s DATASET -o DIR --tasks LIST [options]",  # the options are listed below
        description="Run tasks on every scan of DATASET into DIR/derivatives/neurospine; a rerun resumes. Tasks: "
        + ", ".join(task_names())
        + ". Example: neurospine batch bids/ -o bids/ --tasks spine,cord. "
        + docs_line("cohort.md"),
    )
    p.add_argument(
        "dataset",
        metavar="DATASET",
        help="BIDS dataset, folder of images, one image or a quoted glob",
    )
    common.add_out(p, "output folder", metavar="DIR")
    p.add_argument("--tasks", required=True, metavar="LIST", help="comma-separated tasks, e.g. spine,cord")
    p.add_argument("--suffix", metavar="S", help="only scans with this BIDS suffix, e.g. T2w")
    p.add_argument("--acq", metavar="A", help="only scans with this acq- entity, e.g. sag")
    p.add_argument("--subjects", nargs="+", metavar="SUB", help="only these subjects (with or without sub-)")
    p.add_argument(
        "--jobs", type=common.positive_int, default=1, metavar="N", help="local worker processes (default 1)"
    )
    p.add_argument("--scheduler", metavar="URL", help="Dask scheduler (tcp://host:8786) instead of --jobs")
    p.add_argument(
        "--threads", type=common.positive_int, default=1, metavar="N", help="CPU threads per case (default 1)"
    )
    p.add_argument(
        "--option",
        action="append",
        type=_option,
        default=[],
        metavar="K=V",
        help="option for every task (JSON value if it parses); repeatable",
    )
    p.add_argument("--no-progress", action="store_true", help="plain lines per finished case, no bar")
    p.add_argument("--no-retry-failed", action="store_true", help="do not retry failed cases")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.batch import BatchConfig, run_batch
    from neurospine.errors import InputError, NeuroSpineError
    from neurospine.io.outdir import prepare_out_dir, remove_if_empty

    if args.jobs < 1 or args.threads < 1:
        raise InputError(None, "--jobs and --threads must be at least 1", "pass a positive number")
    out_dir, created = prepare_out_dir(args.out)
    config = BatchConfig(
        dataset=args.dataset,
        out_dir=args.out,
        tasks=[args.tasks],
        suffix=args.suffix,
        acq=args.acq,
        subjects=args.subjects,
        jobs=args.jobs,
        scheduler=args.scheduler,
        threads=args.threads,
        options=dict(args.option),
        progress=common.progress_mode(args),
        retry_failed=not args.no_retry_failed,
    )
    try:
        s = run_batch(config)
    except NeuroSpineError:
        if created:
            remove_if_empty(out_dir)  # refused before anything was written: leave no empty folder behind
        raise
    rate = s.done / s.wall_s * 60 if s.wall_s > 0 else 0.0
    common.say(
        args,
        f"{s.cases} cases: {s.done} done, {s.reused} already done, {s.skipped} skipped, {s.failed} failed "
        f"in {s.wall_s:.1f} s ({rate:.1f} cases/min, {s.executor})\nresults: {s.derivatives}",
    )
    for key, error in s.failures[:20]:
        common.say(args, f"  FAILED {key}: {error}")
    if len(s.failures) > 20:
        common.say(args, f"  ... {len(s.failures) - 20} more (neurospine table {args.out})")
    return 1 if s.failed else 0
