"""``neurospine slice2d``: 2D vertebral body and disc segmentation, radiomics and heights."""

from __future__ import annotations

import argparse
import math
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

    output_options.check(args, args.images)

    def one(image: Path, folder: Path) -> Any:
        result = run_file(
            image,
            folder,
            threads=args.threads,
            modality=args.modality,
            slice_index=args.slice_index,
            lowest_level=args.lowest_level,
            outlier_sigma=sigma or None,
            pixel_mm=args.pixel_mm,
            force=args.force,
        )
        return output_options.export(result, args)

    runs = common.run_per_image(
        args,
        args.images,
        args.out,
        label="slice2d",
        expected=lambda image, out: output_options.expected(args, list(output_paths(image, out).values())),
        run_one=one,
    )
    done = [r.result for r in runs if r.result is not None]
    qc_page = output_options.record_qc(done, args)
    if args.json:
        if done:
            common.write_json([_summary(res) for res in done])
        return common.exit_code(runs)
    for res in done:
        common.say(
            args,
            f"{res.measures['n_bodies']} bodies, {res.measures['n_discs']} discs "
            f"({res.measures['modality']}); outputs in {args.out}",
        )
        for w in res.warnings:
            common.say(args, f"note: {w}")
    if qc_page is not None:
        common.say(args, f"QC page: {qc_page}")
    return common.exit_code(runs)


def _summary(res: Any) -> dict[str, Any]:
    return {
        "input": res.input_path,
        "outputs": {k: str(v) for k, v in res.outputs.items()},
        "measures": res.measures,
        "slice": res.extra.get("slice_input"),
        "slice_how": res.extra.get("slice_how"),
        "modality_how": res.extra.get("modality_how"),
        "spacing_mm": res.extra.get("spacing_mm"),
        "spacing_known": res.extra.get("spacing_known"),
        "radiomics_outlier_sigma": res.extra.get("radiomics_outlier_sigma"),
        "timings_s": res.timings_s,
        "warnings": res.warnings,
    }
