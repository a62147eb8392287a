"""QC picture: axial mosaic of the cord with its contour, and a sagittal view (pillow, no matplotlib).

Each axial tile names its slice (the ``slice`` column of ``_csa.csv``) and level when known; the mosaic
and the sagittal view carry orientation letters and a 10 mm scale bar, and a legend explains the colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

from neurospine import drawing as D
from neurospine.io import Volume, atomic_path, reorient

TILE_PX = 96
WINDOW_MM = 36.0
MAX_TILES = 24
SAGITTAL_HALF_WIDTH_MM = 40.0
CORD_RGB = (255, 60, 60)
CANAL_RGB = (60, 180, 255)
GM_RGB = (255, 220, 40)


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
    gm: npt.NDArray[np.bool_] | None = None,
) -> list[tuple[int, npt.NDArray[np.uint8], tuple[float, float]]]:
    """(RAS slice index, tile, cord centre in voxels) for up to ``MAX_TILES`` slices with cord, superior first."""
    ks = np.flatnonzero(cord.any(axis=(0, 1)))
    if ks.size > MAX_TILES:
        ks = ks[np.linspace(0, ks.size - 1, MAX_TILES).round().astype(int)]
    tiles = []
    hx, hy = int(WINDOW_MM / 2 / sp[0]), int(WINDOW_MM / 2 / sp[1])
    for k in ks[::-1]:  # superior first
        com = ndimage.center_of_mass(cord[:, :, k])
        centre = (float(com[0]), float(com[1]))
        ci, cj = round(centre[0]), round(centre[1])
        sl = (slice(max(0, ci - hx), ci + hx), slice(max(0, cj - hy), cj + hy), k)
        g = _gray(img[sl])
        layers = [(canal[sl], CANAL_RGB), (cord[sl], CORD_RGB)] + ([] if gm is None else [(gm[sl], GM_RGB)])
        rgb = _overlay(g, layers)
        # display: anterior up, patient right on the left (radiological)
        rgb = np.flip(np.transpose(rgb, (1, 0, 2)), axis=0)
        tile = Image.fromarray(np.ascontiguousarray(rgb)).resize((TILE_PX, TILE_PX), Image.Resampling.NEAREST)
        tiles.append((int(k), np.asarray(tile), centre))
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


def _tile_captions(
    ras: Volume,
    tiles: Sequence[tuple[int, tuple[float, float]]],
    slice_labels: Sequence[tuple[float, int, str]] | None,
) -> list[str]:
    """'sl 34 C3' per (RAS slice, cord centre) tile: the input slice and level of the nearest measured slice,
    else the height in mm.

    The height is taken at the cord's centre in the tile's slice, where the measured slice's position was
    taken: on an oblique slab a slice's corner lies millimetres higher or lower than its centre."""
    out = []
    for k, (ci, cj) in tiles:
        z_mm = float((ras.affine @ np.array([ci, cj, float(k), 1.0]))[2])
        if slice_labels:
            pos, index, level = min(slice_labels, key=lambda row: abs(row[0] - z_mm))
            if abs(pos - z_mm) <= max(ras.spacing_mm[2], 1.0):
                out.append(f"sl {index} {level}".strip())
                continue
        out.append(f"z {z_mm:+.0f} mm")
    return out


def _ras_mask(image: Volume, mask: npt.NDArray[np.generic]) -> npt.NDArray[np.bool_]:
    return np.asarray(reorient(image.with_data(np.asarray(mask) > 0), "RAS")[0].data, dtype=bool)


def write_qc(
    image: Volume,
    cord_mask: npt.NDArray[np.generic],
    canal_mask: npt.NDArray[np.generic] | None,
    path: str | Path,
    *,
    title: str = "",
    slice_labels: Sequence[tuple[float, int, str]] | None = None,
    gm_mask: npt.NDArray[np.generic] | None = None,
    footnote: str = "",
) -> Path:
    """Write the QC PNG (axial mosaic left, sagittal view right, title on top, legend below).

    ``slice_labels``: (position_mm, slice, level) of the measured slices (``Morphometry.slices``), to
    caption each tile with its input slice index and level; without them tiles show their height in mm.
    ``gm_mask``: grey matter, outlined in the axial tiles. ``footnote``: a line under the legend (e.g. what a mark
    in the captions means).
    """
    ras, _ = reorient(image, "RAS")
    cord = _ras_mask(image, cord_mask)
    canal = np.zeros_like(cord) if canal_mask is None else _ras_mask(image, canal_mask)
    gm = None if gm_mask is None else _ras_mask(image, gm_mask)
    img = np.asarray(ras.data, dtype=np.float32)
    sp = ras.spacing_mm
    tiles = _axial_tiles(img, cord, canal, sp, gm)
    captions = _tile_captions(ras, [(k, centre) for k, _t, centre in tiles], slice_labels)
    cols = 6
    rows = max(1, -(-len(tiles) // cols))
    mosaic = np.zeros((rows * TILE_PX, cols * TILE_PX, 3), dtype=np.uint8)
    for n, (_k, t, _c) in enumerate(tiles):
        r, c = divmod(n, cols)
        mosaic[r * TILE_PX : (r + 1) * TILE_PX, c * TILE_PX : (c + 1) * TILE_PX] = t
    height = max(rows * TILE_PX, 4 * TILE_PX)
    sag = _sagittal(img, cord, canal, sp, height)
    margin = D.FONT_PX + 6
    top = 22 + margin
    width = mosaic.shape[1] + sag.shape[1] + 5 * margin
    lines = 3 if footnote else 2
    canvas, draw = D.new_canvas(width, top + height + margin + lines * (D.FONT_PX + 4) + 6)
    x_mos = margin
    canvas.paste(Image.fromarray(mosaic), (x_mos, top))
    x_sag = x_mos + mosaic.shape[1] + 3 * margin
    canvas.paste(Image.fromarray(sag), (x_sag, top))
    for n, caption in enumerate(captions):
        r, c = divmod(n, cols)
        x0, y0 = x_mos + c * TILE_PX, top + r * TILE_PX
        draw.rectangle((x0, y0, x0 + TILE_PX - 1, y0 + TILE_PX - 1), outline=(40, 40, 40))
        D.outlined_text(draw, (x0 + 2, y0 + 1), caption, size=10)
    if tiles:  # tiles: anterior up, patient right on the left (radiological); sagittal: superior up, anterior right
        D.orientation_letters(
            draw,
            (0, top - margin, x_mos + cols * TILE_PX + margin, top + rows * TILE_PX + margin),
            "A",
            "P",
            "R",
            "L",
        )
        bar_px = round(10 * TILE_PX / WINDOW_MM)
        D.scale_bar(draw, (x_mos + TILE_PX - 6 - bar_px, top + TILE_PX - 4), TILE_PX / WINDOW_MM)
    sag_mm_per_px = img.shape[2] * sp[2] / height
    D.orientation_letters(
        draw, (x_sag - margin, top - margin, x_sag + sag.shape[1] + margin, top + height + margin), "S", "I", "P", "A"
    )
    D.scale_bar(draw, (x_sag + 4, top + height - 4), 1.0 / sag_mm_per_px)
    text = title or ("no cord found" if not tiles else f"{len(tiles)} axial slices")
    D.outlined_text(draw, (4, 4), text)
    if not tiles:
        D.outlined_text(draw, (4, top + 10), "NO CORD FOUND", fill=(255, 80, 80))
    note = "each tile: 'sl N LEVEL' = slice N of the input (as in _csa.csv) and its level, if known"
    keys = [("cord outline", [CORD_RGB]), ("canal outline", [CANAL_RGB])]
    D.legend(draw, (4, top + height + margin), keys + ([] if gm is None else [("grey matter", [GM_RGB])]))
    D.outlined_text(draw, (4, top + height + margin + D.FONT_PX + 4), note, size=10)
    if footnote:
        D.outlined_text(draw, (4, top + height + margin + 2 * (D.FONT_PX + 4)), footnote, size=10)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return Path(path)
