"""``neurospine spine IMAGE --out DIR``: whole-spine segmentation, instances and level names."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurospine.cli import common

HELP = """\
Segment the spine in a sagittal (or 3D isotropic) MRI: 14 SPINEPS structures, vertebra instances named
by level, discs (100+X) and endplates (200+X), with X the vertebra above.

Input: a NIfTI/NRRD/MHA file or a DICOM series folder. Thick axial or coronal stacks are refused.
Outputs in DIR (<stem> = input file name without extension), all on the input's exact grid:
  <stem>_seg-spine_msk.nii.gz   semantic mask (26, 41-49, 60, 61, 62, 100)
  <stem>_seg-vert_msk.nii.gz    instances: vertebrae by level (C2=2 ... L5=24, L6=25, T13=28, S1=26),
                                discs 100+X, endplates 200+X
  <stem>_seg-spine_ctd.json     vertebral-body centroids (VerSe/TPTBox JSON, PIR voxel coordinates) + model
                                versions, naming confidence and flags
  <stem>_seg-spine_snp.png      QC snapshot: mid-sagittal slice with overlay and level names
  <stem>_spine.csv              level, volume_mm3, centroid (RAS mm; of the vertebral body for vertebrae, as in
                                the JSON; centroid_of says which), naming (anchored or positional), naming_flag
                                (1 = level name uncertain) and naming_note

24 vertebrae between C2 and S1: the extra one is named L6 and flagged, because ribs are not segmented and an
L6 cannot be told from a rib-bearing T13; --extra-vertebra t13 names it T13 (C1..T12, T13=28, L1..L5) when you
know it carries ribs.

Several images can be given at once (each gets its own <stem>_* files). An --out that already holds
outputs of an input's name is refused unless --overwrite; each input's files appear together when its
run succeeds.

Example: neurospine spine sub-01_T2w.nii.gz -o derivatives/spine
         neurospine spine scans/*.nii.gz -o derivatives/spine
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "spine",
        help="whole-spine segmentation: structures, vertebra instances, level names",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "images", nargs="+", metavar="IMAGE", help="sagittal or isotropic spine MRI (NIfTI, NRRD/MHA or DICOM folder)"
    )
    common.add_out(p, "output folder (created if missing)")
    common.add_overwrite(p)
    p.add_argument("--threads", type=common.positive_int, default=2, help="CPU threads for the model (default 2)")
    p.add_argument(
        "--model",
        default="spine_semantic",
        help="phase-1 model card (default spine_semantic, all regions). spine_semantic_lumbar adds the body refiner: "
        "better vertebral bodies on lumbar/thoracolumbar MRI, but it misses cervical bodies",
    )
    p.add_argument(
        "--extra-vertebra",
        choices=("l6", "t13"),
        default=None,
        help="name of the extra vertebra when 24 lie between C2 and S1 (default: L6, flagged as undecidable "
        "without rib information); t13 when it carries ribs",
    )
    p.add_argument("--no-snapshot", action="store_true", help="skip the PNG snapshot")
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
