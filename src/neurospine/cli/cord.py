"""``neurospine cord``: contrast-agnostic spinal-cord segmentation and CSA morphometry."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from neurospine.cli import common, output_options
from neurospine.cli.helpfmt import docs_line


def register(sub: Any) -> None:
    p = sub.add_parser(
        "cord",
        usage="%(prog)s IMAGE [IMAGE ...] -o DIR [options]",  # the options are listed below
        help="spinal cord segmentation (any contrast) and CSA per slice and level",
        description="Cord and canal masks and cross-sectional area per slice and level (3D MRI, any contrast): "
        "<stem>_csa.csv, _csa_perlevel.csv, QC picture; exit 4: no cord. " + docs_line("tools/cord.md"),
    )
    p.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="input images (NIfTI, NRRD/MHA or DICOM folder)"
    )
    common.add_out(p, "output folder (created if needed)", type=Path, metavar="DIR")
    common.add_overwrite(p)
    p.add_argument(
        "--levels",
        type=Path,
        action="append",
        default=None,
        metavar="MASK",
        help="level mask, once per image: seg-vert (neurospine spine) or cord-by-level",
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
    p.add_argument(
        "--threads", type=common.positive_int, default=2, metavar="N", help="CPU threads for inference (default 2)"
    )
    p.add_argument("--model", default="cord_softseg", metavar="NAME", help="model card name (default cord_softseg)")
    p.add_argument(
        "--gm",
        action="store_true",
        help="also segment the grey matter (axial T2*w with in-plane pixels <= 0.9 mm): <stem>_seg-gm_msk.nii.gz "
        "and gm_area_mm2 in the CSVs",
    )
    p.add_argument("--force", action="store_true", help="run an image that does not look like a cord MRI (flagged)")
    p.add_argument("--json", action="store_true", help="print the result summary as JSON")
    output_options.add_arguments(p, "masks")
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

    runs = common.run_task_per_image(
        args,
        label="cord",
        run_file=run_file,
        output_paths=lambda image, out: output_paths(stem_of(image), out),
        options={
            "auto_levels": not args.no_auto_levels,
            "model": args.model,
            "slab_mm": args.slab_mm,
            "gm": args.gm,
        },
        per_image=lambda image: {"levels": level_of.get(image)},
    )
    return common.report_runs(
        args, runs, payload=_payload, lines=lambda res: _lines(res, args.out), qc_line=lambda page: f"QC page: {page}"
    )


def _lines(res: Any, out: Path) -> Iterator[str]:
    m = res.measures
    mean = m.get("csa_mm2_mean")
    csa = "n/a (every slice is flagged: see the warnings)" if mean is None else f"{mean} mm2"
    yield f"cord: {m.get('n_slices')} slices, mean CSA {csa} -> {out}"
    if m.get("gm_area_mm2_mean") is not None:
        yield f"grey matter: mean area {m['gm_area_mm2_mean']} mm2"
    for w in res.warnings:
        yield f"warning: {w}"


def _payload(res: Any) -> dict[str, Any]:
    return {"task": res.task, **common.result_payload(res, {"models": res.models})}
