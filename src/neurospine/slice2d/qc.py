"""Overlay PNG: the segmented plane with bodies and discs coloured and named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.io import atomic_path
from neurospine.slice2d.instances import Instances2D
from neurospine.slice2d.io2d import resize2d

MIN_SIDE_PX = 512
MAX_SIDE_PX = 1400


def _palette(i: int) -> tuple[int, int, int]:
    base = [(230, 80, 70), (240, 170, 60), (90, 170, 240), (200, 110, 220), (240, 220, 80), (120, 210, 200)]
    return base[i % len(base)]


def overlay_rgb(
    image01: npt.NDArray[np.float32], inst: Instances2D, spacing_mm: tuple[float, float]
) -> npt.NDArray[np.uint8]:
    """RGB array: grey image, translucent bodies (varied colours), green discs, white outlines.

    Pixels are made square using ``spacing_mm`` so the anatomy is not stretched.
    """
    h, w = image01.shape
    aspect = spacing_mm[0] / spacing_mm[1]
    out_h, out_w = int(np.rint(h * aspect)), w
    scale = 1.0
    if max(out_h, out_w) < MIN_SIDE_PX:
        scale = MIN_SIDE_PX / max(out_h, out_w)
    elif max(out_h, out_w) > MAX_SIDE_PX:
        scale = MAX_SIDE_PX / max(out_h, out_w)
    shape = (max(1, int(np.rint(out_h * scale))), max(1, int(np.rint(out_w * scale))))
    grey = np.asarray(resize2d(np.clip(image01, 0, 1).astype(np.float32), shape, order=1), dtype=np.float32)
    labels = np.asarray(resize2d(inst.label_map, shape, order=0), dtype=np.int32)
    rgb = np.repeat((grey * 255.0)[..., None], 3, axis=2)
    for i, b in enumerate(inst.bodies):
        m = labels == b.value
        rgb[m] = 0.55 * rgb[m] + 0.45 * np.array(_palette(i))
    for d in inst.discs:
        m = labels == d.value
        rgb[m] = 0.5 * rgb[m] + 0.5 * np.array((60, 220, 110))
    edge = (labels > 0) & ~ndimage.binary_erosion(labels > 0) | (
        ndimage.grey_dilation(labels, size=3) != ndimage.grey_erosion(labels, size=3)
    ) & (labels > 0)
    rgb[edge] = 255
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_overlay(
    path: str | Path,
    image01: npt.NDArray[np.float32],
    inst: Instances2D,
    spacing_mm: tuple[float, float],
    title: str = "",
) -> Path:
    from PIL import Image, ImageDraw

    rgb = overlay_rgb(image01, inst, spacing_mm)
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    sy = rgb.shape[0] / image01.shape[0]
    sx = rgb.shape[1] / image01.shape[1]
    for item in [*inst.bodies, *inst.discs]:
        r, c = item.centroid_rc
        draw.text((c * sx + 4, r * sy - 5), item.name, fill=(255, 255, 255))
    if title:
        draw.text((4, 4), title, fill=(255, 255, 0))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return Path(path)
