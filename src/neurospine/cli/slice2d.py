"""``neurospine slice2d``: 2D vertebral body and disc segmentation, radiomics and heights."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from neurospine.cli import common

DESCRIPTION = """\
Segment vertebral bodies and intervertebral discs on one 2D image (MR, CT or X-ray) and measure them.

Input IMAGE: a 3D MR/CT volume (NIfTI, NRRD/MHA or a DICOM series folder), or a 2D image: a radiograph
as DICOM, PNG/JPEG, or a 2D NIfTI. For a 3D volume the sagittal slice showing the most vertebral bodies
is chosen automatically (slices within 15 mm of the left-right centre; mid-sagittal if none shows a
body); --slice N forces slice N along the image's stored left-right voxel axis (0-based).
Modality: --modality, else the DICOM Modality tag, else CT if intensities look like HU, else MR for 3D
volumes. A 2D image without metadata is told by its size and intensities: radiograph-sized (longest side
>= 1000 px, or pixels <= 0.25 mm) -> X-ray; smaller with a mostly dark histogram or a bright fluid (CSF)
column -> MR. Where these disagree, or a small image shows no MR sign (a downsized radiograph, a CT slice
without HU and an MR slice without bright fluid look alike), the guess is reported as uncertain in the
log and the JSON warnings: give --modality mr|ct|xray, which overrides every rule.
Pixel size: PNG/JPEG images carry none, and a 2D NIfTI/DICOM whose stored pixel size is implausible
(field of view over 1 m, e.g. a 1 or 2 mm placeholder on a 2800-pixel radiograph, or exactly 1 mm on
>= 768 pixels) is treated the same: the longest side is assumed to span 320 mm and heights are not in
true mm. --pixel-mm MM sets the in-plane pixel size of any 2D input. PNG/JPEG images carry no
orientation: they are taken as displayed (top = superior, left = anterior).

Outputs in --out:
  <stem>_slice2d_msk.nii.gz  body and disc instances. 3D input: a volume on the input's exact grid with
                             only the chosen slice filled. 2D input: the input's grid (PNG/DICOM: rows x
                             cols x 1). Ids: vertebra ids and 100+id for the disc below (none below S1; neurospine
                             labels) when --lowest-level names the most inferior body; otherwise
                             positional ids 1..N from the top (flagged in the JSON summary).
  <stem>_slice2d.png         overlay for visual QC
  <stem>_radiomics.csv       IBSI first-order features per body/disc (docs/radiomics.md), after IBSI
                             re-segmentation: pixels beyond mean +- 3 sd of the region are left out
                             (--outlier-sigma; 0 = keep every pixel)
  <stem>_heights.csv         anterior/middle/posterior heights (mm), wedge ratio, disc heights; with
                             anchored levels one more row, name lumbar_lordosis_L1_S1 (or _L1_L5 when S1
                             is not found), kind angle: column lordosis_deg = Cobb angle between the L1
                             superior endplate and the S1 superior (else L5 inferior) endplate, degrees,
                             positive = lordotic (definition also in column lordosis_definition). A
                             body cut by the image edge, split or of implausible size is not used as an
                             endplate: the angle falls back to L1-L5, or the row is named lumbar_lordosis
                             with an empty lordosis_deg; column lordosis_note says why

Several images can be given at once; every option applies to each of them. An --out that already holds
outputs of an input's name is refused unless --overwrite.

Example: neurospine slice2d sub-01_T2w.nii.gz -o results/ --lowest-level S1
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "slice2d",
        help="2D body/disc segmentation, radiomics and heights (MR, CT, X-ray)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="3D volume, DICOM folder/file, PNG/JPEG or 2D NIfTI"
    )
    common.add_out(p, "output folder (created if missing)", type=Path)
    common.add_overwrite(p)
    p.add_argument(
        "--modality",
        choices=("mr", "ct", "xray"),
        default=None,
        help="override modality detection (2D images without metadata may be guessed wrongly; see above)",
    )
    p.add_argument(
        "--pixel-mm",
        type=common.positive_float,
        default=None,
        metavar="MM",
        help="2D input: in-plane pixel size in mm (square pixels), replacing the stored, missing or placeholder one",
    )
    p.add_argument(
        "--slice",
        dest="slice_index",
        type=common.non_negative_int,
        default=None,
        help="3D input: sagittal slice index along the stored left-right voxel axis",
    )
    p.add_argument(
        "--lowest-level", default=None, help="level of the most inferior body in view (e.g. S1, L5): names all levels"
    )
    p.add_argument(
        "--outlier-sigma",
        type=float,  # checked in the handler (an InputError: exit 2, one line)
        default=None,
        metavar="S",
        help="radiomics: leave out region pixels beyond mean +- S sd (IBSI re-segmentation; default 3, 0 = off)",
    )
    p.add_argument("--threads", type=common.positive_int, default=2, help="CPU threads for inference (default 2)")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
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

    def one(image: Path, folder: Path) -> Any:
        return run_file(
            image,
            folder,
            threads=args.threads,
            modality=args.modality,
            slice_index=args.slice_index,
            lowest_level=args.lowest_level,
            outlier_sigma=sigma or None,
            pixel_mm=args.pixel_mm,
        )

    runs = common.run_per_image(
        args,
        args.images,
        args.out,
        label="slice2d",
        expected=lambda image, out: list(output_paths(image, out).values()),
        run_one=one,
    )
    done = [r.result for r in runs if r.result is not None]
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
