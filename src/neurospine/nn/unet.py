"""A compact U-Net for 2D or 3D inputs, sized for CPU training and ONNX export."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _conv(dims: int) -> Any:
    return nn.Conv2d if dims == 2 else nn.Conv3d


def _norm(dims: int, channels: int) -> nn.Module:
    # Instance norm is batch-size independent and exports cleanly to ONNX.
    return nn.InstanceNorm2d(channels, affine=True) if dims == 2 else nn.InstanceNorm3d(channels, affine=True)


class ConvBlock(nn.Module):
    """Two (conv, norm, leaky ReLU) layers, optional dropout in between."""

    def __init__(self, in_ch: int, out_ch: int, dims: int, dropout: float = 0.0) -> None:
        super().__init__()
        conv = _conv(dims)
        layers: list[nn.Module] = [
            conv(in_ch, out_ch, 3, padding=1),
            _norm(dims, out_ch),
            nn.LeakyReLU(0.01, inplace=True),
        ]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout) if dims == 2 else nn.Dropout3d(dropout))
        layers += [conv(out_ch, out_ch, 3, padding=1), _norm(dims, out_ch), nn.LeakyReLU(0.01, inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UNet(nn.Module):
    """U-Net with ``depth`` resolution levels; channels double per level from ``base``.

    Spatial input sizes must be divisible by ``2 ** (depth - 1)``. Returns raw logits with
    ``out_channels`` channels at the input resolution.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base: int = 16,
        depth: int = 4,
        dims: int = 2,
        dropout: float = 0.0,
        max_channels: int = 256,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError("dims must be 2 or 3")
        self.dims = dims
        self.depth = depth
        chans = [min(base * 2**i, max_channels) for i in range(depth)]
        conv = _conv(dims)
        self.down = nn.ModuleList()
        prev = in_channels
        for i, c in enumerate(chans):
            self.down.append(ConvBlock(prev, c, dims, dropout if i == depth - 1 else 0.0))
            prev = c
        self.pool = nn.MaxPool2d(2) if dims == 2 else nn.MaxPool3d(2)
        up_cls = nn.ConvTranspose2d if dims == 2 else nn.ConvTranspose3d
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(depth - 1, 0, -1):
            self.up.append(up_cls(chans[i], chans[i - 1], 2, stride=2))
            self.dec.append(ConvBlock(chans[i - 1] * 2, chans[i - 1], dims))
        self.head = conv(chans[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x)
            if i < self.depth - 1:
                skips.append(x)
                x = self.pool(x)
        for up, dec in zip(self.up, self.dec, strict=True):
            x = up(x)
            x = dec(torch.cat([x, skips.pop()], dim=1))
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
