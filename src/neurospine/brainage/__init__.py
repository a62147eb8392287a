"""Brain age with calibrated uncertainty.

* Features (FreeSurfer tables): MC-dropout composite quantile regression in numpy
  (:mod:`neurospine.brainage.model`), file-level API in :mod:`neurospine.brainage.api`
  (``fit``, ``predict``, ``recalibrate``); which shipped model reads a table (``brainage_features``, or
  ``brainage_features_regional`` when the table lacks whole-brain measures) in :mod:`neurospine.brainage.choice`.
* Raw T1w: a small 3D CNN with the same quantile head, shipped as ONNX
  (:mod:`neurospine.brainage.t1_model`, ``predict_t1``); trained by :mod:`neurospine.brainage.training_t1`
  (torch, never imported at run time).
"""

from neurospine.brainage.api import fit, load_model, predict, predict_t1_files, recalibrate
from neurospine.brainage.model import BrainAgeModel, FitConfig, fit_arrays
from neurospine.brainage.recalibration import recalibrate_arrays

__all__ = [
    "BrainAgeModel",
    "FitConfig",
    "fit",
    "fit_arrays",
    "load_model",
    "predict",
    "predict_t1_files",
    "recalibrate",
    "recalibrate_arrays",
]
