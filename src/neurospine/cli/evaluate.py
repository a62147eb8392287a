"""``neurospine evaluate PRED REF --out CSV``: Dice, surface distances and PQ of a label map."""

from __future__ import annotations

import argparse
import math
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line

_EPILOG = "examples: neurospine evaluate pred.nii.gz ref.nii.gz -o vert.csv --mode instance --labels 20-25"


def parse_labels(text: str) -> list[int]:
    """``"41,42,20-25"`` -> ``[20, 21, 22, 23, 24, 25, 41, 42]``."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if lo > hi or lo < 1:
                    raise ValueError
                values.update(range(lo, hi + 1))
            else:
                v = int(part)
                if v < 1:
                    raise ValueError
                values.add(v)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad label list {text!r}: give positive integers and ranges, e.g. 41,42,20-25"
            ) from None
    if not values:
        raise argparse.ArgumentTypeError("empty label list")
    return sorted(values)


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be a number in [0, 1), got {text!r}")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare a predicted label map with a reference (Dice, ASSD, HD95 in mm, PQ)",
        description="Score a label map PRED against a reference REF on the same grid: Dice, IoU, ASSD/HD95/HD "
        "in mm, volumes, PQ for instances. " + docs_line("tools/evaluate.md"),
        epilog=_EPILOG,
    )
    p.add_argument("pred", metavar="PRED", help="predicted label map (NIfTI/NRRD/MHA or DICOM folder)")
    p.add_argument("ref", metavar="REF", help="reference label map on the same grid")
    common.add_out(p, "CSV file to write (atomically; - for standard output)", metavar="CSV")
    p.add_argument(
        "--mode",
        choices=("auto", "semantic", "instance"),
        default="auto",
        metavar="MODE",
        help="semantic, instance (matched, PQ) or auto (default: instance if SPINEPS ids)",
    )
    p.add_argument(
        "--labels", type=parse_labels, default=None, metavar="LIST", help="only these labels, e.g. 41,42,20-25"
    )
    p.add_argument(
        "--resample",
        action="store_true",
        help="resample PRED onto the grid of REF (nearest neighbour)",
    )
    p.add_argument(
        "--empty",
        choices=("nan", "perfect"),
        default="nan",
        metavar="AS",
        help="both masks empty: nan (default) or perfect",
    )
    p.add_argument(
        "--match",
        choices=("iou", "hungarian", "label"),
        default="iou",
        metavar="HOW",
        help="iou (IoU > T, default), hungarian (max total Dice) or label (same id)",
    )
    p.add_argument("--threshold", type=_threshold, default=0.5, metavar="T", help="matching threshold (default 0.5)")
    p.add_argument("--no-distances", action="store_true", help="skip ASSD/HD95/HD (faster)")
    p.set_defaults(handler=_run)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else "inf" if math.isinf(v) else f"{v:.3f}"
    return str(v)


def _run(args: argparse.Namespace) -> int:
    from neurospine.metrics import evaluate_files

    common.check_output_file(args.out)
    rows = evaluate_files(
        args.pred,
        args.ref,
        args.out,
        mode=args.mode,
        labels=args.labels,
        empty=args.empty,
        match=args.match,
        threshold=args.threshold,
        resample=args.resample,
        distances=not args.no_distances,
    )
    shown = [r for r in rows if r["level"] != "instance"]
    for r in shown:
        if r["level"] == "summary":
            common.say(
                args,
                f"{r['name']:<26} PQ {_fmt(r['pq'])}  SQ {_fmt(r['sq'])}  RQ {_fmt(r['rq'])}  "
                f"TP {r['tp']} FP {r['fp']} FN {r['fn']}",
            )
        else:
            common.say(
                args,
                f"{r['label']!s:>4} {r['name']:<26} Dice {_fmt(r['dice'])}  ASSD {_fmt(r['assd_mm'])} mm  "
                f"HD95 {_fmt(r['hd95_mm'])} mm",
            )
    common.say(args, f"wrote {len(rows)} rows to {'standard output' if common.to_stdout(args.out) else args.out}")
    return 0
