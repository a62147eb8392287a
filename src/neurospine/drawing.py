"""Drawing helpers for the QC pictures people read without the manual (pillow only).

Orientation letters, a scale bar of known length in mm, colour legends, outlined text that stays readable
on any background, and :func:`spread_labels`, which moves labels apart vertically so that none overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
YELLOW = (255, 220, 80)
GREY = (170, 170, 170)
FONT_PX = 12


@lru_cache(maxsize=8)
def font(size: int = FONT_PX) -> Any:
    """Pillow's built-in scalable font (no font files needed); the bitmap font on old pillow."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pillow < 10.1: no size argument
        return ImageFont.load_default()


def text_size(draw: ImageDraw.ImageDraw, text: str, size: int = FONT_PX) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font(size))
    return int(right - left), int(bottom - top)


def outlined_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    *,
    fill: tuple[int, int, int] = WHITE,
    size: int = FONT_PX,
) -> None:
    """Text with a one-pixel black outline: readable on bright overlays and dark background alike."""
    draw.text(xy, text, fill=fill, font=font(size), stroke_width=1, stroke_fill=BLACK)


def orientation_letters(
    draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top: str, bottom: str, left: str, right: str
) -> None:
    """Anatomical direction letters at the middle of each edge of ``box`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for letter, (x, y) in (
        (top, (cx, y0 + 2)),
        (bottom, (cx, y1 - FONT_PX - 3)),
        (left, (x0 + 3, cy - FONT_PX / 2)),
        (right, (x1 - 3, cy - FONT_PX / 2)),
    ):
        w, _h = text_size(draw, letter)
        if letter == right:
            x -= w
        elif letter in (top, bottom):
            x -= w / 2
        outlined_text(draw, (x, y), letter, fill=YELLOW)


def scale_bar(draw: ImageDraw.ImageDraw, origin: tuple[int, int], px_per_mm: float, length_mm: float = 10.0) -> None:
    """A bar ``length_mm`` long with its length written above it; ``origin`` is its bottom-left end."""
    x, y = origin
    n = max(1, round(length_mm * px_per_mm))
    draw.rectangle((x - 1, y - 4, x + n, y + 1), fill=BLACK)
    draw.rectangle((x, y - 3, x + n - 1, y), fill=WHITE)
    outlined_text(draw, (x, y - 4 - FONT_PX - 2), f"{length_mm:g} mm")


def legend(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    items: Sequence[tuple[str, Sequence[tuple[int, int, int]]]],
    max_x: int | None = None,
) -> int:
    """Swatches and names left to right from ``origin``, wrapping before ``max_x``; returns the bottom y.

    Each item may show several colours (or none: a note).
    """
    x0, y = origin
    x = x0
    line_h = FONT_PX + 4
    for name, colours in items:
        w = 11 * len(colours) + 3 + text_size(draw, name)[0]
        if max_x is not None and x > x0 and x + w > max_x:
            x, y = x0, y + line_h
        for c in colours:
            draw.rectangle((x, y + 2, x + 9, y + 11), fill=tuple(c), outline=WHITE)
            x += 11
        x += 3 if colours else 0
        outlined_text(draw, (x, y), name)
        x += text_size(draw, name)[0] + 12
    return y + line_h


def wrap_to_width(draw: ImageDraw.ImageDraw, text: str, width_px: int, size: int = FONT_PX) -> list[str]:
    """Greedy word wrap of ``text`` into lines no wider than ``width_px`` (as drawn)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if current and text_size(draw, trial, size)[0] > width_px:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def spread_labels(wanted_y: Sequence[float], height: float, lo: float, hi: float) -> list[float]:
    """Top y of each label, as close as possible to ``wanted_y`` with no two closer than ``height``.

    Labels keep their order; they stay within ``[lo, hi - height]`` when there is room for all of them.
    """
    order = sorted(range(len(wanted_y)), key=lambda i: wanted_y[i])
    ys = [float(wanted_y[i]) for i in order]
    for n in range(len(ys)):  # push down
        ys[n] = max(ys[n], lo if n == 0 else ys[n - 1] + height)
    if ys and ys[-1] > hi - height:  # then push up from the bottom
        ys[-1] = hi - height
        for n in range(len(ys) - 2, -1, -1):
            ys[n] = min(ys[n], ys[n + 1] - height)
    out = [0.0] * len(ys)
    for n, i in enumerate(order):
        out[i] = ys[n]
    return out


def new_canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    canvas = Image.new("RGB", (max(1, width), max(1, height)), BLACK)
    return canvas, ImageDraw.Draw(canvas)
