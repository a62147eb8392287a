"""``neurospine spine IMAGE --out DIR``: whole-spine segmentation, instances and level names."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from neurospine.cli.helpfmt import docs_line

HELP = (
    "Segment the spine in a sagittal or isotropic MRI: 14 structures, vertebrae named by level, discs and "
    "endplates. Writes <stem>_seg-spine_msk.nii.gz, _seg-vert_msk.nii.gz, _seg-spine_ctd.json, _snp.png and "
    "_spine.csv into --out, on the input's grid. " + docs_line("tools/spine.md")
)
EXAMPLE = "Example: neurospine spine sub-01_T2w.nii.gz --out derivatives/spine"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "spine",
        help="whole-spine segmentation: structures, vertebra instances, level names",
        description=HELP,
        epilog=EXAMPLE,
    )
    p.add_argument("image", help="sagittal or isotropic spine MRI (NIfTI, NRRD/MHA or DICOM folder)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    p.add_argument("--threads", type=int, default=2, metavar="N", help="CPU threads for the model (default 2)")
    p.add_argument(
        "--model",
        default="spine_semantic",
        metavar="NAME",
        help="model card (default spine_semantic; spine_semantic_lumbar: lumbar only)",
    )
    p.add_argument(
        "--extra-vertebra",
        choices=("l6", "t13"),
        default=None,
        help="name of a 24th presacral vertebra (default l6, flagged)",
    )
    p.add_argument("--no-snapshot", action="store_true", help="skip the PNG snapshot")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import json

    from neurospine.spine.api import run_file

    result = run_file(
        args.image,
        args.out,
        threads=args.threads,
        snapshot=not args.no_snapshot,
        model=args.model,
        extra_vertebra=args.extra_vertebra,
    )
    if args.json:
        payload = {
            "outputs": {k: str(v) for k, v in result.outputs.items()},
            "measures": result.measures,
            "models": result.models,
            "timings_s": {k: round(v, 3) for k, v in result.timings_s.items()},
            "warnings": result.warnings,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    m = result.measures
    sys.stdout.write(
        f"spine: {m['n_vertebrae']} vertebrae [{m['levels']}], naming {m['naming_anchor']} "
        f"(confidence {m['naming_confidence']}), {result.timings_s['total']:.1f} s\n"
    )
    for w in result.warnings:
        sys.stdout.write(f"  note: {w}\n")
    for key, path in result.outputs.items():
        sys.stdout.write(f"  {key:<10} {path}\n")
    return 0
