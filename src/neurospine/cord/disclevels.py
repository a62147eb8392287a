"""Cervical levels from the discs seen in front of the cord, when the whole-spine model names none.

Small sagittal or isotropic cervical fields of view (e.g. a 55 mm crop from C2 to C5) are too small for the
whole-spine model, but the discs are visible. Along the cord's own centreline (slice centroids of the soft
cord mask), every axial slice contributes the median intensity of a band in front of the cord
(``BAND_ANTERIOR_MM`` in front of the cord centre, ``BAND_HALF_WIDTH_MM`` to each side), i.e. the vertebral
bodies and discs. A disc with its two endplates is where that profile changes most along the cord, in
either direction, so the discs are the peaks of the smoothed absolute derivative of the profile: no
assumption about whether discs are brighter or darker than bone (T1w and T2w of errsm_30 give the same
discs within 2 mm). The spacing of the peaks must be vertebra-like (a period of 12-26 mm in the
profile's autocorrelation) or nothing is named.

Naming is positional (always flagged): the topmost disc seen is taken as C2/C3, the first disc of the
spine, so a cervical field of view that starts at C2 or above is named right; one that starts lower is
named too high by the number of missing levels. The cord above the top disc is C2 for up to
``C2_SPAN_PERIODS`` disc spacings; each interval between discs takes the next level down; the cord below
the lowest disc takes one more level for up to one spacing. The fallback runs only for a cervical-looking
cord (median cross-section at least ``MIN_CERVICAL_AREA_MM2``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt
from scipy import ndimage, signal

from neurospine.io import Volume, reorient
from neurospine.labels import VERTEBRA_IDS

log = logging.getLogger(__name__)

BAND_ANTERIOR_MM = (8.0, 22.0)
BAND_HALF_WIDTH_MM = 4.0
#: smoothing of the profile's absolute derivative (a box about one disc high, then a Gaussian): merges the
#: edges of a disc and its endplates into one peak at the disc's middle
ENERGY_BOX_MM = 7.0
ENERGY_SIGMA_MM = 1.5
#: detrending window (longer than a vertebra)
TREND_MM = 25.0
PERIOD_RANGE_MM = (12.0, 26.0)
MIN_AUTOCORRELATION = 0.3
MIN_PROMINENCE = 0.5
MAX_SLICE_MM = 2.0
MIN_CERVICAL_AREA_MM2 = 55.0
MIN_CORD_LENGTH_MM = 30.0
C2_SPAN_PERIODS = 1.3
CERVICAL_ORDER = ("C2", "C3", "C4", "C5", "C6", "C7", "T1", "T2", "T3")


@dataclass(frozen=True)
class DiscLevels:
    """Discs found along the cord and the cord-by-level mask painted from them (on the input grid)."""

    mask: npt.NDArray[np.int16] | None
    discs_mm: list[float]  # world superior coordinate of each disc, top first
    period_mm: float
    autocorrelation: float
    reason: str = ""  # why nothing was named (empty when named)


def _none(reason: str, period: float = float("nan"), ac: float = float("nan")) -> DiscLevels:
    return DiscLevels(None, [], period, ac, reason)


def band_profile(
    image: npt.NDArray[np.floating], cord: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]
) -> npt.NDArray[np.float64]:
    """Median intensity of the band in front of the cord on every RAS axial slice (nan without cord)."""
    z = image.shape[2]
    out = np.full(z, np.nan)
    a0, a1 = BAND_ANTERIOR_MM
    for k in range(z):
        sl = cord[:, :, k]
        if not sl.any():
            continue
        ii, jj = np.nonzero(sl)
        ci, cj = float(ii.mean()), float(jj.mean())
        i0, i1 = round(ci - BAND_HALF_WIDTH_MM / spacing_mm[0]), round(ci + BAND_HALF_WIDTH_MM / spacing_mm[0])
        j0, j1 = round(cj + a0 / spacing_mm[1]), round(cj + a1 / spacing_mm[1])  # +j = anterior in RAS
        sub = image[max(i0, 0) : max(i1 + 1, 0), max(j0, 0) : max(j1 + 1, 0), k]
        if sub.size >= 4:
            out[k] = float(np.median(sub))
    return out


def find_discs(profile: npt.NDArray[np.float64], slice_mm: float) -> tuple[npt.NDArray[np.intp], float, float]:
    """Disc slice indices (ascending), period (mm) and autocorrelation at it, from a band profile."""
    ok = np.flatnonzero(np.isfinite(profile))
    if ok.size < 3:
        return np.zeros(0, dtype=np.intp), float("nan"), float("nan")
    k0, k1 = int(ok[0]), int(ok[-1])
    x = profile[k0 : k1 + 1]
    good = np.isfinite(x)
    x = np.interp(np.arange(x.size), np.flatnonzero(good), x[good])
    x = ndimage.gaussian_filter1d(x, 0.7 / slice_mm)
    energy = np.abs(np.gradient(x, slice_mm))
    energy = ndimage.uniform_filter1d(energy, max(1, round(ENERGY_BOX_MM / slice_mm)), mode="nearest")
    energy = ndimage.gaussian_filter1d(energy, ENERGY_SIGMA_MM / slice_mm)
    smooth = energy.copy()
    energy = energy - ndimage.uniform_filter1d(energy, max(3, round(TREND_MM / slice_mm)), mode="nearest")
    sd = float(energy.std())
    if sd <= 0:
        return np.zeros(0, dtype=np.intp), float("nan"), float("nan")
    energy /= sd
    ac = np.correlate(energy, energy, "full")[energy.size - 1 :]
    ac = ac / ac[0]
    lags = np.arange(ac.size) * slice_mm
    sel = (lags >= PERIOD_RANGE_MM[0]) & (lags <= PERIOD_RANGE_MM[1])
    if not sel.any():
        return np.zeros(0, dtype=np.intp), float("nan"), float("nan")
    best = int(np.argmax(np.where(sel, ac, -np.inf)))
    period, corr = float(lags[best]), float(ac[best])
    peaks, _ = signal.find_peaks(energy, distance=max(1, int(0.6 * period / slice_mm)), prominence=MIN_PROMINENCE)
    # each disc at the centroid of the (not detrended) energy within a quarter period of its peak: the trend
    # removal pulls peaks near the ends of the profile outwards
    half = max(1, round(0.25 * period / slice_mm))
    refined = []
    for pk in peaks:
        c = int(pk)
        for _ in range(3):  # a few mean-shift steps
            lo, hi = max(0, c - half), min(smooth.size, c + half + 1)
            w = smooth[lo:hi] - smooth[lo:hi].min()
            if w.sum() <= 0:
                break
            c = round(float((w * np.arange(lo, hi)).sum() / w.sum()))
        refined.append(c)
    return (np.asarray(refined, dtype=np.intp) + k0).astype(np.intp), period, corr


def cervical_levels(image: Volume, cord_soft: npt.NDArray[np.floating]) -> DiscLevels:
    """Cord-by-level mask on ``image``'s grid from the discs in front of the cord (see the module docstring)."""
    img_ras, record = reorient(image, "RAS")
    cord_ras, _ = reorient(image.with_data(np.asarray(cord_soft, dtype=np.float32)), "RAS")
    sp = img_ras.spacing_mm
    if sp[2] > MAX_SLICE_MM:
        return _none(f"slices {sp[2]:.1f} mm apart along the cord (needs <= {MAX_SLICE_MM:g} mm: sagittal or 3D)")
    soft = np.asarray(cord_ras.data, dtype=np.float64)
    cord = soft >= 0.5
    present = np.flatnonzero(cord.any(axis=(0, 1)))
    if present.size * sp[2] < MIN_CORD_LENGTH_MM:
        return _none(f"cord seen over {present.size * sp[2]:.0f} mm (needs {MIN_CORD_LENGTH_MM:g} mm)")
    area = float(np.median(soft[:, :, present].sum(axis=(0, 1)))) * sp[0] * sp[1]
    if area < MIN_CERVICAL_AREA_MM2:
        return _none(f"median cord area {area:.0f} mm2 is not cervical-like (>= {MIN_CERVICAL_AREA_MM2:g} mm2)")
    prof = band_profile(np.asarray(img_ras.data, dtype=np.float64), cord, sp)
    discs, period, corr = find_discs(prof, sp[2])
    if not np.isfinite(corr) or corr < MIN_AUTOCORRELATION or discs.size < 2:
        return _none(
            f"no regular disc pattern in front of the cord ({discs.size} discs, autocorrelation "
            f"{corr:.2f} < {MIN_AUTOCORRELATION:g} or fewer than 2 discs)",
            period,
            corr,
        )
    top_first = discs[::-1]
    aff = img_ras.affine
    centre = ((soft.shape[0] - 1) / 2.0, (soft.shape[1] - 1) / 2.0)
    z_of = aff[2, 0] * centre[0] + aff[2, 1] * centre[1] + aff[2, 2] * np.arange(soft.shape[2]) + aff[2, 3]
    disc_z = [float(z_of[k]) for k in top_first]
    bounds = [disc_z[0] + C2_SPAN_PERIODS * period, *disc_z, disc_z[-1] - period]
    levels = np.zeros(soft.shape[2], dtype=np.int16)
    for n, (hi, lo) in enumerate(pairwise(bounds)):
        if n >= len(CERVICAL_ORDER):
            break
        levels[(z_of <= hi) & (z_of > lo)] = VERTEBRA_IDS[CERVICAL_ORDER[n]]
    painted = np.where(cord, levels[None, None, :], 0).astype(np.int16)
    mask = record.undo(painted).astype(np.int16)
    log.info("discs along the cord at %s mm (period %.0f mm, autocorrelation %.2f)", disc_z, period, corr)
    return DiscLevels(mask, disc_z, period, corr)
