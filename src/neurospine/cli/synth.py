"""``neurospine synth``: write synthetic spine scans with SPINEPS labels, for inspection or training."""

from __future__ import annotations

import argparse
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line

_EPILOG = """\
outputs (in --out): synth-<seed>_img.nii.gz (image; MR scaled to about [0, 1], CT in HU),
  _seg-spine.nii.gz (SPINEPS semantic labels), _seg-vert.nii.gz (vertebra/disc/endplate instances),
  _cord-soft / _canal-soft.nii.gz (partial-volume fractions), _tissue.nii.gz, _meta.json,
  and contact_sheet.png (mid-sagittal slices with the labels overlaid).
Example: neurospine synth --n 5 --contrast t2w -o synth_t2
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "synth",
        help="generate synthetic spine scans with SPINEPS labels (NIfTI + contact sheet)",
        description="Generate synthetic spine images and label maps from seeds (deterministic, no input data). "
        + docs_line("training.md"),
        epilog=_EPILOG,
    )
    p.add_argument("--n", type=common.positive_int, default=5, help="number of cases (default 5)")
    common.add_out(p, "output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="first seed; case i uses seed+i (default 0)")
    p.add_argument("--contrast", default="t2w", help="t2w, t1w, stir, t2sw, ct, random or any (default t2w)")
    p.add_argument("--levels", default="random", help="e.g. L1-S1, C2-T3, whole, lumbar, random (default random)")
    p.add_argument(
        "--plane", default="isotropic", help="isotropic, sagittal, axial, coronal or random (default isotropic)"
    )
    p.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        metavar="MM",
        default=(1.0, 1.0, 1.0),
        help="voxel size: R-L A-P S-I for isotropic; in-plane in-plane thickness otherwise",
    )
    p.add_argument(
        "--fov",
        type=float,
        nargs=2,
        metavar="MM",
        default=(64.0, 160.0),
        help="R-L and A-P field of view in mm (S-I follows the levels; default 64 160)",
    )
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from neurospine.errors import InputError
    from neurospine.synth import SynthConfig
    from neurospine.synth.export import write_cases

    if args.n < 1:
        raise InputError(None, f"--n must be at least 1, got {args.n}", "pass --n 5 for five cases")
    try:
        cfg = SynthConfig(
            levels=args.levels,
            contrast=args.contrast,
            plane=args.plane,
            spacing_mm=tuple(args.spacing),
            fov_mm=(args.fov[0], args.fov[1], None),
        )
    except ValueError as e:  # every option is checked here, before anything is generated or written
        raise InputError(None, str(e), "see `neurospine synth --help` for valid values") from e
    from neurospine.io.outdir import prepare_out_dir

    prepare_out_dir(args.out)
    written, sheet = write_cases(args.out, args.n, cfg, first_seed=args.seed)
    common.say(args, f"wrote {len(written)} cases to {args.out}; contact sheet {sheet}")
    return 0
