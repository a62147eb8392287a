"""``neurospine spine IMAGE --out DIR``: whole-spine segmentation, instances and level names."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line

HELP = (
    "Segment the spine in a sagittal or isotropic MRI: 14 structures, vertebrae named by level, discs and "
    "endplates. Writes <stem>_seg-spine_msk.nii.gz, _seg-vert_msk.nii.gz, _seg-spine_ctd.json, _snp.png and "
    "_spine.csv into --out, on the input's grid. " + docs_line("tools/spine.md")
)
EXAMPLE = "Example: neurospine spine sub-01_T2w.nii.gz -o derivatives/spine"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "spine",
        help="whole-spine segmentation: structures, vertebra instances, level names",
        description=HELP,
        epilog=EXAMPLE,
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
    p.add_argument("--force", action="store_true", help="run an image that does not look like a spine MRI (flagged)")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.spine.api import output_paths, run_file

    def one(image: Path, folder: Path) -> Any:
        return run_file(
            image,
            folder,
            threads=args.threads,
            snapshot=not args.no_snapshot,
            model=args.model,
            extra_vertebra=args.extra_vertebra,
            force=args.force,
        )

    runs = common.run_per_image(
        args,
        args.images,
        args.out,
        label="spine",
        expected=lambda image, out: list(output_paths(image, out).values()),
        run_one=one,
    )
    done = [r.result for r in runs if r.result is not None]
    if args.json:
        if done:
            common.write_json([_payload(res) for res in done])
        return common.exit_code(runs)
    for result in done:
        m = result.measures
        common.say(
            args,
            f"spine: {m['n_vertebrae']} vertebrae [{m['levels']}], naming {m['naming_anchor']} "
            f"(confidence {m['naming_confidence']}), {result.timings_s['total']:.1f} s",
        )
        for w in result.warnings:
            common.say(args, f"  note: {w}")
        for key, path in result.outputs.items():
            common.say(args, f"  {key:<10} {path}")
    return common.exit_code(runs)


def _payload(result: Any) -> dict[str, Any]:
    return {
        "input": result.input_path,
        "outputs": {k: str(v) for k, v in result.outputs.items()},
        "measures": result.measures,
        "models": result.models,
        "timings_s": {k: round(v, 3) for k, v in result.timings_s.items()},
        "warnings": result.warnings,
    }
