"""Brain age from raw T1w images with the shipped ONNX CNN (MC dropout through a random-mask input)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.t1_preprocess import CROP_SHAPE, preprocess_t1
from neurospine.errors import InputError, ModelNotFoundError
from neurospine.models.card import ModelCard

if TYPE_CHECKING:
    from neurospine.io import Volume

log = logging.getLogger(__name__)

MODEL_NAME = "brainage_t1"
CALIB_SUFFIX = "_calib.npz"
DEFAULT_PASSES = 50


@dataclass(frozen=True)
class T1Prediction:
    path: str
    age_pred: float
    sd: float
    lo95: float
    hi95: float
    seconds: float


class T1BrainAge:
    """The shipped (or given) raw-T1w brain-age model: ONNX session + conformal table."""

    def __init__(self, card: ModelCard, *, threads: int = 2) -> None:
        from neurospine.inference.onnx import onnx_session
        from neurospine.models.registry import weights_path

        self.card = card
        self.session = onnx_session(card, threads=threads)
        calib = weights_path(card).parent / f"{card.name}{CALIB_SUFFIX}"
        if not calib.is_file():
            raise ModelNotFoundError(f"{calib}: calibration file of '{card.name}' missing; reinstall or retrain")
        z = np.load(calib)
        self.age_mean, self.age_sd = float(z["age_mean"]), float(z["age_sd"])
        self.conformal = qmod.ConformalTable(z["ages"], z["quantiles"], z["sd"])
        self.hidden2 = int(card.inputs.get("mask_width", 128))
        self.dropout_p = float(card.inputs.get("dropout_p", 0.2))
        #: networks merged in the ONNX graph: ``T`` masks give ``T * members`` passes
        self.members = int(card.inputs.get("ensemble_members", 1))

    @classmethod
    def shipped(cls, *, threads: int = 2) -> T1BrainAge:
        from neurospine.models.registry import load_card

        return cls(load_card(MODEL_NAME), threads=threads)

    def passes(self, image: np.ndarray, passes: int, rng: np.random.Generator) -> np.ndarray:
        """(T * members, K) quantiles in years for one preprocessed image (every member sees the T masks)."""
        mask = (rng.random((passes, self.hidden2)) >= self.dropout_p).astype(np.float32)
        (q,) = self.session.run(None, {"image": image[None, None].astype(np.float32), "mask": mask})
        out: np.ndarray = np.asarray(q, dtype=np.float64) * self.age_sd + self.age_mean
        return out

    def predictive_image(
        self, path: str | Path, *, passes: int = DEFAULT_PASSES, seed: int = 0, volume: Volume | None = None
    ) -> qmod.Predictive:
        """The pooled MC predictive distribution (uncalibrated) of one T1w image (``volume``: already loaded)."""
        from neurospine.io import load_volume

        x = preprocess_t1(load_volume(path) if volume is None else volume)
        q = self.passes(x, passes, np.random.default_rng(seed))
        return qmod.Predictive.from_passes(q[:, None, :])

    def predict_image(
        self, path: str | Path, *, passes: int = DEFAULT_PASSES, seed: int = 0, volume: Volume | None = None
    ) -> T1Prediction:
        t0 = time.perf_counter()
        pred = self.predictive_image(path, passes=passes, seed=seed, volume=volume)
        lo, hi = self.conformal.interval(pred, 0.95)
        return T1Prediction(
            str(path), float(pred.median[0]), float(pred.sd[0]), float(lo[0]), float(hi[0]), time.perf_counter() - t0
        )


def predict_t1(
    paths: Sequence[str | Path],
    *,
    ages: dict[str, float] | None = None,
    threads: int = 2,
    passes: int = DEFAULT_PASSES,
    check: Callable[[str | Path, Volume], Any] | None = None,
) -> list[dict[str, Any]]:
    """Brain age of each raw T1w image: rows with id, age_pred, sd, lo95, hi95 (+ age, gap, gap_z).

    ``check(path, volume)`` sees each image once it is loaded (it is read once) and may raise to refuse it;
    what it returns is kept in the row as ``check``."""
    from neurospine.io import load_volume, stem_of

    if not paths:
        raise InputError(None, "no image given", "pass one or more T1w NIfTI files")
    model = T1BrainAge.shipped(threads=threads)
    rows = []
    for p in paths:
        vol = load_volume(p)
        verdict = check(p, vol) if check is not None else None
        r = model.predict_image(p, passes=passes, volume=vol)
        sid = stem_of(p)
        row: dict[str, Any] = {"id": sid, "age_pred": r.age_pred, "sd": r.sd, "lo95": r.lo95, "hi95": r.hi95}
        age = None if ages is None else ages.get(sid, ages.get(Path(p).name))
        if age is not None:
            row.update(age=age, gap=r.age_pred - age, gap_z=(r.age_pred - age) / max(r.sd, 1e-6))
        row["seconds"] = r.seconds
        if check is not None:
            row["check"] = verdict
        rows.append(row)
    return rows


def export_card(
    folder: Path,
    onnx_path: Path,
    calib_path: Path,
    *,
    metrics: dict[str, Any],
    age_mean: float,
    age_sd: float,
    train_cpu_minutes: float,
    epochs: int,
    best_epoch: int,
    train_ids: list[str],
    width: int,
    created: str,
    recipe: str = "default",
    train_command: str = "neurospine train brainage-t1 --out runs/brainage-t1 --minutes 25",
    swa_epochs: int = 0,
    members: int = 1,
) -> Path:
    """Write ``brainage_t1.json`` for a freshly exported ONNX file (``members`` > 1: a merged deep ensemble)."""
    from neurospine.io import write_text_atomic
    from neurospine.models.registry import sha256_of

    if recipe == "lowres":
        net = (
            "Small 3D ResNet working at 4 mm (the 2 mm input crop is 2x2x2 average-pooled inside the network; "
            "stem at 4 mm, 3 stride-2 residual stages, global average pool)"
        )
        fit_note = (
            f"{epochs} epochs with strong augmentation (rotation, scale, shift, L/R flip, gamma, bias field, "
            f"noise) and AdamW weight decay; weights averaged over the last {swa_epochs} epochs (SWA), batch-norm "
            "statistics re-estimated; no early stopping or model selection (VAL only calibrates the intervals)."
        )
    else:
        net = "Small 3D ResNet"
        fit_note = f"{epochs} epochs, best (early-stopping) epoch {best_epoch} by validation pinball loss."
    version = "0.2.0" if recipe == "lowres" else "0.1.0"
    if members > 1:
        version = "0.3.0"
        net = (
            f"Deep ensemble of {members} networks merged into one ONNX graph (MC passes pooled over members), "
            f"each a {net[0].lower()}{net[1:]}"
        )
        fit_note = (
            f"{members} members trained with the same recipe and split but different seeds (train_command lists "
            "them), then merged by neurospine.brainage.t1_ensemble; intervals re-calibrated on VAL for the ensemble."
        )
    card = ModelCard(
        name=MODEL_NAME,
        version=version,
        task="brain age (years) from a raw T1w MRI, with calibrated intervals",
        file=onnx_path.name,
        sha256=sha256_of(onnx_path),
        framework="onnx",
        description=(
            f"{net} on raw, non-registered T1w (reoriented to RAS, 2 mm, intensity / median head "
            f"intensity, crop {CROP_SHAPE} from the vertex) with a Monte-Carlo-dropout composite-quantile head "
            f"({len(qmod.TAU_GRID)} monotone quantiles). Dropout masks are an ONNX input, so MC passes run at "
            "inference; intervals are calibrated on the VAL subjects: split-conformal at levels the VAL size allows "
            "(n >= coverage/(1-coverage)), else a normal-theory prediction interval of the standardised residuals."
        ),
        inputs={
            "image": [1, 1, *CROP_SHAPE],
            "mask": ["passes", 128],
            "mask_width": 128,
            "dropout_p": 0.2,
            "spacing_mm": [2.0, 2.0, 2.0],
            "orientation": "RAS",
            "tau_grid": qmod.TAU_GRID.tolist(),
            "age_mean": age_mean,
            "age_sd": age_sd,
            "calibration_file": calib_path.name,
            "calibration_sha256": sha256_of(calib_path),
            "first_stage_channels": width,
            "ensemble_members": members,
        },
        labels={"output": "quantiles of (age - age_mean) / age_sd at tau_grid, per MC pass"},
        training_data=[
            {
                "name": "IXI (ixi_t1_2mm, Hammersmith Hospital 3T, 2 mm)",
                "licence": "CC BY-SA 3.0",
                "subjects_train": str(len(train_ids)),
                "source": "brain-development.org IXI via CBICA/NiChart_Project",
            }
        ],
        metrics=metrics,
        train_command=train_command,
        train_cpu_minutes=round(train_cpu_minutes, 2),
        created=created,
        notes=(
            f"{fit_note} One site, {len(train_ids)} training subjects: expect large errors on other scanners; "
            "the paper's 2.8 y needs ~10k scans. Model weights derived from CC BY-SA 3.0 data."
        ),
    )
    return write_text_atomic(folder / f"{MODEL_NAME}.json", card.to_json())
