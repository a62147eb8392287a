"""Network pieces shared by both raw-T1w training recipes (default and ``lowres``); torch only inside functions.

Both :mod:`training_t1` (the 2 mm recipe and the run driver) and :mod:`t1_lowres` /
:mod:`training_t1_lowres` (the 4 mm recipe) build on these, so neither imports the other's module at the
top: the import graph is ``training_t1 -> training_t1_lowres -> t1_lowres -> t1_net``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurospine.brainage import quantiles as qmod
from neurospine.brainage.t1_preprocess import CROP_SHAPE

HIDDEN = 64
DROPOUT_P = 0.2
SHIFT_VOX = 4
CACHE_SHAPE = (CROP_SHAPE[0] + 2 * SHIFT_VOX, CROP_SHAPE[1] + 2 * SHIFT_VOX, CROP_SHAPE[2] + 2 * SHIFT_VOX)


def centre(x: np.ndarray) -> np.ndarray:
    s = SHIFT_VOX
    return np.ascontiguousarray(
        x[s : s + CROP_SHAPE[0], s : s + CROP_SHAPE[1], s : s + CROP_SHAPE[2]], dtype=np.float32
    )


def residual_block_class() -> Any:
    """The stride-2 residual block (conv-BN-ReLU, conv-BN, 1x1 projection skip) shared by both T1 recipes."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.c1 = nn.Conv3d(cin, cout, 3, stride=2, padding=1, bias=False)
            self.b1 = nn.BatchNorm3d(cout)
            self.c2 = nn.Conv3d(cout, cout, 3, padding=1, bias=False)
            self.b2 = nn.BatchNorm3d(cout)
            self.skip = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm3d(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(h)) + self.skip(x))

    return Block


def pinball_torch(q: Any, y: Any) -> Any:
    import torch

    tau = torch.as_tensor(qmod.TAU_GRID, dtype=q.dtype)[None, :]
    d = y[:, None] - q
    return torch.maximum(tau * d, (tau - 1.0) * d).mean()


def random_mask(n: int, rng: np.random.Generator) -> np.ndarray:
    return (rng.random((n, 2 * HIDDEN)) >= DROPOUT_P).astype(np.float32)


def precise_bn(model: Any, images: np.ndarray, batch: int = 8) -> None:
    """Re-estimate batch-norm statistics on un-augmented training images with the current weights.

    With batches of 8 and a fast-moving network, the running averages lag behind the weights and the
    eval-mode network drifts; exact population statistics make validation and export faithful.
    """
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm3d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    keep = torch.full((1, 2 * HIDDEN), 1.0 - DROPOUT_P)
    with torch.no_grad():
        for b in range(0, len(images), batch):
            x = torch.from_numpy(np.stack([centre(im) for im in images[b : b + batch]])[:, None])
            model(x, keep.expand(len(x), -1))
    for m in bns:
        m.momentum = 0.1
    model.eval()
