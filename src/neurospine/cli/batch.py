"""``neurospine batch``: run pipelines over a cohort (BIDS dataset, folder or glob), resumable."""

from __future__ import annotations

import argparse
import json
from typing import Any

from neurospine.cli import common

EPILOG = """\
outputs (in OUT/derivatives/neurospine/):
  sub-*/[ses-*/]anat/<scan>/<task>/   each case's files + neurospine_manifest.json (provenance)
  neurospine.sqlite3                  results database (runs, cases, measures, QC marks)
  dataset_description.json            BIDS derivatives description

Re-running the same command skips finished cases (same input sha256, task, options and model versions)
and retries failed ones. Exit code 0 when every case is done or skipped, 1 when some failed (see
`neurospine table OUT`), 2 for unusable arguments. Progress: a bar on a terminal, else one line per finished
case on stderr (--no-progress: the lines even on a terminal; -q: neither). SIGTERM or a kill of this process
stops every worker too.

examples:
  neurospine batch /data/bids --out /data/bids --tasks spine,cord --suffix T2w --acq sag --jobs 2
  neurospine batch 'scans/*.nii.gz' --out results --tasks info
  neurospine batch /data/bids --out /scratch/out --tasks spine --scheduler tcp://10.0.0.5:8786
"""


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
        description="Run one or more tasks on every scan of DATASET. Cases run in temporary folders and appear "
        "atomically; a killed run resumes where it stopped. Tasks: " + ", ".join(task_names()) + ".",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset",
        help="BIDS dataset folder (sub-*/[ses-*/]anat/*.nii.gz), a folder of images, "
        "one image, or a quoted glob pattern",
    )
    common.add_out(p, "output folder (results go to OUT/derivatives/neurospine)")
    p.add_argument("--tasks", required=True, help="comma-separated tasks, e.g. spine,cord (or package.module:function)")
    p.add_argument("--suffix", help="only scans with this BIDS suffix, e.g. T2w")
    p.add_argument("--acq", help="only scans with this acq- entity, e.g. sag")
    p.add_argument("--subjects", nargs="+", metavar="SUB", help="only these subjects (with or without sub-)")
    p.add_argument(
        "--jobs", type=common.positive_int, default=1, help="local worker processes (default 1: in this process)"
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786); overrides --jobs")
    p.add_argument("--threads", type=common.positive_int, default=1, help="CPU threads per case (default 1)")
    p.add_argument(
        "--option",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="option passed to every task (value parsed as JSON when possible); repeatable",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar: plain lines per finished case")
    p.add_argument("--no-retry-failed", action="store_true", help="keep failed cases failed instead of retrying")
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
