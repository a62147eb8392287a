"""``neurospine slice2d``: 2D vertebral body and disc segmentation, radiomics and heights."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neurospine.cli import common, output_options
from neurospine.cli.helpfmt import docs_line

DESCRIPTION = (
    "Bodies, discs on sagittal MR/CT or lateral X-ray: _slice2d_msk.nii.gz, _radiomics.csv, _heights.csv. "
    "Example: neurospine slice2d a.nii.gz -o o/. " + docs_line("tools/slice2d.md")
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "slice2d",
        usage="%(prog)s IMAGE [IMAGE ...] -o DIR [options]",  # the options are listed below
        help="2D body/disc segmentation, radiomics and heights (MR, CT, X-ray)",
        description=DESCRIPTION,
    )
    p.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="3D volume, DICOM folder/file, PNG/JPEG or 2D NIfTI"
    )
    common.add_out(p, "output folder (created if missing)", type=Path, metavar="DIR")
    common.add_overwrite(p)
    p.add_argument(
        "--modality",
        choices=("mr", "ct", "xray"),
        default=None,
        metavar="M",
        help="mr, ct or xray: set the modality when the guess is flagged uncertain",
    )
    p.add_argument(
        "--pixel-mm",
        type=common.positive_float,
        default=None,
        metavar="MM",
        help="2D input: pixel size in mm when the file has none or a placeholder",
    )
    p.add_argument(
        "--slice",
        dest="slice_index",
        metavar="N",
        type=common.non_negative_int,
        default=None,
        help="3D input: sagittal slice index (stored left-right axis, 0-based)",
    )
    p.add_argument(
        "--lowest-level",
        default=None,
        metavar="L",
        help="level of the lowest body in view (e.g. S1): names all levels",
    )
    p.add_argument(
        "--outlier-sigma",
        type=float,  # checked in the handler (an InputError: exit 2, one line)
        default=None,
        metavar="S",
        help="radiomics: drop pixels beyond mean +- S sd (default 3; 0 = off)",
    )
    p.add_argument(
        "--threads", type=common.positive_int, default=2, metavar="N", help="CPU threads for inference (default 2)"
    )
    p.add_argument("--force", action="store_true", help="run an image that looks like the wrong kind (flagged)")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    output_options.add_arguments(p, "mask", qc=False)
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.errors import InputError
    from neurospine.labels import VERTEBRA_IDS
    from neurospine.slice2d.api import output_paths, run_file
    from neurospine.slice2d.radiomics import DEFAULT_OUTLIER_SIGMA

    if args.lowest_level is not None and args.lowest_level.upper() not in VERTEBRA_IDS:
        raise InputError(None, f"unknown level '{args.lowest_level}'", "use a level name such as S1, L5 or T12")
    sigma = DEFAULT_OUTLIER_SIGMA if args.outlier_sigma is None else args.outlier_sigma
    if sigma is not None and not (sigma >= 0 and math.isfinite(sigma)):
        raise InputError(
            None, f"--outlier-sigma {sigma} is not a finite number >= 0", "use e.g. 3, or 0 for no filtering"
        )

    runs = common.run_task_per_image(
        args,
        label="slice2d",
        run_file=run_file,
        output_paths=output_paths,
        options={
            "modality": args.modality,
            "slice_index": args.slice_index,
            "lowest_level": args.lowest_level,
            "outlier_sigma": sigma or None,
            "pixel_mm": args.pixel_mm,
        },
    )
    return common.report_runs(
        args, runs, payload=_summary, lines=lambda res: _lines(res, args.out), qc_line=lambda page: f"QC page: {page}"
    )


def _lines(res: Any, out: Path) -> Iterator[str]:
    yield (
        f"{res.measures['n_bodies']} bodies, {res.measures['n_discs']} discs "
        f"({res.measures['modality']}); outputs in {out}"
    )
    for w in res.warnings:
        yield f"note: {w}"


def _summary(res: Any) -> dict[str, Any]:
    extra = res.extra
    return common.result_payload(
        res,
        {
            "slice": extra.get("slice_input"),
            "slice_how": extra.get("slice_how"),
            "modality_how": extra.get("modality_how"),
            "spacing_mm": extra.get("spacing_mm"),
            "spacing_known": extra.get("spacing_known"),
            "radiomics_outlier_sigma": extra.get("radiomics_outlier_sigma"),
        },
    )
