"""``neurospine demo``: make a synthetic whole-spine scan and run the spine pipeline on it (offline)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line

HELP = (
    "Generate a synthetic sagittal whole-spine MRI with the built-in engine (nothing is downloaded) and run "
    "`neurospine spine` on it. Writes the scan, its reference label maps and the spine outputs into --out (a "
    "new temporary folder if not given) and prints where they went. " + docs_line("tools/spine.md")
)
EXAMPLE = "Example: neurospine demo --out ./neurospine-demo"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the spine pipeline on a synthetic whole-spine scan (offline)",
        description=HELP,
        epilog=EXAMPLE,
    )
    common.add_out(p, "output folder (default: a new temporary folder)", required=False, default=None, metavar="DIR")
    p.add_argument("--seed", type=int, default=7, help="seed of the synthetic scan")
    p.add_argument("--levels", default="whole", help="levels of the synthetic scan, e.g. whole, L1-S1, C2-T6")
    p.add_argument("--contrast", default="t2w", help="synthetic contrast: t2w, t1w, stir, random, ...")
    p.add_argument(
        "--threads", type=common.positive_int, default=2, metavar="N", help="CPU threads for the model (default 2)"
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import tempfile

    from neurospine.io.outdir import prepare_out_dir
    from neurospine.spine.demo import run_demo

    out = args.out if args.out is not None else tempfile.mkdtemp(prefix="neurospine-demo-")
    prepare_out_dir(out)
    with common.progress_of(args, "demo", f"synthetic scan (seed {args.seed})"):
        report = run_demo(out, seed=args.seed, levels=args.levels, contrast=args.contrast, threads=args.threads)
    common.say(args, f"demo: synthetic scan {report['image']}")
    common.say(args, f"  truth: {', '.join(report['truth_levels'])}")
    common.say(args, f"  found: {report['levels']} (naming {report['naming_anchor']}), {report['seconds']:.1f} s")
    for key, path in report["outputs"].items():
        common.say(args, f"  {key:<10} {path}")
    common.say(args, f"demo: everything is in {Path(out).resolve()}")
    return 0
