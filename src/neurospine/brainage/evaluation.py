"""Accuracy and calibration summary of brain-age predictions on labelled data."""

from __future__ import annotations

from typing import Any

import numpy as np

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.model import BrainAgeModel


def summarise(y: np.ndarray, pred: qmod.Predictive, model: BrainAgeModel) -> dict[str, Any]:
    """MAE, r, age-bias slope, pinball loss, and coverage/width of the conformal 50/80/95 % intervals."""
    err = pred.median - y
    out: dict[str, Any] = {
        "n": len(y),
        "mae_years": float(np.abs(err).mean()),
        "r": float(np.corrcoef(pred.median, y)[0, 1]),
        "age_bias_slope": float(np.polyfit(y, err, 1)[0]),
        "mean_sd_years": float(pred.sd.mean()),
        "pinball_years": float(
            qmod.pinball_loss(
                y[:, None],
                qmod.interp_quantiles(pred.quantiles, qmod.TAU_GRID, qmod.STORE_LEVELS),
                qmod.TAU_GRID[None, :],
            ).mean()
        ),
    }
    for cov in qmod.REPORT_LEVELS:
        lo, hi = model.conformal.interval(pred, cov)
        out[f"coverage_{int(cov * 100)}"] = float(np.mean((y >= lo) & (y <= hi)))
        out[f"width_{int(cov * 100)}_years"] = float(np.mean(hi - lo))
    return out
