"""Contact sheets: mid-sagittal slices of synthetic cases with the semantic labels overlaid (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from neurospine.io import Volume, atomic_path
from neurospine.labels import SEMANTIC_LABELS

_LUT = np.zeros((256, 3), dtype=np.float32)
for _info in SEMANTIC_LABELS:
    if _info.value < 256:
        _LUT[_info.value] = np.array(_info.rgb, dtype=np.float32) / 255.0


def _mid_sagittal(vol: Volume) -> tuple[npt.NDArray[np.generic], tuple[float, float]]:
    """Middle L-R slice of a RAS volume as rows S->I, cols P->A, and its (row, col) spacing."""
    k = vol.shape[0] // 2
    sl = np.asarray(vol.data[k]).T[::-1]
    return sl, (vol.spacing_mm[2], vol.spacing_mm[1])


def case_tile(image: Volume, semantic: Volume, title: str = "", px_per_mm: float = 1.5) -> Image.Image:
    """Grey image and overlay side by side, resampled to square pixels of ``1/px_per_mm`` mm."""
    img, spacing = _mid_sagittal(image)
    lab, _ = _mid_sagittal(semantic)
    img_f = img.astype(np.float32)
    lo, hi = np.percentile(img_f, [0.5, 99.5])
    grey = np.clip((img_f - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    lab_i = np.clip(lab.astype(np.int64), 0, 255)
    colour = _LUT[lab_i]
    mask = (lab_i > 0)[..., None]
    over = np.where(mask, 0.55 * rgb + 0.45 * colour, rgb)
    both = np.concatenate([rgb, np.ones((rgb.shape[0], 2, 3), np.float32), over], axis=1)
    pil = Image.fromarray((both * 255).astype(np.uint8))
    w = max(1, round(both.shape[1] * spacing[1] * px_per_mm))
    h = max(1, round(both.shape[0] * spacing[0] * px_per_mm))
    pil = pil.resize((w, h), Image.Resampling.NEAREST)
    if title:
        canvas = Image.new("RGB", (w, h + 14), (0, 0, 0))
        canvas.paste(pil, (0, 14))
        ImageDraw.Draw(canvas).text((2, 1), title, fill=(255, 255, 255))
        return canvas
    return pil


def contact_sheet(tiles: Sequence[Image.Image], path: str | Path, columns: int = 5) -> Path:
    """Paste tiles on a grid and write the PNG atomically."""
    if not tiles:
        raise ValueError("no tiles to put on a contact sheet")
    cols = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // cols)
    cw = max(t.width for t in tiles) + 6
    ch = max(t.height for t in tiles) + 6
    sheet = Image.new("RGB", (cols * cw, rows * ch), (20, 20, 20))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * cw + 3, (i // cols) * ch + 3))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return Path(path)
