"""Low-resolution recipe of the raw-T1w brain-age CNN (``--recipe lowres``), for very small training sets.

Reasoning: with ~84 training subjects the 2 mm network memorises; age information in a T1w (ventricle,
sulcal CSF and grey-matter volume) is coarse. This recipe therefore

- averages the 2 mm network input 2x2x2 inside the network (:func:`build_lowres_model`), so it *trains*
  on 4 mm volumes (8x fewer voxels, cheap strong augmentation) while the ONNX interface (2 mm crop,
  mask input) stays exactly that of the default recipe and inference code does not change;
- augments every sample with a random rigid+scale transform (rotations up to ``ROT_DEG`` about each
  axis, isotropic scale ``1 +- SCALE_FRAC``, sub-voxel shifts up to ``SHIFT_MM``), a left-right flip,
  gamma/contrast, a smooth multiplicative bias field and noise (:func:`augment_lowres`);
- uses strong decoupled weight decay and, instead of early stopping, a fixed schedule whose last
  ``SWA_FRACTION`` of epochs run at a constant learning rate while their weights are averaged
  (stochastic weight averaging); batch-norm statistics are re-estimated on the averaged weights.
  The VAL subjects are then only monitored and used for the conformal calibration (no model selection).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.t1_preprocess import CROP_SHAPE

F32 = npt.NDArray[np.float32]

#: network-internal 4 mm crop (half the 2 mm crop)
LOW_SHAPE: tuple[int, int, int] = (CROP_SHAPE[0] // 2, CROP_SHAPE[1] // 2, CROP_SHAPE[2] // 2)
ROT_DEG = 8.0
SCALE_FRAC = 0.06
SHIFT_MM = 8.0
BIAS_AMPLITUDE = 0.2
SWA_FRACTION = 0.25
SWA_LR_FRACTION = 0.15


def downsample2(x: npt.NDArray[np.floating]) -> F32:
    """2x2x2 mean pooling (dimensions must be even): the 2 mm padded cache -> 4 mm."""
    s = x.shape
    v = np.asarray(x, dtype=np.float32).reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2)
    out: F32 = v.mean(axis=(1, 3, 5))
    return out


def centre_low(x: F32) -> F32:
    """Un-augmented 4 mm network input from a padded 4 mm volume (equals pooling the 2 mm centre crop)."""
    o = [(x.shape[k] - LOW_SHAPE[k]) // 2 for k in range(3)]
    return np.ascontiguousarray(x[o[0] : o[0] + LOW_SHAPE[0], o[1] : o[1] + LOW_SHAPE[1], o[2] : o[2] + LOW_SHAPE[2]])


def _rotation(angles_rad: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out = np.eye(3)
    for axis, a in enumerate(angles_rad):
        c, s = np.cos(a), np.sin(a)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        out = out @ r
    return out


def bias_field(shape: tuple[int, int, int], rng: np.random.Generator) -> F32:
    """exp of a random quadratic polynomial of the normalised coordinates, +-``BIAS_AMPLITUDE``-ish."""
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    g = np.meshgrid(*axes, indexing="ij")
    terms = [g[0], g[1], g[2], g[0] * g[1], g[0] * g[2], g[1] * g[2], g[0] ** 2, g[1] ** 2, g[2] ** 2]
    coef = rng.normal(0.0, BIAS_AMPLITUDE / 3.0, size=len(terms))
    log_field = sum(float(c) * t for c, t in zip(coef, terms, strict=True))
    out: F32 = np.exp(np.asarray(log_field, dtype=np.float32))
    return out


def augment_lowres(x: F32, rng: np.random.Generator) -> F32:
    """Random rigid+scale transform, L/R flip, gamma/contrast, bias field and noise of a padded 4 mm volume."""
    rot = _rotation(np.deg2rad(rng.uniform(-ROT_DEG, ROT_DEG, size=3)))
    m = rot / rng.uniform(1.0 - SCALE_FRAC, 1.0 + SCALE_FRAC)
    shift_vox = rng.uniform(-SHIFT_MM / 4.0, SHIFT_MM / 4.0, size=3)
    c_in = (np.array(x.shape) - 1) / 2.0
    c_out = (np.array(LOW_SHAPE) - 1) / 2.0
    offset = c_in + shift_vox - m @ c_out
    v = ndimage.affine_transform(x, m, offset=offset, output_shape=LOW_SHAPE, order=1, mode="constant", cval=0.0)
    if rng.random() < 0.5:
        v = v[::-1]
    v = np.power(np.clip(v / 3.0, 0.0, 1.0), rng.uniform(0.75, 1.35)) * 3.0 * rng.uniform(0.9, 1.1)
    v = v * bias_field(LOW_SHAPE, rng)
    v = v + rng.normal(0.0, 0.03, size=v.shape).astype(np.float32) * (v > 0)
    return np.ascontiguousarray(np.clip(v, 0.0, 3.5), dtype=np.float32)


def build_lowres_model(width: int, hidden: int, dropout_p: float) -> Any:
    """3D ResNet on 4 mm input (stem at full 4 mm resolution, 3 stride-2 residual stages, GAP, MC head).

    ``forward(image, mask)`` takes the 2 mm crop (as the ONNX model does) and pools it; training calls
    ``forward_low`` with 4 mm volumes directly.
    """
    import torch
    from torch import nn

    from neurospine.brainage.t1_net import residual_block_class

    Block = residual_block_class()

    class LowResBrainAgeCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            w = width
            self.stem = nn.Sequential(nn.Conv3d(1, w, 3, padding=1, bias=False), nn.BatchNorm3d(w), nn.ReLU())
            self.stages = nn.Sequential(Block(w, 2 * w), Block(2 * w, 4 * w), Block(4 * w, hidden))
            self.fc1 = nn.Linear(hidden, hidden)
            self.fc2 = nn.Linear(hidden, len(qmod.TAU_GRID))

        def forward_low(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            f = self.stages(self.stem(image)).mean(dim=(2, 3, 4))
            keep = 1.0 - dropout_p
            h = f * mask[:, :hidden] / keep
            h = torch.relu(self.fc1(h)) * mask[:, hidden:] / keep
            raw = self.fc2(h)
            inc = torch.nn.functional.softplus(raw[:, 1:])
            return torch.cat([raw[:, :1], raw[:, :1] + torch.cumsum(inc, dim=1)], dim=1)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.forward_low(torch.nn.functional.avg_pool3d(image, 2), mask)

    return LowResBrainAgeCNN()


def lr_factor(epoch: int, planned: int) -> float:
    """Warm-up 3 epochs, cosine to ``SWA_LR_FRACTION`` until the SWA phase, then constant."""
    swa_start = swa_start_epoch(planned)
    warm = min(1.0, (epoch + 1) / 3)
    if epoch >= swa_start:
        return SWA_LR_FRACTION
    frac = epoch / max(swa_start, 1)
    return warm * (SWA_LR_FRACTION + (1.0 - SWA_LR_FRACTION) * 0.5 * (1.0 + np.cos(np.pi * frac)))


def swa_start_epoch(planned: int) -> int:
    return round(planned * (1.0 - SWA_FRACTION))
