"""Vertebral body heights, wedge ratio, disc heights and the lumbar lordosis angle (2D, mm).

Each structure is measured in a local frame: ``u`` along the spine (towards inferior) and ``v``
perpendicular to it (towards posterior). ``u`` is the direction between the centroids of the
neighbouring bodies (above and below; one neighbour if only one exists); a body without neighbours
uses its principal axis closest to the image vertical.

Heights are extents along ``u`` of the mask, measured on 0.25 mm-wide strips across ``v`` and averaged
over a band: anterior = 5-15 % of the AP width from the anterior edge, middle = 45-55 %, posterior =
85-95 % (the bands avoid rounded corners and osteophytes). Wedge ratio = anterior / posterior.
Disc heights: mean = area / AP width; centre = middle-band height.

Lordosis (when levels are named; ``lumbar_lordosis``): Cobb angle in the image plane between the
superior endplate of L1 and the superior endplate of S1, or, when S1 cannot serve, the inferior
endplate of L5. An endplate line is a total-least-squares fit (in mm) to the body's superior (or
inferior) boundary: in a frame ``(u, v)``, the most superior (inferior) boundary point (midpoint of a
pixel edge facing superior) of each ``v`` strip, over the middle 80 % of the body's extent across
``v``; points farther than ``OUTLIER_MM`` from the line (corners, walls) are then left out. The frame
starts from the spine direction at that body (its neighbours' centroids) and is re-aligned twice with
the normal of the fitted line; the fit closest to a line is kept, so a steep (sacral) endplate is not
mixed with the body's anterior or posterior wall. Endplate angles are in the canonical image frame
(rows superior -> inferior, columns anterior -> posterior): 0 = horizontal, positive = rising towards
posterior; lordosis = lower angle - upper angle (positive = lordotic).

A body serves as an endplate reference only if (``reference_problem`` and ``lumbar_lordosis``):
it does not touch the image border; its area is between ``PARTIAL_AREA_FRACTION`` and
``OVERSIZED_AREA_FACTOR`` x its neighbours' (median); its centroid is at most ``GAP_FACTOR`` x the
column's median centroid spacing from the body above and at least ``CLOSE_FACTOR`` x that spacing
from both neighbours (not a piece of a split body); the disc it faces was segmented (when discs are
known); its endplate fits are lines (``MIN_ENDPLATE_POINTS`` points, ``MIN_INLIER_FRACTION`` of them on
the line, rms within ``MAX_ENDPLATE_RMS_MM``); for L1 and L5 the superior and inferior endplates are at
most ``MAX_BODY_WEDGE_DEG`` apart (a fragment or a body cut by the segmentation is not whole; the
sacrum's lower edge is no endplate). S1 also needs a whole L5 above it and an L5-S1 disc angle within
``L5_S1_DISC_DEG``. Otherwise no number is given, only the reason.
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


#: A body smaller than this fraction of its neighbours' median area is taken as cut (partial volume, image edge).
PARTIAL_AREA_FRACTION = 0.5
#: A body farther than this multiple of the column's median centroid spacing from the body above is not contiguous.
GAP_FACTOR = 1.6
#: A body closer than this multiple of that spacing to a neighbour is a piece of a split body.
CLOSE_FACTOR = 0.6
#: An endplate line needs at least this many boundary points ...
MIN_ENDPLATE_POINTS = 5
#: ... lying within this root-mean-square distance (mm) of the line ...
MAX_ENDPLATE_RMS_MM = 2.0
#: ... and at least this fraction of the boundary points must lie on it.
MIN_INLIER_FRACTION = 0.6
#: Boundary points farther than this (mm; or 3 robust sd if larger) from the line are left out of the fit.
OUTLIER_MM = 1.0
#: A body larger than this multiple of its neighbours' median area is not one body (merged, sacrum).
OVERSIZED_AREA_FACTOR = 2.0
#: Plausible L5-S1 disc angle (S1 superior minus L5 inferior endplate, degrees); outside it S1 is not used.
L5_S1_DISC_DEG = (-10.0, 35.0)
#: A body whose superior and inferior endplate lines are farther apart than this (degrees) is not a whole body.
MAX_BODY_WEDGE_DEG = 30.0


@dataclass(frozen=True)
class Endplate:
    """An endplate line: angle (degrees, image frame, 0 = horizontal, + = rising towards posterior)."""

    angle_deg: float
    n_points: int
    rms_mm: float
    normal_rc: tuple[float, float]  # unit normal (row, col) in mm space, pointing inferior
    inlier_fraction: float = 1.0  # of the boundary points, those kept by the line fit

    @property
    def ok(self) -> bool:
        return (
            not math.isnan(self.angle_deg)
            and self.n_points >= MIN_ENDPLATE_POINTS
            and self.rms_mm <= MAX_ENDPLATE_RMS_MM
            and self.inlier_fraction >= MIN_INLIER_FRACTION
        )


NO_ENDPLATE = Endplate(math.nan, 0, math.nan, (1.0, 0.0))


def _boundary_points(
    mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame, which: str
) -> npt.NDArray[np.float64]:
    """Midpoints (mm) of the pixel edges between the mask and the outside that face superior (or inferior)."""
    sp = np.asarray(spacing_mm, dtype=np.float64)
    sign = -1.0 if which == "superior" else 1.0
    pad = np.pad(mask, 1)
    inside = pad[1:-1, 1:-1]
    out: list[npt.NDArray[np.float64]] = []
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        step = np.array([dr, dc], dtype=np.float64) * sp
        if sign * float(step @ frame.u) <= 1e-9:
            continue
        nb = pad[1 + dr : pad.shape[0] - 1 + dr, 1 + dc : pad.shape[1] - 1 + dc]
        rc = np.argwhere(inside & ~nb).astype(np.float64)
        out.append((rc + 0.5 * np.array([dr, dc])) * sp)
    return np.concatenate(out) if out else np.zeros((0, 2))


def endplate_fit(mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame, which: str) -> Endplate:
    """Line along the superior (``which="superior"``) or inferior boundary of ``mask`` seen in ``frame``.

    Boundary points are the midpoints of the pixel edges facing superior (inferior) along ``frame.u``;
    per strip across ``frame.v`` (one pixel, the larger spacing, wide) the most superior (inferior) one
    is kept; strips outside the middle 80 % of the body's extent across ``v`` are left out (rounded
    corners, walls). The line is a total-least-squares fit to those points in mm.
    """
    if int(mask.sum()) < 10:
        return NO_ENDPLATE
    pts = _boundary_points(mask, spacing_mm, frame, which)
    u = pts @ frame.u
    v = pts @ frame.v
    body_v = (np.argwhere(mask) * np.asarray(spacing_mm)) @ frame.v
    vmin, vmax = float(body_v.min()), float(body_v.max())
    width = max(spacing_mm)
    strips = np.floor((v - vmin) / width).astype(np.int64)
    order = np.lexsort((u if which == "superior" else -u, strips))
    first = np.ones(len(order), bool)
    first[1:] = strips[order][1:] != strips[order][:-1]
    k = order[first]  # the extreme point of each strip
    frac = (v[k] - vmin) / max(vmax - vmin, 1e-9)
    k = k[(frac >= 0.1) & (frac <= 0.9)]
    if len(k) < 3:
        return NO_ENDPLATE
    xy = pts[k]
    keep = np.ones(len(xy), bool)
    for _ in range(4):  # total least squares, then again without the points off the line (corners, walls)
        centre = xy[keep].mean(0)
        _, _, vt = np.linalg.svd(xy[keep] - centre, full_matrices=False)
        normal = np.array([vt[0, 1], -vt[0, 0]])
        resid = (xy - centre) @ normal
        mad = float(np.median(np.abs(resid[keep])))
        new_keep = np.abs(resid) <= max(OUTLIER_MM, 3.0 * 1.4826 * mad)
        if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    d = vt[0]  # line direction (row, col), towards posterior
    if d[1] < 0:
        d = -d
    normal = np.array([d[1], -d[0]])
    if normal[0] < 0:
        normal = -normal
    resid = (xy[keep] - xy[keep].mean(0)) @ normal
    rms = float(np.sqrt(np.mean(resid**2)))
    return Endplate(
        math.degrees(math.atan2(-d[0], d[1])),
        int(keep.sum()),
        rms,
        (float(normal[0]), float(normal[1])),
        float(keep.mean()),
    )


def endplate_angle_deg(mask: npt.NDArray[np.bool_], spacing_mm: tuple[float, float], frame: Frame, which: str) -> float:
    """Angle (degrees, image frame, 0 = horizontal, positive = rising towards posterior) of an endplate.

    ``which`` is ``"superior"`` or ``"inferior"``; see ``endplate_fit`` (one pass in the given frame).
    """
    return endplate_fit(mask, spacing_mm, frame, which).angle_deg


def body_endplate(
    mask: npt.NDArray[np.bool_],
    spacing_mm: tuple[float, float],
    which: str,
    spine_direction_rc_mm: npt.ArrayLike | None = None,
    iterations: int = 2,
) -> Endplate:
    """Endplate line of one body: fitted in the spine-direction frame, then re-fitted in the frame normal
    to the line found (``iterations`` times); the fit closest to a line (smallest rms among those keeping
    ``MIN_INLIER_FRACTION`` of the points) is returned. A frame turned onto a wedge-shaped body's wall
    makes the wall's points extreme and the fit worse, so it is not kept. Without a spine direction the
    body's principal axis closest to the image vertical starts the search."""
    if spine_direction_rc_mm is None:
        frame = principal_frame(mask, spacing_mm)
    else:
        frame = frame_from_direction(spine_direction_rc_mm)
    fits = [endplate_fit(mask, spacing_mm, frame, which)]
    for _ in range(iterations):
        if math.isnan(fits[-1].angle_deg):
            break
        fits.append(endplate_fit(mask, spacing_mm, frame_from_direction(fits[-1].normal_rc), which))
    good = [f for f in fits if not math.isnan(f.angle_deg) and f.inlier_fraction >= MIN_INLIER_FRACTION]
    return min(good, key=lambda f: f.rms_mm) if good else fits[0]


def lordosis_deg(upper_angle: float, lower_angle: float) -> float:
    """Cobb-style angle between two endplate lines (degrees, positive = lordotic).

    In the canonical layout (anterior on the left), lordosis makes the upper endplate rise towards
    posterior less than the lower one: the value is ``lower - upper`` (wrapped to (-90, 90]).
    """
    d = lower_angle - upper_angle
    if math.isnan(d):
        return d
    return d - 180.0 * math.ceil((d - 90.0) / 180.0)


@dataclass(frozen=True)
class ColumnBody:
    """A named body for ``lumbar_lordosis``: its mask and centroid (pixels) on the plane."""

    name: str
    mask: npt.NDArray[np.bool_]
    centroid_rc: tuple[float, float]


@dataclass(frozen=True)
class Lordosis:
    """Lumbar lordosis and how it was (or why it was not) measured."""

    deg: float | None  # None = withheld
    lower: str  # "S1" (L1-S1, S1 superior endplate), "L5" (L1-L5, L5 inferior endplate) or "" (none)
    note: str  # why S1 or the value was not used; "" when L1-S1 was measured without remark
    endplates: dict[str, float]  # angle (degrees) of each endplate used, e.g. {"L1 superior": -8.1}


def reference_problem(bodies: list[ColumnBody], i: int, spacing_mm: tuple[float, float]) -> str:
    """Why body ``i`` of the column (superior to inferior) cannot serve as an endplate reference ("" = it can)."""
    b = bodies[i]
    m = b.mask
    if m[0, :].any() or m[-1, :].any() or m[:, 0].any() or m[:, -1].any():
        return f"{b.name} touches the image border (cut off)"
    areas = [float(x.mask.sum()) for x in bodies]
    neigh = [areas[j] for j in (i - 1, i + 1) if 0 <= j < len(bodies)]
    if neigh and areas[i] < PARTIAL_AREA_FRACTION * float(np.median(neigh)):
        pct = 100.0 * areas[i] / float(np.median(neigh))
        return f"{b.name} area is {pct:.0f} % of its neighbours' (partial body)"
    if neigh and areas[i] > OVERSIZED_AREA_FACTOR * float(np.median(neigh)):
        pct = 100.0 * areas[i] / float(np.median(neigh))
        return f"{b.name} area is {pct:.0f} % of its neighbours' (not a single body)"
    sp = np.asarray(spacing_mm)
    cents = [np.asarray(x.centroid_rc) * sp for x in bodies]
    gaps = [float(np.linalg.norm(cents[j + 1] - cents[j])) for j in range(len(cents) - 1)]
    if len(gaps) >= 3:
        med = float(np.median(gaps))
        if i > 0 and gaps[i - 1] > GAP_FACTOR * med:
            return (
                f"{b.name} lies {gaps[i - 1]:.0f} mm from {bodies[i - 1].name} (column spacing {med:.0f} mm): "
                "not contiguous with the column"
            )
        for j in (i - 1, i):  # the gaps above and below body i
            if 0 <= j < len(gaps) and gaps[j] < CLOSE_FACTOR * med:
                other = bodies[j] if j == i - 1 else bodies[i + 1]
                return (
                    f"{b.name} lies only {gaps[j]:.0f} mm from {other.name} (column spacing {med:.0f} mm): "
                    "a body split in two (levels may be misnamed)"
                )
    return ""


def _cropped_to_mask(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """``mask`` cut to its bounding box (line fits do not depend on where the body lies in the image)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return mask
    return mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def lumbar_lordosis(
    bodies: list[ColumnBody], spacing_mm: tuple[float, float], disc_names: set[str] | None = None
) -> Lordosis:
    """L1-S1 lordosis (superior endplates), else L1-L5 (L1 superior, L5 inferior), else withheld with a reason.

    ``bodies`` are the named bodies of the column, superior to inferior. ``disc_names``: the segmented
    discs (e.g. ``"L5-S1"``); when given, an endplate serves only if the disc it faces was found (a body
    cut short by the segmentation has no disc beside its cut edge). The sacrum (S1) is fused below, so
    only its superior endplate is checked; a lumbar body's two endplates must both be lines and at most
    ``MAX_BODY_WEDGE_DEG`` apart.
    """
    idx = {b.name: i for i, b in enumerate(bodies)}
    if "L1" not in idx:
        return Lordosis(None, "", "L1 not in view", {})
    frames = neighbour_frames([b.centroid_rc for b in bodies], spacing_mm)  # spine direction at each body

    def endplate(name: str, which: str) -> tuple[Endplate, str]:
        i = idx[name]
        why = reference_problem(bodies, i, spacing_mm)
        if why:
            return NO_ENDPLATE, why
        if disc_names is not None:
            j = i - 1 if which == "superior" else i + 1
            if 0 <= j < len(bodies):
                disc = f"{bodies[j].name}-{name}" if which == "superior" else f"{name}-{bodies[j].name}"
                if disc not in disc_names:
                    return NO_ENDPLATE, f"no {disc} disc found next to the {name} {which} endplate"
        frame = frames[i]
        direction = None if frame is None else frame.u
        body = _cropped_to_mask(bodies[i].mask)  # the fits scan the mask: keep them off the rest of the image
        sides = ("superior",) if name.startswith("S") else ("superior", "inferior")
        fits = {w: body_endplate(body, spacing_mm, w, direction) for w in sides}
        for w, fit in fits.items():
            if not fit.ok:
                return fit, (
                    f"{name} {w} endplate not a line ({fit.n_points} boundary points, "
                    f"{100 * fit.inlier_fraction:.0f} % on it, rms {fit.rms_mm:.1f} mm)"
                )
        if len(fits) == 2:
            wedge = lordosis_deg(fits["superior"].angle_deg, fits["inferior"].angle_deg)
            if abs(wedge) > MAX_BODY_WEDGE_DEG:
                return fits[which], (
                    f"{name} superior and inferior endplates {abs(wedge):.0f} deg apart (not a whole vertebral body)"
                )
        return fits[which], ""

    top, why_top = endplate("L1", "superior")
    if why_top:
        return Lordosis(None, "", why_top, {})
    notes = []
    l5, why_l5 = endplate("L5", "inferior") if "L5" in idx else (NO_ENDPLATE, "L5 not in view")
    if "S1" not in idx:
        notes.append("S1 not in view")
    else:
        s1, why_s1 = endplate("S1", "superior")
        if not why_s1 and why_l5:
            why_s1 = "S1 not used without a whole L5 above it"
        if not why_s1:
            disc = lordosis_deg(l5.angle_deg, s1.angle_deg)
            lo, hi = L5_S1_DISC_DEG
            if not lo <= disc <= hi:
                why_s1 = (
                    f"S1 superior endplate {disc:.0f} deg to the L5 inferior endplate "
                    f"(L5-S1 disc angle outside {lo:.0f}..{hi:.0f})"
                )
        if not why_s1:
            angles = {"L1 superior": top.angle_deg, "S1 superior": s1.angle_deg, "L5 inferior": l5.angle_deg}
            return Lordosis(lordosis_deg(top.angle_deg, s1.angle_deg), "S1", "", angles)
        notes.append(why_s1)
    if not why_l5:
        angles = {"L1 superior": top.angle_deg, "L5 inferior": l5.angle_deg}
        return Lordosis(lordosis_deg(top.angle_deg, l5.angle_deg), "L5", "; ".join(notes), angles)
    notes.append(why_l5)
    return Lordosis(None, "", "; ".join(notes), {"L1 superior": top.angle_deg})
