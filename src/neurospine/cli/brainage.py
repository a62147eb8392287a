"""``neurospine brainage``: brain age with calibrated uncertainty (features MCCQR and raw-T1 CNN)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from neurospine.cli import common
from neurospine.cli.helpfmt import docs_line

MODEL_HELP = (
    "MODEL.npz or a name from `neurospine models` (default: brainage_features, or _regional when columns are missing)"
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "brainage",
        help="brain age with calibrated intervals (FreeSurfer features or raw T1w)",
        description="Brain age (years) with Monte-Carlo-dropout composite quantile regression and "
        "split-conformal intervals. Sub-commands: fit, predict, recalibrate (feature tables) and t1 (raw T1w "
        "images). Example: neurospine brainage predict features.csv --out pred.csv. " + docs_line("tools/brainage.md"),
    )
    bs = p.add_subparsers(dest="brainage_command", metavar="SUBCOMMAND")

    f = bs.add_parser(
        "fit",
        help="fit a feature model on a labelled CSV table",
        description="Fit an MCCQR brain-age model on a CSV table (one row per subject, an age column and "
        "numeric feature columns; identifiers sub_id/id/sex/site are ignored). Writes MODEL.npz (weights, "
        "feature names, scaler, conformal table) and MODEL.json (card). 15 % of rows calibrate the "
        "intervals, 15 % drive early stopping. Example: neurospine brainage fit train.csv --age-column age "
        "--out my_model",
    )
    f.add_argument("features_csv", type=Path, metavar="FEATURES.csv", help="one row per subject: age + features")
    f.add_argument("--age-column", default="age", help="name of the age column (years; default: age)")
    common.add_out(f, "output path (MODEL.npz + MODEL.json)", type=Path, metavar="MODEL")
    f.add_argument("--seed", type=int, default=0, help="seed of the row split and initialisation")
    f.add_argument(
        "--max-epochs",
        type=common.positive_int,
        default=None,
        help="cap on training epochs (default 600, early stopping usually ends sooner)",
    )
    f.set_defaults(handler=_fit)

    pr = bs.add_parser(
        "predict",
        help="predict brain age for a CSV table of features",
        description="Predict brain age for every row of FEATURES.csv (columns matched by name; a column absent "
        "or empty in every row is missing). Writes id, age_pred, sd, lo/hi 50/80/95 % bounds, and with ages gap, "
        "gap_z and p_accelerated. Default model: the shipped brainage_features (non-commercial data), or "
        "brainage_features_regional when the table lacks some of its columns; missing columns neither model can "
        "do without are listed in the error (exit 2). Example: neurospine brainage predict feats.csv "
        "--out pred.csv. " + docs_line("tools/brainage.md"),
    )
    _add_table_and_model(
        pr, "one row per subject, features by name", "age column, if any, for gap and gap_z (default: age)"
    )
    pr.add_argument(
        "--passes", type=common.positive_int, default=100, metavar="N", help="Monte-Carlo dropout passes (default 100)"
    )
    common.add_out(pr, "predictions CSV to write (- for standard output)", metavar="PRED.csv")
    pr.set_defaults(handler=_predict)

    rc = bs.add_parser(
        "recalibrate",
        help="adapt a model to a new site with local labelled controls",
        description="Adapt a model to a new site from 20 or more local labelled controls: optionally remove "
        "the site's per-feature offsets, map age = a + b * prediction, and rebuild the intervals from the "
        "controls. --mode auto picks the mode with the lowest leave-one-out MAE. The model is chosen as for "
        "predict. Writes MODEL2.npz + MODEL2.json. Example: neurospine brainage recalibrate controls.csv --out "
        "site_model. " + docs_line("tools/brainage.md"),
    )
    _add_table_and_model(rc, "local controls: age + features", "name of the age column (default: age)")
    rc.add_argument(
        "--mode",
        choices=("auto", "none", "offset", "linear", "features+offset", "features+linear"),
        default="auto",
        metavar="MODE",
        help="auto (default), none, offset, linear, features+offset or features+linear",
    )
    common.add_out(rc, "output path (MODEL2.npz + MODEL2.json)", type=Path, metavar="MODEL2")
    rc.set_defaults(handler=_recalibrate)

    t = bs.add_parser(
        "t1",
        help="brain age from raw T1w images (3D CNN, ONNX)",
        description="Brain age from raw, non-registered T1w images (NIfTI/NRRD/DICOM folder) with the shipped "
        "3D CNN (trained on IXI, one site; expect larger errors on other scanners). Output CSV columns: id, "
        "age_pred, sd, lo95, hi95 (+ age, gap, gap_z with --ages). Example: neurospine brainage t1 "
        "sub-01_T1w.nii.gz --out pred.csv --ages ages.csv",
    )
    t.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="raw T1w images (NIfTI, NRRD or DICOM folder)")
    common.add_out(t, "predictions CSV, one row per image (- for standard output)", metavar="PRED.csv")
    t.add_argument(
        "--ages",
        type=Path,
        default=None,
        help="CSV with id and age columns; an id matches the image name, stem or stem start (sub-01: "
        "sub-01_T1w); warns for each image without an age",
    )
    t.add_argument(
        "--id-column",
        default=None,
        metavar="NAME",
        help="column of --ages with the ids (default: the first of id, sub_id, participant_id, ixi_id, subject_id)",
    )
    t.add_argument(
        "--threads", type=common.positive_int, default=2, metavar="N", help="CPU threads for the model (default 2)"
    )
    t.add_argument(
        "--passes", type=common.positive_int, default=50, metavar="N", help="Monte-Carlo dropout passes (default 50)"
    )
    t.add_argument("--force", action="store_true", help="run images that do not look like a whole head (flagged)")
    t.set_defaults(handler=_t1)
    p.set_defaults(handler=lambda a: _help(p))


def _add_table_and_model(p: argparse.ArgumentParser, table_help: str, age_help: str) -> None:
    """FEATURES.csv, --model and --age-column: predict and recalibrate read a table and pick the model alike."""
    p.add_argument("features_csv", type=Path, metavar="FEATURES.csv", help=table_help)
    p.add_argument("--model", default=None, metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--age-column", default="age", help=age_help)


def _help(p: argparse.ArgumentParser) -> int:
    import sys

    p.print_help(sys.stderr)
    return 2


def _fit(args: argparse.Namespace) -> int:
    from neurospine.brainage.api import fit
    from neurospine.brainage.model import npz_path

    common.check_output_file(npz_path(args.out))
    fit(args.features_csv, age_column=args.age_column, out=args.out, seed=args.seed, max_epochs=args.max_epochs)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from neurospine.brainage.api import predict

    common.check_output_file(args.out)
    with common.progress_of(args, "brainage predict", Path(args.features_csv).name):
        predict(args.features_csv, model=args.model, out=args.out, age_column=args.age_column, passes=args.passes)
    return 0


def _recalibrate(args: argparse.Namespace) -> int:
    from neurospine.brainage.api import recalibrate
    from neurospine.brainage.model import npz_path

    common.check_output_file(npz_path(args.out))
    recalibrate(args.features_csv, model=args.model, out=args.out, age_column=args.age_column, mode=args.mode)
    return 0


def _t1(args: argparse.Namespace) -> int:
    from neurospine.brainage.api import predict_t1_files

    common.check_output_file(args.out)
    with common.progress_of(args, "brainage t1", f"{len(args.images)} image(s)"):
        rows = predict_t1_files(
            args.images,
            out=args.out,
            ages_csv=args.ages,
            threads=args.threads,
            passes=args.passes,
            id_column=args.id_column,
            force=args.force,
        )
    for row in rows:
        if row.get("plausibility", "ok") != "ok":
            common.say(args, f"note: {row['id']}: plausibility {row['plausibility']}")
    return 0
