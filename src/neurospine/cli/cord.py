"""``neurospine cord``: contrast-agnostic spinal-cord segmentation and CSA morphometry."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from neurospine.cli.helpfmt import docs_line

EPILOG = """\
Example: neurospine cord sub-01_T2w.nii.gz --out results/ --levels sub-01_seg-vert_msk.nii.gz"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "cord",
        help="spinal cord segmentation (any contrast) and CSA per slice and level",
        description="Segment the spinal cord and canal in a 3D MRI of any contrast, axial or sagittal, and "
        "measure the cross-sectional area per slice and per vertebral level. Writes cord/canal masks, "
        "<stem>_csa.csv, <stem>_csa_perlevel.csv and a QC picture. Exit code 4 when no cord is found. "
        + docs_line("tools/cord.md"),
        epilog=EPILOG,
    )
    p.add_argument("image", type=Path, help="input image (NIfTI, NRRD/MHA or DICOM folder)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument(
        "--levels",
        type=Path,
        default=None,
        metavar="VERT_MASK",
        help="level mask: seg-vert (from neurospine spine) or cord-by-level",
    )
    p.add_argument(
        "--no-auto-levels",
        action="store_true",
        help="without --levels, do not estimate levels with the spine model",
    )
    p.add_argument(
        "--slab-mm",
        type=_non_negative_mm,
        default=None,
        metavar="MM",
        help="average thin axial slices over a slab MM thick (default 3; 0 = off)",
    )
    p.add_argument("--threads", type=int, default=2, metavar="N", help="CPU threads for inference (default 2)")
    p.add_argument("--model", default="cord_softseg", metavar="NAME", help="model card name (default cord_softseg)")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(handler=_run)


def _non_negative_mm(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of millimetres") from None
    if not value >= 0.0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text} mm: give a thickness >= 0 (0 turns the slab off)")
    return value


def _run(args: argparse.Namespace) -> int:
    from neurospine.cord.api import run_file

    res = run_file(
        args.image,
        args.out,
        threads=args.threads,
        levels=args.levels,
        auto_levels=not args.no_auto_levels,
        model=args.model,
        slab_mm=args.slab_mm,
    )
    if args.json:
        payload = {
            "task": res.task,
            "input": res.input_path,
            "outputs": {k: str(v) for k, v in res.outputs.items()},
            "measures": res.measures,
            "models": res.models,
            "timings_s": res.timings_s,
            "warnings": res.warnings,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        m = res.measures
        mean = m.get("csa_mm2_mean")
        csa = "n/a (every slice is at L3 or lower)" if mean is None else f"{mean} mm2"
        sys.stdout.write(f"cord: {m.get('n_slices')} slices, mean CSA {csa} -> {args.out}\n")
        for w in res.warnings:
            sys.stdout.write(f"warning: {w}\n")
    return 0
