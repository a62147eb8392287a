"""``neurospine cord``: contrast-agnostic spinal-cord segmentation and CSA morphometry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurospine.cli import common

EPILOG = """outputs (in --out, <stem> = input file name without .nii.gz):
  <stem>_seg-cord_soft.nii.gz   cord partial-volume fraction, float32 in [0, 1]
  <stem>_seg-cord_msk.nii.gz    binary cord mask (soft >= 0.5)
  <stem>_seg-canal_msk.nii.gz   binary spinal canal mask (includes the cord)
  <stem>_csa.csv                per slice: slice, position_mm, csa_mm2 (angle-corrected), angle_deg,
                                ap_mm, rl_mm, eccentricity, orientation_deg, level, levels_source,
                                levels_positional, below_conus_level (1 = level L3 or lower, where the
                                'cord' is likely cauda equina; 0 = above; empty = level unknown)
  <stem>_csa_perlevel.csv       level, n_slices, csa_mm2_mean, csa_mm2_sd, levels_source,
                                levels_positional (plus an 'all' row); slices with below_conus_level=1
                                are left out (no row for L3 and below, not in 'all'), with a warning
  <stem>_qc-cord.png            axial mosaic with the cord contour and a sagittal view
All images are written on the input grid. Exit code 4 when no cord is found (the QC image is still written).

levels: from --levels (levels_source=mask; a seg-vert mask, i.e. one with disc 100+X or endplate 200+X ids
or with most of its voxels off the cord, is projected along the cord from the vertebral bodies; a
cord-by-level mask, most of its voxels on the cord, is used as it is; levels_positional is always 0 then,
as whether the mask's names were anchored cannot be known from the mask); else, for sagittal or
near-isotropic images, estimated with the whole-spine model (levels_source=estimated; each cord slice
takes the level of the vertebral body it lies opposite to, between the mid-discs above and below, measured
along the cord; levels_positional=1 when the spine naming had no C2 or sacrum anchor); thick axial images
get none (levels_source=none, with a warning). --no-auto-levels skips the estimate.

several images: each gets its own <stem>_* files; give --levels once per image, in the same order (or not
at all). An --out that already holds outputs of an input's name is refused unless --overwrite.

example:
  neurospine cord sub-01_T2w.nii.gz -o results/ --levels sub-01_seg-vert_msk.nii.gz
  neurospine cord sub-01_T2w.nii.gz sub-02_T2w.nii.gz -o results/
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "cord",
        help="segment the spinal cord (any contrast, axial or sagittal) and measure CSA per slice/level",
        description="Segment the spinal cord and canal in a 3D MRI of any contrast (T1w, T2w, T2*w, MT, ...), "
        "acquired axially or sagittally, with one contrast-agnostic model giving soft (partial-volume) masks, "
        "and compute the cross-sectional area (CSA) per slice, corrected for the cord's angle, and per "
        "vertebral level.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="input image (NIfTI, NRRD/MHA or DICOM folder)"
    )
    common.add_out(p, "output folder (created if needed)", type=Path)
    common.add_overwrite(p)
    p.add_argument(
        "--levels",
        type=Path,
        action="append",
        default=None,
        metavar="VERT_MASK",
        help="vertebral level mask: a seg-vert mask (vertebra ids 1..33, discs 100+X, endplates 200+X, e.g. the "
        "_seg-vert_msk output of `neurospine spine`; projected along the cord from the vertebral bodies) or a "
        "cord-by-level mask (cord voxels labelled 2=C2, 3=C3, ...; used as is). A mask with disc or endplate ids, "
        "or with most of its labelled voxels off the cord, is read as seg-vert. levels_positional in the CSVs is "
        "0 with --levels: whether the mask's level names rest on an anchor (C2 or the sacrum) or only on "
        "position cannot be known from a mask, so check them yourself",
    )
    p.add_argument(
        "--no-auto-levels",
        action="store_true",
        help="without --levels, do not estimate vertebral levels with the whole-spine model (by default they are "
        "estimated when the image is sagittal or near-isotropic; thick axial images get no levels)",
    )
    p.add_argument(
        "--slab-mm",
        type=_non_negative_mm,
        default=None,
        metavar="MM",
        help="axial slices thinner than this are averaged over a slab this thick, centred on each slice, before "
        "segmentation (less noise on thin-slice 3D scans; default from the model card: 3.0; 0 turns it off, "
        "as in cord_softseg 1.0.0)",
    )
    p.add_argument("--threads", type=common.positive_int, default=2, help="CPU threads for inference (default 2)")
    p.add_argument("--model", default="cord_softseg", help="model card name (default cord_softseg)")
    p.add_argument("--json", action="store_true", help="print the result (outputs, measures, timings) as JSON")
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
    from neurospine.cord.api import output_paths, run_file
    from neurospine.errors import InputError
    from neurospine.io import stem_of

    levels: list[Path] = list(args.levels or [])
    if levels and len(levels) != len(args.images):
        raise InputError(
            levels[0],
            f"{len(levels)} --levels mask(s) for {len(args.images)} images",
            "give --levels once per image, in the same order as the images, or leave it out",
        )
    level_of = dict(zip(args.images, levels, strict=False))

    def one(image: Path, folder: Path) -> Any:
        return run_file(
            image,
            folder,
            threads=args.threads,
            levels=level_of.get(image),
            auto_levels=not args.no_auto_levels,
            model=args.model,
            slab_mm=args.slab_mm,
        )

    runs = common.run_per_image(
        args,
        args.images,
        args.out,
        label="cord",
        expected=lambda image, out: list(output_paths(stem_of(image), out).values()),
        run_one=one,
    )
    done = [r.result for r in runs if r.result is not None]
    if args.json:
        if done:
            common.write_json([_payload(res) for res in done])
        return common.exit_code(runs)
    for res in done:
        m = res.measures
        mean = m.get("csa_mm2_mean")
        csa = "n/a (every slice is at L3 or lower)" if mean is None else f"{mean} mm2"
        common.say(args, f"cord: {m.get('n_slices')} slices, mean CSA {csa} -> {args.out}")
        for w in res.warnings:
            common.say(args, f"warning: {w}")
    return common.exit_code(runs)


def _payload(res: Any) -> dict[str, Any]:
    return {
        "task": res.task,
        "input": res.input_path,
        "outputs": {k: str(v) for k, v in res.outputs.items()},
        "measures": res.measures,
        "models": res.models,
        "timings_s": res.timings_s,
        "warnings": res.warnings,
    }
