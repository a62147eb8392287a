"""Public file-level API behind ``neurospine brainage`` (each CLI sub-command calls one function here)."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from neurospine.brainage.features import FeatureTable, read_table
from neurospine.brainage.model import BrainAgeModel, FitConfig, fit_table, npz_path
from neurospine.brainage.recalibration import recalibrate_table
from neurospine.errors import InputError

log = logging.getLogger(__name__)

SHIPPED_FEATURES_MODEL = "brainage_features"
PRED_COLUMNS = (
    "id",
    "age_pred",
    "sd",
    "lo95",
    "hi95",
    "gap",
    "gap_z",
    "age",
    "p_accelerated",
    "lo50",
    "hi50",
    "lo80",
    "hi80",
)
T1_COLUMNS = ("id", "age_pred", "sd", "lo95", "hi95", "age", "gap", "gap_z", "seconds", "plausibility")


def load_model(path: str | Path | None = None) -> BrainAgeModel:
    """A feature model from ``path`` (.npz) or a shipped model name (``neurospine models``), or the shipped
    ``brainage_features`` (sha256-verified)."""
    from neurospine.brainage.choice import resolve

    return resolve(path)[0]


def _model_for(table: FeatureTable, model: str | Path | BrainAgeModel | None) -> tuple[BrainAgeModel, str]:
    if isinstance(model, BrainAgeModel):
        return model, "given model"
    from neurospine.brainage.choice import for_table

    chosen = for_table(table, model)
    return chosen.model, chosen.name


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}"
    if hasattr(v, "item"):
        return _fmt(v.item())
    return str(v)


def write_rows(path: str | Path, rows: list[dict[str, Any]], columns: Sequence[str]) -> Path:
    from neurospine.io import write_text_atomic

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_fmt(r.get(c, float("nan"))) for c in columns])
    return write_text_atomic(path, buf.getvalue())


def _write_card(model: BrainAgeModel, npz: Path, *, source: str, kind: str, base: str | None = None) -> Path:
    from neurospine.io import write_text_atomic
    from neurospine.models.card import ModelCard
    from neurospine.models.registry import sha256_of

    card = ModelCard(
        name=npz.stem,
        version="local",
        task="brain age (years) from tabular features, MCCQR",
        file=npz.name,
        sha256=sha256_of(npz),
        framework="numpy-npz",
        description=f"{kind} by `neurospine brainage` on {source}" + (f" (base model: {base})" if base else ""),
        inputs={"features": model.features, "n_features": len(model.features)},
        training_data=[{"name": source, "licence": "as of the user's data"}],
        metrics={
            "note": "no held-out metrics computed by `fit`; evaluate on data not used here",
            "internal_validation_pinball_years": model.meta.get("best_val_pinball_years"),
        },
        train_command=f"neurospine brainage {kind}",
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        notes=f"split/calibration: {model.meta.get('calibration_split')}; "
        f"recalibration: {model.meta.get('recalibration')}",
    )
    return write_text_atomic(npz.with_suffix(".json"), card.to_json())


def fit(
    features_csv: str | Path, *, age_column: str = "age", out: str | Path, seed: int = 0, max_epochs: int | None = None
) -> BrainAgeModel:
    """Fit a model on a labelled table and write ``out.npz`` + ``out.json``."""
    table = read_table(features_csv)
    cfg = FitConfig(seed=seed) if max_epochs is None else FitConfig(seed=seed, max_epochs=max(1, max_epochs))
    model = fit_table(table, age_column=age_column, cfg=cfg)
    npz = model.save(out)
    _write_card(model, npz, source=str(features_csv), kind="fit")
    log.info("wrote %s (%d features, config %s)", npz, len(model.features), asdict(cfg))
    return model


def predict(
    features_csv: str | Path,
    *,
    model: str | Path | BrainAgeModel | None = None,
    out: str | Path | None = None,
    age_column: str = "age",
    passes: int = 100,
) -> list[dict[str, Any]]:
    """Predict every row of a table; write ``out`` (CSV, :data:`PRED_COLUMNS`) when given. ``model``: a model,
    a MODEL.npz path or a shipped name; None = ``brainage_features``, or ``brainage_features_regional`` when
    the table lacks some of its columns (:mod:`neurospine.brainage.choice`)."""
    table = read_table(features_csv)
    m, _ = _model_for(table, model)
    rows = m.predict_table(table, age_column=age_column, passes=passes)
    if out is not None:
        write_rows(out, rows, PRED_COLUMNS)
    return rows


def recalibrate(
    features_csv: str | Path,
    *,
    model: str | Path | BrainAgeModel | None = None,
    out: str | Path,
    age_column: str = "age",
    mode: str = "auto",
) -> BrainAgeModel:
    """Site adaptation from local labelled controls; writes ``out.npz`` + ``out.json``. ``model`` as for
    :func:`predict` (the same automatic choice without one)."""
    table = read_table(features_csv)
    m, name = _model_for(table, model)
    new = recalibrate_table(m, table, age_column=age_column, mode=mode)
    new.meta["recalibration"]["base_model"] = name
    npz = new.save(npz_path(out))
    _write_card(new, npz, source=str(features_csv), kind="recalibrate", base=name)
    return new


def read_ages_csv(path: str | Path, id_column: str | None = None) -> dict[str, float]:
    """Ages CSV -> {id: age}; the id column as in :mod:`neurospine.brainage.ages`."""
    from neurospine.brainage.ages import read_ages

    return dict(read_ages(path, id_column).ages)


def predict_t1_files(
    images: Sequence[str | Path],
    *,
    out: str | Path | None = None,
    ages_csv: str | Path | None = None,
    threads: int = 2,
    passes: int = 50,
    id_column: str | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Brain age of raw T1w images with the shipped CNN; write ``out`` (CSV, :data:`T1_COLUMNS`). Ages from
    ``ages_csv`` are matched to images as :mod:`neurospine.brainage.ages` describes (``id_column``: the CSV
    column of the ids; default: id, sub_id, participant_id, ixi_id or subject_id).

    Every image is checked first (:mod:`neurospine.plausibility.brainage`): one that is not a whole-head MRI
    is refused (``InputError``, nothing written) unless ``force``; rows carry ``plausibility``."""
    from neurospine.brainage.t1_model import predict_t1

    for im in images:
        if not Path(im).exists():
            raise InputError(im, "file not found", "check the path of the T1w image")
    from neurospine.plausibility import brainage as plaus
    from neurospine.plausibility import enforce

    ages = None
    if ages_csv is not None:
        from neurospine.brainage.ages import ages_for_images

        ages = ages_for_images(ages_csv, images, id_column)

    def check(image: str | Path, vol: Any) -> Any:  # on the volume predict_t1 loaded: each file is read once
        return enforce(plaus.check(vol), image, force=force)

    rows = predict_t1(list(images), ages=ages, threads=threads, passes=passes, check=check)
    for row in rows:
        verdict = row.pop("check")
        row["plausibility"] = verdict.field
        if verdict.note:
            log.warning("%s: %s", row["id"], verdict.note)
    if out is not None:
        write_rows(out, rows, T1_COLUMNS)
    return rows


def t1_plausibility(images: Sequence[str | Path], *, force: bool = False) -> list[Any]:
    """The plausibility verdict of each T1w image, raising for the first refused one unless ``force``."""
    from neurospine.io import load_volume
    from neurospine.plausibility import brainage as plaus
    from neurospine.plausibility import enforce

    return [enforce(plaus.check(load_volume(im)), im, force=force) for im in images]
