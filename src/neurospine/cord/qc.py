"""QC picture: axial mosaic of the cord with its contour, and a sagittal view (pillow, no matplotlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from scipy import ndimage

from neurospine.io import Volume, atomic_path, reorient

TILE_PX = 96
WINDOW_MM = 36.0
MAX_TILES = 24
SAGITTAL_HALF_WIDTH_MM = 40.0
CORD_RGB = (255, 60, 60)
CANAL_RGB = (60, 180, 255)


def _gray(a: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    lo, hi = np.percentile(a, [1, 99.5]) if a.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (np.clip((a - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def _contour(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    return mask & ~ndimage.binary_erosion(mask)


def _resize(a: npt.NDArray[np.generic], shape: tuple[int, int], order: int) -> npt.NDArray[np.generic]:
    zoom = (shape[0] / a.shape[0], shape[1] / a.shape[1])
    return ndimage.zoom(a, zoom, order=order, mode="nearest", grid_mode=True)[: shape[0], : shape[1]]


def _overlay(
    gray: npt.NDArray[np.uint8], masks: list[tuple[npt.NDArray[np.bool_], tuple[int, int, int]]]
) -> npt.NDArray[np.uint8]:
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    for m, colour in masks:
        rgb[_contour(m)] = colour
    return rgb


def _axial_tiles(
    img: npt.NDArray[np.floating],
    cord: npt.NDArray[np.bool_],
    canal: npt.NDArray[np.bool_],
    sp: tuple[float, float, float],
) -> list[npt.NDArray[np.uint8]]:
    ks = np.flatnonzero(cord.any(axis=(0, 1)))
    if ks.size > MAX_TILES:
        ks = ks[np.linspace(0, ks.size - 1, MAX_TILES).round().astype(int)]
    tiles = []
    hx, hy = int(WINDOW_MM / 2 / sp[0]), int(WINDOW_MM / 2 / sp[1])
    for k in ks[::-1]:  # superior first
        com = ndimage.center_of_mass(cord[:, :, k])
        ci, cj = round(float(com[0])), round(float(com[1]))
        sl = (slice(max(0, ci - hx), ci + hx), slice(max(0, cj - hy), cj + hy), k)
        g = _gray(img[sl])
        rgb = _overlay(g, [(canal[sl], CANAL_RGB), (cord[sl], CORD_RGB)])
        # display: anterior up, patient right on the left (radiological)
        rgb = np.flip(np.transpose(rgb, (1, 0, 2)), axis=0)
        tile = Image.fromarray(np.ascontiguousarray(rgb)).resize((TILE_PX, TILE_PX), Image.Resampling.NEAREST)
        tiles.append(np.asarray(tile))
    return tiles


def _sagittal(
    img: npt.NDArray[np.floating],
    cord: npt.NDArray[np.bool_],
    canal: npt.NDArray[np.bool_],
    sp: tuple[float, float, float],
    height_px: int,
) -> npt.NDArray[np.uint8]:
    if cord.any():
        com = ndimage.center_of_mass(cord)
        x, y = round(float(com[0])), round(float(com[1]))
    else:
        x, y = img.shape[0] // 2, img.shape[1] // 2
    half = int(SAGITTAL_HALF_WIDTH_MM / sp[1])
    ys = slice(max(0, y - half), y + half)
    g = _gray(img[x, ys])
    rgb = _overlay(g, [(canal[x, ys], CANAL_RGB), (cord[x, ys], CORD_RGB)])  # (A, S, 3)
    rgb = np.flip(np.transpose(rgb, (1, 0, 2)), axis=0)  # rows: superior at top, cols: anterior right
    h_mm, w_mm = img.shape[2] * sp[2], g.shape[0] * sp[1]
    width = max(32, round(height_px * w_mm / h_mm))
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height_px), Image.Resampling.BILINEAR))


def write_qc(
    image: Volume,
    cord_mask: npt.NDArray[np.generic],
    canal_mask: npt.NDArray[np.generic] | None,
    path: str | Path,
    *,
    title: str = "",
) -> Path:
    """Write the QC PNG (axial mosaic left, sagittal view right, title on top)."""
    ras, _ = reorient(image, "RAS")
    cord = np.asarray(reorient(image.with_data(np.asarray(cord_mask) > 0), "RAS")[0].data, dtype=bool)
    canal = (
        np.zeros_like(cord)
        if canal_mask is None
        else np.asarray(reorient(image.with_data(np.asarray(canal_mask) > 0), "RAS")[0].data, dtype=bool)
    )
    img = np.asarray(ras.data, dtype=np.float32)
    sp = ras.spacing_mm
    tiles = _axial_tiles(img, cord, canal, sp)
    cols = 6
    rows = max(1, -(-len(tiles) // cols))
    mosaic = np.zeros((rows * TILE_PX, cols * TILE_PX, 3), dtype=np.uint8)
    for n, t in enumerate(tiles):
        r, c = divmod(n, cols)
        mosaic[r * TILE_PX : (r + 1) * TILE_PX, c * TILE_PX : (c + 1) * TILE_PX] = t
    height = max(rows * TILE_PX, 4 * TILE_PX)
    sag = _sagittal(img, cord, canal, sp, height)
    canvas = Image.new("RGB", (mosaic.shape[1] + sag.shape[1] + 8, height + 20), (0, 0, 0))
    canvas.paste(Image.fromarray(mosaic), (0, 20))
    canvas.paste(Image.fromarray(sag), (mosaic.shape[1] + 8, 20))
    draw = ImageDraw.Draw(canvas)
    text = title or ("no cord found" if not tiles else f"{len(tiles)} axial slices; red = cord, blue = canal")
    draw.text((4, 4), text, fill=(255, 255, 255))
    if not tiles:
        draw.text((4, 30), "NO CORD FOUND", fill=(255, 80, 80))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return Path(path)
