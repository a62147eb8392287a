"""Vertebral body heights, wedge ratio, disc heights and the lumbar lordosis angle (2D, mm).

Each structure is measured in a local frame: ``u`` along the spine (towards inferior) and ``v``
perpendicular to it (towards posterior). ``u`` is the direction between the centroids of the
neighbouring bodies (above and below; one neighbour if only one exists); a body without neighbours
uses its principal axis closest to the image vertical.

Heights are extents along ``u`` of the mask, measured on 0.25 mm-wide strips across ``v`` and averaged
over a band: anterior = 5-15 % of the AP width from the anterior edge, middle = 45-55 %, posterior =
85-95 % (the bands avoid rounded corners and osteophytes). Wedge ratio = anterior / posterior.
Disc heights: mean = area / AP width; centre = middle-band height. Lordosis (when levels are named):
angle between the superior endplate of L1 and the superior endplate of S1 (or the inferior endplate
of L5 when S1 is absent); endplates are lines fitted to the top/bottom boundary of the body's middle
80 %, found in the body's own principal frame (so a tilted body's endplate is not mixed with its walls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

STRIP_MM = 0.25
BANDS = {"anterior": (0.05, 0.15), "middle": (0.45, 0.55), "posterior": (0.85, 0.95)}


@dataclass(frozen=True)
class Frame:
    u: npt.NDArray[np.float64]  # unit vector along the spine (row, col) in mm space, pointing inferior
    v: npt.NDArray[np.float64]  # unit vector perpendicular, pointing posterior (+col)


def frame_from_direction(direction_rc_mm: npt.ArrayLike) -> Frame:
    u = np.asarray(direction_rc_mm, dtype=np.float64)
    u = u / (np.linalg.norm(u) + 1e-12)
    if u[0] < 0:
        u = -u
    v = np.array([-u[1], u[0]])
    if v[1] < 0:
        v = -v
    return Frame(u, v)


def principal_frame(mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float]) -> Frame:
    """Principal axis of the mask closest to the image vertical (rows)."""
    pts = np.argwhere(mask) * np.asarray(spacing_mm)
    if len(pts) < 3:
        return frame_from_direction((1.0, 0.0))
    cov = np.cov((pts - pts.mean(0)).T)
    _, vecs = np.linalg.eigh(cov)
    cand = [vecs[:, 0], vecs[:, 1]]
    best = max(cand, key=lambda e: abs(e[0]))
    return frame_from_direction(best)


def _coords(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    pts = np.argwhere(mask) * np.asarray(spacing_mm)
    u = pts @ frame.u
    v = pts @ frame.v
    # footprint of one pixel along u (added to centre-to-centre extents)
    foot = abs(frame.u[0]) * spacing_mm[0] + abs(frame.u[1]) * spacing_mm[1]
    return u, v, foot


def band_heights(mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame) -> dict[str, float]:
    """Anterior/middle/posterior heights and AP width (mm) of one structure in ``frame``."""
    if mask.sum() < 3:
        return {"anterior_mm": math.nan, "middle_mm": math.nan, "posterior_mm": math.nan, "width_mm": math.nan}
    u, v, foot = _coords(mask, spacing_mm, frame)
    # supersample so thin strips always hold points
    sub = 4
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    dr, dc = np.meshgrid(offs * spacing_mm[0], offs * spacing_mm[1], indexing="ij")
    du = (dr * frame.u[0] + dc * frame.u[1]).ravel()
    dv = (dr * frame.v[0] + dc * frame.v[1]).ravel()
    uu = (u[:, None] + du[None, :]).ravel()
    vv = (v[:, None] + dv[None, :]).ravel()
    foot_sub = foot / sub
    foot_v = abs(frame.v[0]) * spacing_mm[0] + abs(frame.v[1]) * spacing_mm[1]
    vmin, vmax = float(vv.min()), float(vv.max())
    width = vmax - vmin + foot_v / sub
    strip = np.floor((vv - vmin) / STRIP_MM).astype(np.int64)
    n_strips = int(strip.max()) + 1
    umin = np.full(n_strips, np.inf)
    umax = np.full(n_strips, -np.inf)
    np.minimum.at(umin, strip, uu)
    np.maximum.at(umax, strip, uu)
    has = np.isfinite(umin)
    heights = np.where(has, umax - umin + foot_sub, np.nan)
    centres = vmin + (np.arange(n_strips) + 0.5) * STRIP_MM
    frac = (centres - vmin) / max(vmax - vmin, 1e-9)
    out = {"width_mm": float(width)}
    for name, (a, b) in BANDS.items():
        sel = has & (frac >= a) & (frac <= b)
        out[f"{name}_mm"] = float(np.nanmean(heights[sel])) if sel.any() else math.nan
    return out


def neighbour_frames(centroids_rc: list[tuple[float, float]], spacing_mm: tuple[float, float]) -> list[Frame | None]:
    """Spine-direction frame for each body from its neighbours (``None`` if it has none)."""
    pts = [np.asarray(c) * np.asarray(spacing_mm) for c in centroids_rc]
    out: list[Frame | None] = []
    for i in range(len(pts)):
        if len(pts) < 2:
            out.append(None)
            continue
        a = pts[max(0, i - 1)]
        b = pts[min(len(pts) - 1, i + 1)]
        out.append(frame_from_direction(b - a))
    return out


def body_measures(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame | None
) -> dict[str, float]:
    fr = frame or principal_frame(mask, spacing_mm)
    h = band_heights(mask, spacing_mm, fr)
    ant, post = h["anterior_mm"], h["posterior_mm"]
    wedge = ant / post if post and not math.isnan(post) and post > 0 else math.nan
    area = float(mask.sum()) * spacing_mm[0] * spacing_mm[1]
    return {
        "anterior_height_mm": ant,
        "middle_height_mm": h["middle_mm"],
        "posterior_height_mm": post,
        "wedge_ratio": wedge,
        "ap_width_mm": h["width_mm"],
        "area_mm2": area,
    }


def disc_measures(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame | None
) -> dict[str, float]:
    fr = frame or principal_frame(mask, spacing_mm)
    h = band_heights(mask, spacing_mm, fr)
    area = float(mask.sum()) * spacing_mm[0] * spacing_mm[1]
    width = h["width_mm"]
    mean_h = area / width if width and width > 0 else math.nan
    return {
        "mean_height_mm": mean_h,
        "centre_height_mm": h["middle_mm"],
        "anterior_height_mm": h["anterior_mm"],
        "posterior_height_mm": h["posterior_mm"],
        "ap_width_mm": width,
        "area_mm2": area,
    }


def endplate_angle_deg(mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame, which: str) -> float:
    """Angle (degrees, image frame, 0 = horizontal, positive = rising towards posterior) of an endplate.

    ``which`` is ``"superior"`` or ``"inferior"``: a line is fitted to the top (or bottom) boundary
    points of the middle 80 % of the body's AP width.
    """
    pts = np.argwhere(mask) * np.asarray(spacing_mm)
    if len(pts) < 10:
        return math.nan
    u = pts @ frame.u
    v = pts @ frame.v
    vmin, vmax = float(v.min()), float(v.max())
    strips = np.floor((v - vmin) / max(spacing_mm)).astype(int)
    xs, ys = [], []
    for s in np.unique(strips):
        sel = strips == s
        vc = float(v[sel].mean())
        if not 0.1 <= (vc - vmin) / max(vmax - vmin, 1e-9) <= 0.9:
            continue
        idx = np.flatnonzero(sel)
        k = idx[np.argmin(u[sel])] if which == "superior" else idx[np.argmax(u[sel])]
        xs.append(pts[k, 1])  # col (posterior) in mm
        ys.append(pts[k, 0])  # row (inferior) in mm
    if len(xs) < 3:
        return math.nan
    slope = float(np.polyfit(xs, ys, 1)[0])
    return math.degrees(math.atan(-slope))


def lordosis_deg(upper_angle: float, lower_angle: float) -> float:
    """Cobb-style angle between two endplate lines (degrees, positive = lordotic).

    In the canonical layout (anterior on the left), lordosis makes the upper endplate rise towards
    posterior less than the lower one: the value is ``lower - upper``.
    """
    return lower_angle - upper_angle
