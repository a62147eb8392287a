"""Segmenting an upsampled sagittal stack on its acquired slices: step 1 of docs/decisions/spine-native-slices.md.

A thick-slice acquisition resampled linearly to thin slices is piecewise linear along the slice axis: its second
difference is zero except at the acquired slices (the knots). :func:`detect_knots` finds them (thresholds fixed
before scoring); :func:`native_volume` rebuilds the acquired slices as a volume with their own affine. The candidate
segmented that volume and brought the labels back to the input grid by nearest neighbour. Step 1 compares it with
the shipped pipeline on TRAINING cases only (VB3 training split, IVD training cases); it failed (VB3 -0.003, IVD
-0.010), so the pipeline does not do this and no held-out case was scored.

Run from the repository root: ``python -m benchmarks.spine_native_slices`` (about 4 minutes at 2 threads).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.common import write_results
from benchmarks.spine import SHARED_DATA, body_scores

log = logging.getLogger(__name__)
THREADS = 2

#: a slice is a knot candidate when its second-difference energy is this many times the median
SPIKE_RATIO = 3.0
#: fewest knots that make a pattern
MIN_KNOTS = 4
#: largest distance (slices) of a knot from the fitted regular spacing
MAX_RESIDUAL = 0.35
#: thinnest acquired spacing (in input slices) worth rebuilding
MIN_PERIOD = 1.5
#: share of the regular positions between the first and last knot where a knot must be found
MIN_COVERAGE = 0.7
#: knots that may be dropped as not fitting the pattern
MAX_OUTLIERS = 2


@dataclass(frozen=True)
class Knots:
    """Acquired slices at ``first + period * k`` (input slice units, fractional), ``k = 0 .. count - 1``."""

    first: float
    period: float
    count: int
    strength: float  # median spike height over the profile's median

    def positions(self) -> npt.NDArray[np.float64]:
        return self.first + self.period * np.arange(self.count, dtype=np.float64)


def second_difference_profile(data: npt.NDArray[np.generic], axis: int) -> npt.NDArray[np.float64]:
    """Mean |f(r+1) - 2 f(r) + f(r-1)| over each slice r along ``axis`` (r = 1 .. n-2; 0 at both ends)."""
    arr = np.moveaxis(np.asarray(data), axis, 0)
    n = arr.shape[0]
    out = np.zeros(n, dtype=np.float64)
    if n < 3:
        return out
    step = max(1, int(np.sqrt(arr[0].size / 40_000)))  # an in-plane subsample is plenty for a mean
    sub = np.asarray(arr[:, ::step, ::step], dtype=np.float32) if arr.ndim == 3 else arr.astype(np.float32)
    d2 = np.abs(sub[2:] - 2.0 * sub[1:-1] + sub[:-2])
    out[1:-1] = d2.reshape(n - 2, -1).mean(axis=1)
    return out


def _knot_centres(z: npt.NDArray[np.float64]) -> list[float]:
    """One fractional position per run of candidate slices: the centroid of its excess over the baseline,
    with the slices on either side of the run included (a knot between two slices lights up both)."""
    cand = np.flatnonzero(z >= SPIKE_RATIO)
    if cand.size == 0:
        return []
    runs = np.split(cand, np.flatnonzero(np.diff(cand) > 1) + 1)
    centres = []
    for run in runs:
        lo, hi = max(0, int(run[0]) - 1), min(z.size - 1, int(run[-1]) + 1)
        idx = np.arange(lo, hi + 1)
        w = np.clip(z[idx] - 1.0, 0.0, None)
        centres.append(float((idx * w).sum() / w.sum()))
    return centres


def _regular_fit(pos: npt.NDArray[np.float64], period: float) -> tuple[float, float, npt.NDArray[np.float64]] | None:
    """``(first, period, knots)`` of the regular spacing through the knots, after dropping at most
    :data:`MAX_OUTLIERS` knots that do not fit (an edge slice of padding or a different scan spikes too); None when
    the rest do not fit within :data:`MAX_RESIDUAL` or cover less than :data:`MIN_COVERAGE` of their span."""
    for _ in range(MAX_OUTLIERS + 1):
        k = np.round((pos - pos[0]) / period)
        if pos.size < MIN_KNOTS or np.unique(k).size != k.size:
            return None
        slope, first = np.polyfit(k, pos, 1)
        residual = np.abs(first + slope * k - pos)
        if residual.max() <= MAX_RESIDUAL:
            ok = k.size >= MIN_COVERAGE * (int(k.max()) + 1) and slope >= MIN_PERIOD
            return (float(first), float(slope), pos) if ok else None
        pos = np.delete(pos, int(np.argmax(residual)))
    return None


def detect_knots(data: npt.NDArray[np.generic], axis: int) -> Knots | None:
    """The acquired slices of ``data`` along ``axis`` when it was linearly upsampled from thicker slices, else None."""
    prof = second_difference_profile(data, axis)
    inner = prof[1:-1]
    base = float(np.median(inner)) if inner.size else 0.0
    if base <= 0.0:
        return None
    z = np.zeros_like(prof)
    z[1:-1] = inner / base
    pos = np.array(_knot_centres(z))
    if pos.size < MIN_KNOTS:
        return None
    period = float(np.median(np.diff(pos)))
    if period < MIN_PERIOD:
        return None
    fit = _regular_fit(pos, period)
    if fit is None:
        return None
    first, slope, pos = fit
    strength = float(np.median(z[np.clip(np.round(pos).astype(int), 0, z.size - 1)]))
    # extend the regular pattern to every acquired slice within half a period of the stack
    n = prof.size
    k_lo = int(np.ceil((-0.5 * slope - first) / slope))
    k_hi = int(np.floor((n - 1 + 0.5 * slope - first) / slope))
    knots = Knots(float(first + slope * k_lo), float(slope), k_hi - k_lo + 1, strength)
    log.debug("stack upsampled along axis %d: acquired every %.2f slices from %.2f", axis, knots.period, knots.first)
    return knots


def native_slices(data: npt.NDArray[np.generic], axis: int, knots: Knots) -> npt.NDArray[np.float32]:
    """The acquired slices at ``knots``: each extrapolated along the straight segment on its left and on its right
    (exact for a linear interpolation), averaged and kept within the data's range; positions outside the stack
    take the edge slice."""
    arr = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    n = arr.shape[0]

    def at(i: int) -> npt.NDArray[np.float32]:
        return arr[min(max(i, 0), n - 1)]

    lo_val, hi_val = float(arr.min()), float(arr.max())
    out = np.empty((knots.count, *arr.shape[1:]), dtype=np.float32)
    for j, x in enumerate(knots.positions()):
        x = float(np.clip(x, 0.0, n - 1))
        r = int(np.floor(x))
        a = x - r
        if a < 1e-6:
            out[j] = at(r)
            continue
        left = at(r) + a * (at(r) - at(r - 1))
        right = at(r + 1) - (1.0 - a) * (at(r + 2) - at(r + 1))
        out[j] = np.clip(0.5 * (left + right), lo_val, hi_val)
    return np.moveaxis(out, 0, axis)


def native_volume(vol: Any) -> tuple[Any, Knots | None]:
    """``vol`` on its acquired slices along its left-right axis (or unchanged and None when not upsampled)."""
    import nibabel as nib

    from neurospine.io import Volume

    axis = int(np.nonzero(nib.orientations.io_orientation(vol.affine)[:, 0] == 0)[0][0])
    knots = detect_knots(np.asarray(vol.data), axis)
    if knots is None:
        return vol, None
    step = np.eye(4)
    step[axis, axis], step[axis, 3] = knots.period, knots.first
    return Volume(native_slices(np.asarray(vol.data), axis, knots), vol.affine @ step, vol.source), knots


def segment_on_acquired(image: Any) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """Body map and instance map on the input grid: the pipeline on the acquired slices, labels back by nearest."""
    from neurospine.io.resample import resample_to_grid
    from neurospine.spine.api import segment

    native, _ = native_volume(image)
    seg = segment(native, threads=THREADS)
    back = [
        resample_to_grid(np.asarray(a), native.affine, image.shape, image.affine, order=0)
        for a in (seg.body_input, seg.seg_vert_input)
    ]
    return np.asarray(back[0], dtype=np.int16), np.asarray(back[1], dtype=np.int16)


def disc_dice(vert: npt.NDArray[np.integer], ref: npt.NDArray[np.integer]) -> float:
    """Mean per-disc Dice (Hungarian matching; an unmatched reference disc counts 0)."""
    from neurospine.metrics import match_instances

    pred = np.where((vert > 100) & (vert < 200), vert, 0)
    m = match_instances(pred, ref, method="hungarian", threshold=0.1)
    n_ref = len([v for v in np.unique(ref) if v])
    return float(np.sum([p.dice for p in m.pairs]) / max(1, n_ref))


def main() -> int:
    from types import SimpleNamespace

    from neurospine.spine import data as D
    from neurospine.spine.api import segment

    logging.basicConfig(level=logging.WARNING)
    rows: list[dict[str, Any]] = []
    for folder, held_out in ((D.VB3_DIR, D.VB3_TEST), (D.IVD_DIR, D.IVD_TEST)):
        for entry in D.manifest(SHARED_DATA, folder):
            if entry["case"] in held_out:
                continue
            case = D.load_eval_case(SHARED_DATA, folder, entry)
            ref = np.asarray(case.labels.data)
            _, knots = native_volume(case.image)
            t = time.perf_counter()
            seg = segment(case.image, threads=THREADS)
            t_now = time.perf_counter() - t
            t = time.perf_counter()
            body, vert = segment_on_acquired(case.image)
            t_acq = time.perf_counter() - t
            if folder == D.IVD_DIR:
                now, acq = disc_dice(np.asarray(seg.seg_vert_input), ref), disc_dice(vert, ref)
            else:
                now = float(body_scores(seg, ref)["mean_per_body_dice"])
                acq = float(body_scores(SimpleNamespace(body_input=body), ref)["mean_per_body_dice"])
            row = {
                "case": case.name,
                "acquired_every_slices": round(knots.period, 3) if knots else None,
                "dice_shipped": round(now, 4),
                "dice_acquired": round(acq, 4),
                "seconds_shipped": round(t_now, 2),
                "seconds_acquired": round(t_acq, 2),
            }
            rows.append(row)
            log.warning("%s", row)
    sets = {name: [r for r in rows if r["case"].startswith(name)] for name in ("vb3", "ivd")}
    summary = {
        name: {
            "cases": len(rs),
            "shipped": round(float(np.mean([r["dice_shipped"] for r in rs])), 4),
            "acquired": round(float(np.mean([r["dice_acquired"] for r in rs])), 4),
        }
        for name, rs in sets.items()
    }
    md = [
        "# Spine: segmenting upsampled stacks on their acquired slices (training cases only)",
        "",
        "Rule and outcome: `docs/decisions/spine-native-slices.md`. VB3: mean per-body Dice; IVD: mean per-disc Dice.",
        "",
        "| set | cases | shipped pipeline | on acquired slices |",
        "|---|---|---|---|",
        *[f"| {k} | {v['cases']} | {v['shipped']} | {v['acquired']} |" for k, v in summary.items()],
        "",
        "| case | acquired every (slices) | shipped | acquired | s shipped | s acquired |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r['case']} | {r['acquired_every_slices']} | {r['dice_shipped']} | {r['dice_acquired']} | "
            f"{r['seconds_shipped']} | {r['seconds_acquired']} |"
            for r in rows
        ],
        "",
    ]
    write_results("spine_native_slices", {"summary": summary, "cases": rows}, threads=THREADS, markdown="\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
