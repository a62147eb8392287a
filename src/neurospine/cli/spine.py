"""``neurospine spine IMAGE --out DIR``: whole-spine segmentation, instances and level names."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from neurospine.cli import common, output_options
from neurospine.cli.helpfmt import docs_line

HELP = (
    "Sagittal spine MRI -> 14 structures, named vertebrae: <stem>_seg-spine_msk.nii.gz, _seg-vert_msk.nii.gz, "
    "_ctd.json, _snp.png, _spine.csv. Example: neurospine spine T2w.nii.gz -o out/. " + docs_line("tools/spine.md")
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "spine",
        usage="%(prog)s IMAGE [IMAGE ...] -o DIR [options]",  # the options are listed below
        help="whole-spine segmentation: structures, vertebra instances, level names",
        description=HELP,
    )
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="sagittal or isotropic spine MRI (NIfTI, NRRD/MHA or DICOM folder)"
    )
    common.add_out(p, "output folder (created if missing)", metavar="DIR")
    common.add_overwrite(p)
    p.add_argument(
        "--threads", type=common.positive_int, default=2, metavar="N", help="CPU threads for the model (default 2)"
    )
    p.add_argument(
        "--model",
        default="spine_semantic",
        metavar="NAME",
        help="model card (default spine_semantic; spine_semantic_lumbar: lumbar)",
    )
    p.add_argument(
        "--extra-vertebra",
        choices=("l6", "t13"),
        default=None,
        help="name of a 24th presacral vertebra (default l6, flagged)",
    )
    p.add_argument("--no-snapshot", action="store_true", help="skip the PNG snapshot")
    p.add_argument(
        "--no-cord",
        action="store_true",
        help="label the spinal cord with the spine network instead of the cord model (cord_softseg)",
    )
    p.add_argument("--force", action="store_true", help="run an image that does not look like a spine MRI (flagged)")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    output_options.add_arguments(p, "masks")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.spine.api import output_paths, run_file

    runs = common.run_task_per_image(
        args,
        label="spine",
        run_file=run_file,
        output_paths=output_paths,
        options={
            "snapshot": not args.no_snapshot,
            "model": args.model,
            "extra_vertebra": args.extra_vertebra,
            "cord": not args.no_cord,
        },
    )
    return common.report_runs(
        args, runs, payload=_payload, lines=_lines, qc_line=lambda page: f"  {'qc page':<10} {page}"
    )


def _lines(result: Any) -> Iterator[str]:
    m = result.measures
    yield (
        f"spine: {m['n_vertebrae']} vertebrae [{m['levels']}], naming {m['naming_anchor']} "
        f"(confidence {m['naming_confidence']}), {result.timings_s['total']:.1f} s"
    )
    for w in result.warnings:
        yield f"  note: {w}"
    for key, path in result.outputs.items():
        yield f"  {key:<10} {path}"


def _payload(result: Any) -> dict[str, Any]:
    timings_s = {k: round(v, 3) for k, v in result.timings_s.items()}
    return common.result_payload(result, {"models": result.models}, timings_s=timings_s)
