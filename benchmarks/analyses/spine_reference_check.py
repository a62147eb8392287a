"""Are the VB1 vertebral-body references laterally incomplete? Reference shape, image evidence, our excess.

Run from the repository root: ``python -m benchmarks.analyses.spine_reference_check``. Writes
``benchmarks/results/spine_reference_check.{md,json,png}``.

The spine benchmark finds our bodies 8.1 mm wider (left-right) than the VB1 references and 2.3 mm wider than
the VB2 ones. This script asks whether the VB1 references stop short of the bone the image shows, using three
measurements (all arrays are the stored IPL grids, 1 mm isotropic; axis 2 runs left-right across the sagittal
slices):

1. Reference shape: each reference body's section area per sagittal slice, its block (step) structure, the
   native slice spacing of the image (kinks of the trilinear interpolation), and how the section shrinks from
   the centre to the lateral edges (against an elliptic cylinder, section ~ sqrt(1 - u^2)).
2. Image evidence, independent of any model: on every sagittal slice, the superior-inferior intensity
   profile through the middle half (anterior-posterior) of the body's central-slice outline, slow trend removed,
   regressed on the same profile on the central slices (best of +-3 mm superior-inferior shifts). The slope
   ``beta`` is 1 where the body/endplate/disc pattern is as strong as at the centre and about 0 where it is
   absent. The image edge of a body side is where ``beta`` first falls below 0.5 going outwards.
3. Our prediction (the pipeline's body map, ``SpineSegmentation.body_input`` as scored by ``benchmarks.spine``,
   at 1 thread on VB1, VB2 held-out and two VB3 held-out cases): the excess
   voxels (predicted, not reference) of each matched body split by lateral position (beyond the reference's
   left-right range, on the reference's thin edge slices, on its core slices), by intensity (inside the
   reference bone's 5-95 % range; more likely bone than surrounding soft tissue by histogram; bone share
   estimated by unmixing against a soft-tissue ring around the body) and by image support (slice with
   ``beta`` >= 0.5, inside the central outline), and the Dice the matched bodies would have if the reference
   included parts of that excess.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage as ndi

from benchmarks.common import RESULTS_DIR, SHARED_DATA, write_results

NAME = "spine_reference_check"
THREADS = 1
#: semantic values of the predicted vertebral body (corpus, endplates)
#: presence threshold on beta (fraction of the central body/disc pattern) that defines the image edge
TAU = 0.5
#: superior-inferior shifts searched when comparing a lateral profile with the central one (mm)
SHIFT_MM = 3
#: Gaussian sigma (mm) of the superior-inferior trend removed from the profiles
HIGHPASS_MM = 8.0
#: superior-inferior margin around the body's central outline in the profile window (mm; reaches the discs)
MARGIN_MM = 8
#: a reference slice whose section is below this fraction of the body's central maximum is a "thin edge" slice
EDGE_FRACTION = 0.5
#: the central-slice outline is grown by this much (mm, in-plane) when testing lateral excess against it
OUTLINE_GROW_MM = 2
#: soft-tissue ring around the reference body on its central slices (in-plane, mm)
RING_MM = (2, 6)
#: |u| bins for the normalised section profile (u = -1 .. 1 across the reference's left-right range)
U_BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)
#: sets run through the pipeline in full, and single extra cases (4 mm-slice VB3, a control for VB1's thickness)
PIPELINE_SETS = ("vb1", "vb2")
PIPELINE_CASES: dict[str, tuple[str, ...]] = {"vb3": ("vb3-27", "vb3-28")}
PRED_SETS = ("vb1", "vb2", "vb3")
FIGURE_CASES = (("vb1", "vb1-08", (10, 14, 18)), ("vb2", "vb2-12", None))

F64 = npt.NDArray[np.float64]
BoolArr = npt.NDArray[np.bool_]
IntArr = npt.NDArray[np.int64]


@dataclass
class Case:
    set_name: str
    name: str
    image_path: Path
    image: F64  # IPL, axis 2 = left-right
    ref: IntArr
    order: list[int]
    valid: BoolArr  # sagittal slices with image content (vb1-15 has a constant padding slice)
    pred: IntArr | None = None  # predicted bodies (instance ids), same grid
    pred_info: dict[str, Any] = field(default_factory=dict)


def load_cases(set_name: str) -> list[Case]:
    from neurospine.spine import data as D

    cases = []
    for ec in D.eval_cases(SHARED_DATA, set_name):
        img = np.asarray(ec.image.data, dtype=np.float64)
        valid = np.array([img[:, :, x].std() > 0 for x in range(img.shape[2])])
        folder = SHARED_DATA / ec.dataset
        cases.append(
            Case(
                set_name,
                ec.name,
                folder / f"{ec.name}_img.nii.gz",
                img,
                np.asarray(ec.labels.data, dtype=np.int64),
                list(ec.ids_superior_to_inferior),
                valid,
            )
        )
    return cases


# ----------------------------------------------------------------------------------------------------------
# 1. reference shape


def native_spacing_from_image(img: F64) -> float | None:
    """Native slice spacing along axis 2 from the kinks of the trilinear upsampling (None when not visible).

    Between native slices the upsampled image is linear in x, so its second difference vanishes except at the
    native slice positions.
    """
    d2 = np.abs(np.diff(img, 2, axis=2)).mean(axis=(0, 1))
    base = float(np.median(d2))
    peaks = [i + 1 for i in range(1, d2.size - 1) if d2[i] >= d2[i - 1] and d2[i] >= d2[i + 1] and d2[i] > 2.5 * base]
    if len(peaks) < 4:
        return None
    return float((peaks[-1] - peaks[0]) / (len(peaks) - 1))


def label_block_length(ref: IntArr) -> float | None:
    """Mean length of the runs of near-identical label slices along axis 2 (steps = local maxima of 1 - IoU)."""
    m = ref > 0
    s = []
    for x in range(m.shape[2] - 1):
        a, b = m[:, :, x], m[:, :, x + 1]
        if a.any() and b.any():
            s.append((x, 1.0 - (a & b).sum() / (a | b).sum()))
    if len(s) < 8:
        return None
    xs = np.array([p[0] for p in s])
    v = np.array([p[1] for p in s])
    # a step stands out from both neighbours (VB1 blocks carry a smaller secondary change one slice later)
    steps = [int(xs[i]) for i in range(1, v.size - 1) if v[i] > 0.005 and v[i] > 1.5 * max(v[i - 1], v[i + 1])]
    if len(steps) < 3:
        return None
    return float(np.median(np.diff(steps)))  # median: robust to a step missed where two slices agree


@dataclass
class BodyShape:
    ref_id: int
    x0: int
    x1: int
    xc: int  # slice of the largest section in the central half
    areas: IntArr  # section area per slice (mm^2), whole axis
    a_max: float
    trunc_lo: bool  # the reference reaches the first/last image slice: cut by the field of view
    trunc_hi: bool


def body_shape(case: Case, r: int) -> BodyShape:
    m = case.ref == r
    areas = m.sum(axis=(0, 1)).astype(np.int64)
    nz = np.nonzero(areas)[0]
    x0, x1 = int(nz.min()), int(nz.max())
    q = (x1 - x0) / 4.0
    central = np.arange(int(np.ceil(x0 + q)), int(np.floor(x1 - q)) + 1)
    xc = int(central[np.argmax(areas[central])])
    vx = np.nonzero(case.valid)[0]
    return BodyShape(r, x0, x1, xc, areas, float(areas[xc]), bool(x0 <= vx.min()), bool(x1 >= vx.max()))


def profile_stats(b: BodyShape) -> dict[str, Any]:
    """Normalised section profile of one body against an elliptic cylinder of the same left-right range."""
    x = np.arange(b.x0, b.x1 + 1)
    half = (b.x1 - b.x0 + 1) / 2.0
    u = (x - (b.x0 + b.x1) / 2.0) / half
    frac = b.areas[x] / b.a_max
    ell = np.sqrt(np.clip(1.0 - u**2, 0.0, None))
    bins: list[dict[str, float | None]] = []
    for lo, hi in itertools.pairwise(U_BINS):
        sel = (np.abs(u) >= lo) & (np.abs(u) < hi) if hi < 1.0 else (np.abs(u) >= lo)
        bins.append(
            {
                "ref": float(frac[sel].mean()) if sel.any() else None,
                "ellipse": float(ell[sel].mean()) if sel.any() else None,
            }
        )
    sides = {}
    for side, edge, step in (("lo", b.x0, 1), ("hi", b.x1, -1)):
        outer = b.areas[[edge + step * k for k in range(min(4, b.x1 - b.x0 + 1))]] / b.a_max
        inward = b.areas[b.x0 : b.xc + 1] if step == 1 else b.areas[b.xc : b.x1 + 1][::-1]
        reach = np.nonzero(inward >= 0.8 * b.a_max)[0]
        sides[side] = {
            "truncated": b.trunc_lo if side == "lo" else b.trunc_hi,
            "outer_slice_fraction": float(outer[0]),
            "outer_4mm_fraction": float(outer.mean()),
            "rolloff_to_80pct_mm": float(reach[0]) if reach.size else None,
        }
    u_out = np.abs(u[: min(4, u.size)])
    return {
        "width_mm": b.x1 - b.x0 + 1,
        "bins": bins,
        "sides": sides,
        "ellipse_outer_4mm_fraction": float(np.sqrt(np.clip(1.0 - u_out**2, 0, None)).mean()),
        "ellipse_rolloff_to_80pct_mm": float(half * (1.0 - 0.6)),
    }


# ----------------------------------------------------------------------------------------------------------
# 2. image evidence


def presence_profile(case: Case, b: BodyShape) -> F64:
    """beta(x): slope of the body's superior-inferior intensity profile on slice x against the central one.

    Profile = mean over the middle half (anterior-posterior) of the central-slice outline's columns, over a
    window from ``MARGIN_MM`` above to ``MARGIN_MM`` below the outline (so it includes the discs), after
    removing the slow superior-inferior trend (Gaussian, ``HIGHPASS_MM``). NaN on slices without image content.
    """
    outline = case.ref[:, :, b.xc] == b.ref_id
    rows, cols = np.nonzero(outline)
    a0, a1 = int(cols.min()), int(cols.max())
    ac = np.arange(int(a0 + 0.25 * (a1 - a0)), int(a0 + 0.75 * (a1 - a0)) + 1)
    nz = case.image.shape[0]
    zs = np.arange(max(int(rows.min()) - MARGIN_MM, SHIFT_MM), min(int(rows.max()) + MARGIN_MM, nz - 1 - SHIFT_MM) + 1)
    cols_img = case.image[:, ac, :].mean(axis=1)  # (SI, LR)
    # high-pass along superior-inferior: a slow intensity trend (coil profile) is not the body/disc pattern
    cols_img = cols_img - ndi.gaussian_filter1d(cols_img, HIGHPASS_MM, axis=0)
    lo, hi = max(b.xc - 1, 0), min(b.xc + 2, case.image.shape[2])
    central = cols_img[:, lo:hi].mean(axis=1)[zs]
    central = central - central.mean()
    var = float((central**2).sum())
    beta = np.full(case.image.shape[2], np.nan)
    for x in range(case.image.shape[2]):
        if not case.valid[x]:
            continue
        best = -np.inf
        for s in range(-SHIFT_MM, SHIFT_MM + 1):
            p = cols_img[zs + s, x]
            best = max(best, float(((p - p.mean()) * central).sum()) / var)
        beta[x] = best
    return beta


def image_edge(beta: F64, xc: int, step: int, tau: float = TAU) -> float | None:
    """Outermost position (sub-slice, linear) before beta first drops below ``tau`` going outwards from xc."""
    x = xc
    while 0 <= x + step < beta.size and not np.isnan(beta[x + step]):
        if beta[x + step] < tau:
            b0, b1 = beta[x], beta[x + step]
            return float(x + step * (b0 - tau) / (b0 - b1)) if b0 > b1 else float(x)
        x += step
    return None  # never falls below tau inside the field of view: censored


# ----------------------------------------------------------------------------------------------------------
# 3. prediction


def run_pipeline(case: Case) -> tuple[IntArr, dict[str, Any]]:
    """The pipeline's own body map (``SpineSegmentation.body_input``, the one ``benchmarks.spine`` scores) and
    its provenance, run in this process."""
    from benchmarks.spine import run_case
    from neurospine.io import load_volume

    seg, seconds = run_case(load_volume(case.image_path), threads=THREADS)
    info = {"seconds": round(seconds, 2), "models": seg.models, "naming": seg.naming.anchor}
    return np.asarray(seg.body_input, dtype=np.int64), info


def _ring(ref_body: BoolArr, any_ref: BoolArr, slices: IntArr) -> BoolArr:
    inner = np.zeros_like(ref_body)
    outer = np.zeros_like(ref_body)
    st = np.zeros((3, 3, 1), dtype=bool)
    st[:, :, 0] = ndi.generate_binary_structure(2, 1)
    sub = ref_body[:, :, slices]
    inner[:, :, slices] = ndi.binary_dilation(sub, st, iterations=RING_MM[0])
    outer[:, :, slices] = ndi.binary_dilation(sub, st, iterations=RING_MM[1])
    return outer & ~inner & ~any_ref


@dataclass
class Tissue:
    """Intensity model of one body: bone = reference body on its central half; soft = ring around it."""

    q05: float
    q95: float
    bone_like: npt.NDArray[np.bool_]  # per intensity bin: histogram of bone above that of soft tissue
    edges: F64
    sens_range: float
    fpr_range: float
    sens_like: float
    fpr_like: float

    def in_range(self, v: F64) -> BoolArr:
        return (v >= self.q05) & (v <= self.q95)

    def like(self, v: F64) -> BoolArr:
        k = np.clip(np.digitize(v, self.edges) - 1, 0, self.bone_like.size - 1)
        return self.bone_like[k]


def tissue_model(case: Case, b: BodyShape) -> Tissue:
    q = (b.x1 - b.x0) / 4.0
    central = np.arange(int(np.ceil(b.x0 + q)), int(np.floor(b.x1 - q)) + 1)
    ref_body = case.ref == b.ref_id
    mask_c = np.zeros_like(ref_body)
    mask_c[:, :, central] = ref_body[:, :, central]
    bone = case.image[mask_c]
    soft = case.image[_ring(ref_body, case.ref > 0, central)]
    q05, q95 = (float(v) for v in np.percentile(bone, [5, 95]))
    edges = np.linspace(float(case.image.min()), float(case.image.max()) + 1e-6, 33)
    hb = (np.histogram(bone, edges)[0] + 1.0) / (bone.size + 32.0)
    hs = (np.histogram(soft, edges)[0] + 1.0) / (soft.size + 32.0)
    t = Tissue(q05, q95, hb > hs, edges, 0.0, 0.0, 0.0, 0.0)
    t.sens_range = float(t.in_range(bone).mean())
    t.fpr_range = float(t.in_range(soft).mean())
    t.sens_like = float(t.like(bone).mean())
    t.fpr_like = float(t.like(soft).mean())
    return t


CATEGORIES = ("beyond", "edge", "core")


def _inplane_distance(mask: BoolArr) -> F64:
    """Per sagittal slice, the in-plane distance (mm) to ``mask`` on that slice (inf on slices without it)."""
    out = np.full(mask.shape, np.inf)
    for x in np.nonzero(mask.any(axis=(0, 1)))[0]:
        out[:, :, x] = ndi.distance_transform_edt(~mask[:, :, x])
    return out


def excess_split(case: Case, b: BodyShape, pred_body: BoolArr, tissue: Tissue, beta: F64) -> dict[str, Any]:
    """Excess (pred, not ref) and missed (ref, not pred) voxels of one matched body by lateral category.

    Per category also: excess on slices where the image shows the body (beta >= ``TAU``) and inside the
    body's central-slice outline grown by ``OUTLINE_GROW_MM`` ("image-supported"), and, on slices with a
    reference section, the excess within 1 and 2 mm (in-plane) of that section (outline disagreement).
    """
    ref_body = case.ref == b.ref_id
    # crop to the pair's bounding box (+ margin) for speed
    both = pred_body | ref_body
    lo = [max(int(np.nonzero(both.any(axis=tuple(a for a in range(3) if a != k)))[0].min()) - 8, 0) for k in range(3)]
    hi = [int(np.nonzero(both.any(axis=tuple(a for a in range(3) if a != k)))[0].max()) + 9 for k in range(3)]
    lo[2], hi[2] = 0, case.image.shape[2]  # keep the whole left-right axis (slice indices stay global)
    box = tuple(slice(a, z) for a, z in zip(lo, hi, strict=True))
    ref_c, pred_c, img_c = ref_body[box], pred_body[box], case.image[box]
    nx = case.image.shape[2]
    cat = np.full(nx, "core", dtype=object)
    cat[: b.x0] = "beyond"
    cat[b.x1 + 1 :] = "beyond"
    thin = (b.areas < EDGE_FRACTION * b.a_max) & (np.arange(nx) >= b.x0) & (np.arange(nx) <= b.x1)
    cat[thin] = "edge"
    outline = ndi.binary_dilation(ref_c[:, :, b.xc], iterations=OUTLINE_GROW_MM)
    shown = np.nan_to_num(beta, nan=-1.0) >= TAU
    supported = outline[:, :, None] & shown[None, None, :]
    dist = _inplane_distance(ref_c)
    excess = pred_c & ~ref_c
    missed = ref_c & ~pred_c
    out: dict[str, Any] = {
        "tp": int((pred_c & ref_c).sum()),
        "pred": int(pred_body.sum()),
        "ref": int(ref_body.sum()),
        "tissue": {
            "bone_5_95": [round(tissue.q05, 1), round(tissue.q95, 1)],
            "ring_in_range": round(tissue.fpr_range, 3),
            "bone_like_sensitivity": round(tissue.sens_like, 3),
            "ring_bone_like": round(tissue.fpr_like, 3),
        },
    }
    for c in CATEGORIES:
        sl = np.nonzero(cat == c)[0]
        e = excess[:, :, sl]
        vals = img_c[:, :, sl][e]
        n = int(vals.size)
        n_range = int(tissue.in_range(vals).sum())
        n_like = int(tissue.like(vals).sum())
        d = dist[:, :, sl][e]
        out[c] = {
            "excess": n,
            "missed": int(missed[:, :, sl].sum()),
            "in_range": n_range,
            "bone_like": n_like,
            # expected bone voxels by unmixing (bone fraction f: observed = f * sens + (1 - f) * fpr)
            "bone_est_range": _unmix(n, n_range, tissue.sens_range, tissue.fpr_range),
            "bone_est_like": _unmix(n, n_like, tissue.sens_like, tissue.fpr_like),
            "image_supported": int(supported[:, :, sl][e].sum()),
            "within_1mm": int((d <= 1.0).sum()),
            "within_2mm": int((d <= 2.0).sum()),
        }
    return out


def _unmix(n: int, k: int, sens: float, fpr: float) -> float:
    if n == 0 or sens - fpr < 0.05:
        return 0.0
    return float(n * (k / n - fpr) / (sens - fpr))


# ----------------------------------------------------------------------------------------------------------
# per case


def analyse_case(case: Case) -> dict[str, Any]:
    from benchmarks.spine import extent_scores
    from neurospine.metrics import match_instances

    ids = [int(v) for v in np.unique(case.ref) if v]
    shapes = {r: body_shape(case, r) for r in ids}
    pairs: dict[int, int] = {}
    if case.pred is not None:
        m = match_instances(case.pred, case.ref, method="hungarian", threshold=0.1)
        pairs = {p.ref_id: p.pred_id for p in m.pairs}
    lowest = case.order[-1] if case.order else None
    bodies = []
    for r in ids:
        b = shapes[r]
        beta = presence_profile(case, b)
        row: dict[str, Any] = {
            "ref_id": r,
            "lowest": r == lowest,
            "range": [b.x0, b.x1],
            "central_slice": b.xc,
            # per-slice series as compact strings (mm^2 over the reference's range; beta over the whole axis)
            "area_profile": " ".join(str(int(a)) for a in b.areas[b.x0 : b.x1 + 1]),
            "beta": " ".join("nan" if np.isnan(v) else f"{v:.2f}" for v in beta),
            "shape": profile_stats(b),
        }
        pred_body = None
        if r in pairs and case.pred is not None:
            pred_body = case.pred == pairs[r]
            ext = extent_scores(pred_body, case.ref == r, 1.0)
            lat = np.nonzero(pred_body.any(axis=(0, 1)))[0]
            row["pred_range"] = [int(lat.min()), int(lat.max())]
            row["pred_level"] = _level_name(pairs[r])
            row["extent"] = {k: round(v, 4) for k, v in ext.items()}
            row["excess"] = excess_split(case, b, pred_body, tissue_model(case, b), beta)
        sides = {}
        for side, step in (("lo", -1), ("hi", 1)):
            edge_ref = b.x0 if step < 0 else b.x1
            truncated = b.trunc_lo if step < 0 else b.trunc_hi
            e_img = image_edge(beta, b.xc, step)
            e_img25 = image_edge(beta, b.xc, step, tau=0.25)
            beyond = edge_ref + 4 * step
            rec: dict[str, Any] = {
                "truncated": truncated,
                "ref_edge": edge_ref,
                "beta_at_ref_edge": _r(beta[edge_ref]),
                "beta_4mm_beyond_ref_edge": _r(beta[beyond]) if 0 <= beyond < beta.size else None,
                "img_edge": _r(e_img),
                "img_beyond_ref_mm": _r((e_img - edge_ref) * step) if e_img is not None else None,
                "img25_beyond_ref_mm": _r((e_img25 - edge_ref) * step) if e_img25 is not None else None,
            }
            if pred_body is not None:
                pe = row["pred_range"][0] if step < 0 else row["pred_range"][1]
                rec["pred_beyond_ref_mm"] = (pe - edge_ref) * step
                rec["pred_beyond_img_mm"] = _r((pe - e_img) * step) if e_img is not None else None
            sides[side] = rec
        row["sides"] = sides
        bodies.append(row)
    return {
        "case": case.name,
        "set": case.set_name,
        "shape": list(case.image.shape),
        "valid_slices": int(case.valid.sum()),
        "native_spacing_from_image_mm": _r(native_spacing_from_image(case.image[:, :, case.valid])),
        "label_block_mm": _r(label_block_length(case.ref)),
        "pipeline": case.pred_info,
        "bodies": bodies,
    }


def _level_name(level_id: int) -> str:
    from neurospine.labels import vertebra_name

    try:
        return str(vertebra_name(int(level_id)))
    except KeyError:
        return "unnamed"


def widths_by_level(per_set: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Mean left-right width (mm) of matched bodies with both sides inside the field of view, by our level name."""
    out: dict[str, dict[str, Any]] = {}
    for k, cases in per_set.items():
        for c in cases:
            for b in c["bodies"]:
                if "pred_level" not in b or any(s["truncated"] for s in b["sides"].values()):
                    continue
                d = out.setdefault(b["pred_level"], {}).setdefault(k, {"ref": [], "pred": []})
                d["ref"].append(b["range"][1] - b["range"][0] + 1)
                d["pred"].append(b["pred_range"][1] - b["pred_range"][0] + 1)
    return {
        lvl: {k: {"n": len(v["ref"]), "ref": _mean(v["ref"]), "pred": _mean(v["pred"])} for k, v in d.items()}
        for lvl, d in out.items()
    }


def _r(v: float | np.floating[Any] | None, nd: int = 3) -> float | None:
    if v is None or not np.isfinite(v):
        return None
    return round(float(v), nd)


# ----------------------------------------------------------------------------------------------------------
# summaries


def _mean(v: list[float]) -> float | None:
    return round(float(np.mean(v)), 3) if v else None


def summarise_shape(cases: list[dict[str, Any]]) -> dict[str, Any]:
    bodies = [b for c in cases for b in c["bodies"]]
    free = [s for b in bodies for s in b["shape"]["sides"].values() if not s["truncated"]]
    bins = []
    for i in range(len(U_BINS) - 1):
        bins.append(
            {
                "u": f"{U_BINS[i]}-{U_BINS[i + 1]}",
                "ref": _mean(
                    [b["shape"]["bins"][i]["ref"] for b in bodies if b["shape"]["bins"][i]["ref"] is not None]
                ),
                "ellipse": _mean(
                    [b["shape"]["bins"][i]["ellipse"] for b in bodies if b["shape"]["bins"][i]["ellipse"] is not None]
                ),
            }
        )
    return {
        "cases": len(cases),
        "bodies": len(bodies),
        "sides_not_truncated": len(free),
        "sides_truncated_by_fov": sum(1 for b in bodies for s in b["shape"]["sides"].values() if s["truncated"]),
        "width_mm_mean": _mean([b["shape"]["width_mm"] for b in bodies]),
        "native_spacing_from_image_mm": [c["native_spacing_from_image_mm"] for c in cases],
        "label_block_mm": [c["label_block_mm"] for c in cases],
        "outer_slice_fraction": _mean([s["outer_slice_fraction"] for s in free]),
        "outer_4mm_fraction": _mean([s["outer_4mm_fraction"] for s in free]),
        "ellipse_outer_4mm_fraction": _mean([b["shape"]["ellipse_outer_4mm_fraction"] for b in bodies]),
        "rolloff_to_80pct_mm": _mean([s["rolloff_to_80pct_mm"] for s in free if s["rolloff_to_80pct_mm"] is not None]),
        "ellipse_rolloff_to_80pct_mm": _mean([b["shape"]["ellipse_rolloff_to_80pct_mm"] for b in bodies]),
        "profile_bins": bins,
    }


def summarise_image(cases: list[dict[str, Any]]) -> dict[str, Any]:
    sides = [s for c in cases for b in c["bodies"] for s in b["sides"].values() if not s["truncated"]]
    got = [s for s in sides if s["img_beyond_ref_mm"] is not None]
    got25 = [s for s in sides if s["img25_beyond_ref_mm"] is not None]
    return {
        "sides": len(sides),
        "sides_with_image_edge": len(got),
        "beta_at_ref_edge": _mean([s["beta_at_ref_edge"] for s in sides if s["beta_at_ref_edge"] is not None]),
        "beta_4mm_beyond_ref_edge": _mean(
            [s["beta_4mm_beyond_ref_edge"] for s in sides if s["beta_4mm_beyond_ref_edge"] is not None]
        ),
        "img_beyond_ref_mm": _mean([s["img_beyond_ref_mm"] for s in got]),
        "img_beyond_ref_mm_median": _r(float(np.median([s["img_beyond_ref_mm"] for s in got]))) if got else None,
        "img25_beyond_ref_mm": _mean([s["img25_beyond_ref_mm"] for s in got25]),
        "share_img_edge_beyond_ref_2mm": _r(float(np.mean([s["img_beyond_ref_mm"] > 2 for s in got]))) if got else None,
    }


def summarise_pred(cases: list[dict[str, Any]], calib_mm: dict[str, float]) -> dict[str, Any]:
    """Excess by category, intensity shares, Dice accounting and the per-side edge decomposition.

    ``calib_mm[name]``: how far (mm) the reference edges of set ``name`` lie beyond the image edge on average;
    used to turn an image edge into an estimated anatomical edge.
    """
    pairs = [b for c in cases for b in c["bodies"] if "excess" in b]
    keys = (
        "excess",
        "missed",
        "in_range",
        "bone_like",
        "bone_est_range",
        "bone_est_like",
        "image_supported",
        "within_1mm",
        "within_2mm",
    )
    tot = {c: {k: float(sum(p["excess"][c][k] for p in pairs)) for k in keys} for c in CATEGORIES}
    all_excess = sum(tot[c]["excess"] for c in CATEGORIES)
    all_missed = sum(tot[c]["missed"] for c in CATEGORIES)
    ref_vox = sum(p["excess"]["ref"] for p in pairs)
    by_cat = {}
    for c in CATEGORIES:
        n = tot[c]["excess"]
        by_cat[c] = {
            "excess_voxels": int(n),
            "excess_over_ref_volume": _r(n / ref_vox) if ref_vox else None,
            "share_of_excess": _r(n / all_excess) if all_excess else None,
            "missed_voxels": int(tot[c]["missed"]),
            "share_of_missed": _r(tot[c]["missed"] / all_missed) if all_missed else None,
            "in_bone_5_95": _r(tot[c]["in_range"] / n) if n else None,
            "bone_like": _r(tot[c]["bone_like"] / n) if n else None,
            "bone_share_est_range": _r(min(1.0, max(0.0, tot[c]["bone_est_range"] / n))) if n else None,
            "bone_share_est_like": _r(min(1.0, max(0.0, tot[c]["bone_est_like"] / n))) if n else None,
            "image_supported": _r(tot[c]["image_supported"] / n) if n else None,
            "within_1mm_of_ref_section": _r(tot[c]["within_1mm"] / n) if n and c != "beyond" else None,
            "within_2mm_of_ref_section": _r(tot[c]["within_2mm"] / n) if n and c != "beyond" else None,
        }
    calib = {
        "ring_in_range": _mean([p["excess"]["tissue"]["ring_in_range"] for p in pairs]),
        "bone_like_sensitivity": _mean([p["excess"]["tissue"]["bone_like_sensitivity"] for p in pairs]),
        "ring_bone_like": _mean([p["excess"]["tissue"]["ring_bone_like"] for p in pairs]),
    }
    # Dice accounting per matched pair (mean over pairs)
    bone_b = by_cat["beyond"]["bone_share_est_like"] or 0.0
    bone_e = by_cat["edge"]["bone_share_est_like"] or 0.0
    d0, d1, d2, d3, d4 = [], [], [], [], []
    for p in pairs:
        e = p["excess"]
        tp, np_, nr = e["tp"], e["pred"], e["ref"]
        eb, ee = e["beyond"]["excess"], e["edge"]["excess"]
        sup = e["beyond"]["image_supported"] + e["edge"]["image_supported"]
        d0.append(2 * tp / (np_ + nr))
        # "counted as reference": the Dice had the reference included those voxels (they become true positives)
        d1.append(2 * (tp + eb) / (np_ + nr + eb))  # excess beyond the reference's range
        d2.append(2 * (tp + eb + ee) / (np_ + nr + eb + ee))  # ... and on its thin edge slices
        d3.append(2 * (tp + sup) / (np_ + nr + sup))  # image-supported lateral excess counted as reference
        bone = bone_b * eb + bone_e * ee  # the intensity-estimated bone in the lateral excess counted as reference
        d4.append(2 * (tp + bone) / (np_ + nr + bone))
    edges = [s for b in pairs for s in b["sides"].values() if not s["truncated"]]
    dec = [s for s in edges if s.get("img_beyond_ref_mm") is not None]
    out: dict[str, Any] = {
        "matched_bodies": len(pairs),
        "width_excess_mm": _mean([p["extent"]["width_excess_mm"] for p in pairs]),
        "volume_ratio": _mean([p["extent"]["volume_ratio"] for p in pairs]),
        "excess_over_ref_volume": _r(all_excess / ref_vox) if ref_vox else None,
        "missed_over_ref_volume": _r(all_missed / ref_vox) if ref_vox else None,
        "by_category": by_cat,
        "tissue_calibration": calib,
        "dice_matched": _mean(d0),
        "dice_beyond_counted": _mean(d1),
        "dice_lateral_counted": _mean(d2),
        "dice_image_supported_lateral_counted": _mean(d3),
        "dice_lateral_bone_share_counted": _mean(d4),
        "mean_per_body_dice_all_refs": _mean(
            [
                2 * b["excess"]["tp"] / (b["excess"]["pred"] + b["excess"]["ref"]) if "excess" in b else 0.0
                for c in cases
                if c["pipeline"]
                for b in c["bodies"]
            ]
        ),
        "sides_not_truncated": len(edges),
        "pred_beyond_ref_mm_per_side": _mean([s["pred_beyond_ref_mm"] for s in edges]),
        "sides_with_image_edge": len(dec),
        "on_those_sides": {
            "pred_beyond_ref_mm": _mean([s["pred_beyond_ref_mm"] for s in dec]),
            "img_beyond_ref_mm": _mean([s["img_beyond_ref_mm"] for s in dec]),
            "pred_beyond_img_mm": _mean([s["pred_beyond_img_mm"] for s in dec]),
        },
    }
    for name, c_mm in calib_mm.items():
        # reference deficit = calibrated image edge beyond the reference edge; model excess = the rest
        deficit = [s["img_beyond_ref_mm"] + c_mm for s in dec]
        model = [s["pred_beyond_ref_mm"] - d for s, d in zip(dec, deficit, strict=True)]
        out["on_those_sides"][f"ref_deficit_mm_calibrated_on_{name}"] = _mean(deficit)
        out["on_those_sides"][f"model_excess_mm_calibrated_on_{name}"] = _mean(model)
    return out


def case_rows(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-case summary: image evidence at the free reference edges and our width excess."""
    rows = []
    for c in cases:
        sides = [s for b in c["bodies"] for s in b["sides"].values() if not s["truncated"]]
        ext = [b["extent"]["width_excess_mm"] for b in c["bodies"] if "extent" in b]
        rows.append(
            {
                "case": c["case"],
                "free_sides": len(sides),
                "no_image_edge": sum(1 for s in sides if s["img_beyond_ref_mm"] is None),
                "beta_at_ref_edge": _mean([s["beta_at_ref_edge"] for s in sides if s["beta_at_ref_edge"] is not None]),
                "beta_4mm_beyond": _mean(
                    [s["beta_4mm_beyond_ref_edge"] for s in sides if s["beta_4mm_beyond_ref_edge"] is not None]
                ),
                "img_beyond_ref_mm": _mean(
                    [s["img_beyond_ref_mm"] for s in sides if s["img_beyond_ref_mm"] is not None]
                ),
                "pred_beyond_ref_mm": _mean([s["pred_beyond_ref_mm"] for s in sides if "pred_beyond_ref_mm" in s]),
                "pred_beyond_img_mm": _mean(
                    [s["pred_beyond_img_mm"] for s in sides if s.get("pred_beyond_img_mm") is not None]
                ),
                "width_excess_mm": _mean(ext),
            }
        )
    return rows


# ----------------------------------------------------------------------------------------------------------
# figure


def _outline(mask: BoolArr) -> BoolArr:
    return mask & ~ndi.binary_erosion(mask)


def figure(cases: dict[str, Case], results: dict[str, dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    from PIL import Image, ImageDraw

    tiles: list[tuple[Any, str]] = []
    shown = []
    for _set_name, name, slices in FIGURE_CASES:
        case = cases.get(name)
        if case is None or case.pred is None:
            continue
        ref, pred = case.ref > 0, case.pred > 0
        lat = np.nonzero(ref.any(axis=(0, 1)))[0]
        # VB2: same positions relative to the reference's lateral edge as vb1-08 (edge 8 -> 10, 14, 18)
        lateral = slices if slices is not None else tuple(int(lat.min()) + d for d in (2, 6, 10))
        centre = round(float(np.mean([b["central_slice"] for b in results[name]["bodies"]])))
        shown_slices = (*lateral, centre)
        both = (ref | pred).any(axis=2)
        rr, cc = np.nonzero(both)
        r0, r1 = max(int(rr.min()) - 12, 0), min(int(rr.max()) + 12, ref.shape[0])
        c0, c1 = max(int(cc.min()) - 12, 0), min(int(cc.max()) + 12, ref.shape[1])
        for x in shown_slices:
            im = case.image[r0:r1, c0:c1, x]
            lo, hi = np.percentile(im, [1, 99.5])
            g = (np.clip((im - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
            rgb = np.stack([g, g, g], axis=-1)
            ro, po = _outline(ref[r0:r1, c0:c1, x]), _outline(pred[r0:r1, c0:c1, x])
            rgb[po] = (255, 40, 40)
            rgb[ro] = (40, 255, 40)
            rgb[ro & po] = (255, 255, 0)
            tile = Image.fromarray(rgb).resize((2 * (c1 - c0), 2 * (r1 - r0)), Image.Resampling.NEAREST)
            tiles.append((tile, f"{name} x={x}"))
        shown.append({"case": name, "slices": list(shown_slices), "crop_rows": [r0, r1], "crop_cols": [c0, c1]})
    if not tiles:
        return shown
    per_row = 4
    tw = max(t.width for t, _ in tiles)
    th = max(t.height for t, _ in tiles)
    nrows = (len(tiles) + per_row - 1) // per_row
    sheet = Image.new("RGB", (per_row * (tw + 6), nrows * (th + 22) + 24), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 4), "green = reference, red = prediction, yellow = both; axis 2 (left-right) slice x", fill="white")
    for i, (tile, label) in enumerate(tiles):
        x, y = (i % per_row) * (tw + 6), 24 + (i // per_row) * (th + 22)
        sheet.paste(tile, (x, y + 18))
        draw.text((x + 4, y + 2), label, fill="white")
    sheet.save(path)
    return shown


# ----------------------------------------------------------------------------------------------------------
# markdown


DICE_VARIANTS = (
    ("dice_matched", "as scored"),
    ("dice_beyond_counted", "excess beyond the reference's range counted as reference"),
    ("dice_lateral_bone_share_counted", "intensity-estimated bone share of the lateral excess counted as reference"),
    ("dice_image_supported_lateral_counted", "image-supported lateral excess counted as reference"),
    ("dice_lateral_counted", "all lateral (beyond + edge) excess counted as reference"),
)


def gap_explained(pred: dict[str, Any], a: str = "vb1", b: str = "vb2") -> dict[str, float | None]:
    """Share of the matched-body Dice gap between set ``b`` and set ``a`` that each correction removes."""
    gap0 = pred[b]["dice_matched"] - pred[a]["dice_matched"]
    out: dict[str, float | None] = {}
    for key, _ in DICE_VARIANTS[1:]:
        gap = pred[b][key] - pred[a][key]
        out[key] = _r(1.0 - gap / gap0) if gap0 > 0 else None
    return out


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def markdown(p: dict[str, Any]) -> str:
    s, im, pr = p["shape"], p["image"], p["prediction"]
    sets = [k for k in ("vb1", "vb2", "vb3") if k in s]
    psets = [k for k in PRED_SETS if k in pr]
    o1 = pr["vb1"]["on_those_sides"]
    lines = [
        "# Are the VB1 body references laterally incomplete?",
        "",
        "Sets: VB1 all 6 cases (other sites/contrasts, pathology), VB2 held-out (4), VB3 held-out (5; the VB3",
        "labels of the other cases train the model). Stored grids are 1 mm isotropic IPL; axis 2 is left-right.",
        f"Prediction: the spine pipeline at {THREADS} thread (model {p.get('model')}) on VB1, VB2 and two VB3 cases",
        f"({', '.join(PIPELINE_CASES.get('vb3', ()))}: 4 mm slices like VB1); bodies = the pipeline's own body map",
        "(`SpineSegmentation.body_input`, the map `benchmarks/spine.py` scores); Hungarian matching on Dice (> 0.1).",
        "A body side whose reference touches the first or last image slice is cut by the field of view and is left",
        "out of every per-side number.",
        "",
        "## Summary",
        "",
        f"- Reference slabs: VB1 labels step every {s['vb1']['label_block_mm']} mm, the native slice spacing seen in "
        f"the image ({s['vb1']['native_spacing_from_image_mm']}); VB3 steps every 4 mm too, VB2 every 2 mm. The",
        "  block structure is not specific to VB1.",
        f"- At the VB1 reference's lateral edge the image still shows {im['vb1']['beta_at_ref_edge']} of the central "
        f"body/disc pattern (4 mm further out {im['vb1']['beta_4mm_beyond_ref_edge']}); VB2 references end at "
        f"{im['vb2']['beta_at_ref_edge']} ({im['vb2']['beta_4mm_beyond_ref_edge']}), VB3 at "
        f"{im['vb3']['beta_at_ref_edge']} ({im['vb3']['beta_4mm_beyond_ref_edge']}).",
        f"  VB2 and VB3 annotators draw {p['calibration_mm'].get('vb2')} and {p['calibration_mm'].get('vb3')} mm "
        "past the point where beta falls to 0.5 (the image edge); the VB1 image edge lies "
        f"{im['vb1']['img_beyond_ref_mm']} mm outside the VB1 reference edge (mean; median "
        f"{im['vb1']['img_beyond_ref_mm_median']}).",
        f"- Our prediction ends {o1['pred_beyond_img_mm']} mm past that image edge on VB1, "
        f"{pr['vb2']['on_those_sides']['pred_beyond_img_mm']} on VB2"
        + (f", {pr['vb3']['on_those_sides']['pred_beyond_img_mm']} on VB3" if "vb3" in pr else "")
        + " (free sides of matched bodies).",
        f"- Lateral excess on VB1 (beyond + thin edge slices) is {_share(pr['vb1'], ('beyond', 'edge'))} of all "
        f"excess; its intensity-estimated bone share is {pr['vb1']['by_category']['beyond']['bone_share_est_like']} "
        f"(beyond) / {pr['vb1']['by_category']['edge']['bone_share_est_like']} (edge)"
        + (
            f", against {pr['vb3']['by_category']['beyond']['bone_share_est_like']} / "
            f"{pr['vb3']['by_category']['edge']['bone_share_est_like']} on VB3"
            if "vb3" in pr
            else ""
        )
        + ".",
        "- Share of the VB1-VB2 matched-body Dice gap "
        f"({pr['vb2']['dice_matched']} - {pr['vb1']['dice_matched']}) removed by each correction: "
        + "; ".join(f"{label}: {_fmt(p['gap_explained'].get(key))}" for key, label in DICE_VARIANTS[1:])
        + ".",
        "",
        "## 1. Reference section area along left-right",
        "",
        "Native spacing = kinks of the image's linear interpolation along axis 2; label block = median distance",
        "between steps of the label map. Outer fractions = section area of the outermost reference slice (and of",
        "the outermost 4 mm) over the body's largest central section, on sides not cut by the field of view;",
        "roll-off = mm from the edge to the first slice with 80 % of that section. Ellipse = an elliptic",
        "cylinder of the same left-right range (section ~ sqrt(1 - u^2)).",
        "",
        "| set | cases | bodies | sides free / cut by FOV | mean width mm | native spacing mm (image) "
        "| label block mm | outer slice | outer 4 mm (ellipse) | roll-off mm (ellipse) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in sets:
        v = s[k]
        lines.append(
            f"| {k.upper()} | {v['cases']} | {v['bodies']} | {v['sides_not_truncated']} / "
            f"{v['sides_truncated_by_fov']} | {v['width_mm_mean']} | {v['native_spacing_from_image_mm']} | "
            f"{v['label_block_mm']} | {v['outer_slice_fraction']} | {v['outer_4mm_fraction']} "
            f"({v['ellipse_outer_4mm_fraction']}) | {v['rolloff_to_80pct_mm']} ({v['ellipse_rolloff_to_80pct_mm']}) |"
        )
    lines += ["", "Mean normalised section (area / central maximum) by |u| (0 = centre, 1 = reference edge):", ""]
    lines.append("| abs(u) | " + " | ".join(f"{k.upper()} ref" for k in sets) + " | ellipse |")
    lines.append("|---" * (len(sets) + 2) + "|")
    for i, b in enumerate(s[sets[0]]["profile_bins"]):
        lines.append(
            f"| {b['u']} | " + " | ".join(str(s[k]["profile_bins"][i]["ref"]) for k in sets) + f" | {b['ellipse']} |"
        )
    lines += [
        "",
        "## 2. Image evidence at the reference's lateral edges (no model involved)",
        "",
        "beta(x) = slope of the superior-inferior intensity profile (middle half of the central outline's",
        "anterior-posterior columns, body plus the discs above and below, slow trend removed) on slice x against",
        f"the central slices; 1 = the body/disc pattern at full strength, 0 = absent. Image edge = where beta falls "
        f"below {TAU}",
        "going outwards (sides where it never does inside the field of view have no image edge).",
        "",
        "| set | free sides | with image edge | beta at ref edge | beta 4 mm beyond ref edge | image edge beyond ref "
        "edge mm (mean / median) | same at beta 0.25 | sides with image edge > 2 mm beyond |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in sets:
        v = im[k]
        lines.append(
            f"| {k.upper()} | {v['sides']} | {v['sides_with_image_edge']} | {v['beta_at_ref_edge']} | "
            f"{v['beta_4mm_beyond_ref_edge']} | {v['img_beyond_ref_mm']} / {v['img_beyond_ref_mm_median']} | "
            f"{v['img25_beyond_ref_mm']} | {v['share_img_edge_beyond_ref_2mm']} |"
        )
    lines += [
        "",
        "Per case (free sides): beta at / 4 mm beyond the reference edge, image edge beyond the reference edge, our",
        "predicted edge beyond the reference and beyond the image edge (mm), mean width excess of matched bodies.",
        "",
        "| case | free sides (no image edge) | beta at ref edge | beta +4 mm | image edge - ref mm | pred - ref mm | "
        "pred - image edge mm | width excess mm |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k in sets:
        for r in p["per_case"][k]:
            lines.append(
                f"| {r['case']} | {r['free_sides']} ({r['no_image_edge']}) | {_fmt(r['beta_at_ref_edge'])} | "
                f"{_fmt(r['beta_4mm_beyond'])} | {_fmt(r['img_beyond_ref_mm'])} | {_fmt(r['pred_beyond_ref_mm'])} | "
                f"{_fmt(r['pred_beyond_img_mm'])} | {_fmt(r['width_excess_mm'])} |"
            )
    lines += [
        "",
        "## 3. Where our excess voxels lie and what intensity they have",
        "",
        "Excess = predicted, not reference (matched body). beyond = slices outside the reference's left-right",
        f"range; edge = reference slices with section < {EDGE_FRACTION} of the central maximum; core = the rest.",
        "Bone range = 5-95 % of the reference body's intensities on its central half; bone-like = intensity",
        f"histogram of that bone above that of a soft-tissue ring ({RING_MM[0]}-{RING_MM[1]} mm around the body on",
        "the same slices: discs, muscle, canal). Bone share = unmixed (observed = f x sensitivity + (1 - f) x",
        f"ring rate). Image-supported = on a slice with beta >= {TAU} and inside the body's central-slice outline",
        f"grown by {OUTLINE_GROW_MM} mm. Within 1/2 mm = in-plane distance to the reference section of that slice.",
        "",
        "| set | category | excess vox | / ref volume | share of excess | missed vox | in bone 5-95 % | bone-like | "
        "bone share (range / like) | image-supported | within 1 / 2 mm |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in psets:
        for c in CATEGORIES:
            v = pr[k]["by_category"][c]
            lines.append(
                f"| {k.upper()} | {c} | {v['excess_voxels']} | {v['excess_over_ref_volume']} | {v['share_of_excess']} "
                f"| {v['missed_voxels']} | {v['in_bone_5_95']} | {v['bone_like']} | {v['bone_share_est_range']} / "
                f"{v['bone_share_est_like']} | {v['image_supported']} | {_fmt(v['within_1mm_of_ref_section'])} / "
                f"{_fmt(v['within_2mm_of_ref_section'])} |"
            )
    lines += ["", "Intensity model calibration (mean over bodies): ring voxels in the bone 5-95 % range; bone-like"]
    lines += ["rate of the reference bone (sensitivity) and of the ring.", ""]
    for k in psets:
        lines.append(f"- {k.upper()}: {pr[k]['tissue_calibration']}")
    lines += [
        "",
        "Dice accounting (mean over matched bodies; the last column of the first table counts unmatched reference",
        "bodies, mostly the lowest VB1 body that we label sacrum, as 0):",
        "",
        "| set | matched | width excess mm | volume ratio | excess / ref | missed / ref | "
        + " | ".join(label for _, label in DICE_VARIANTS)
        + " | per-body Dice, all refs |",
        "|---" * (7 + len(DICE_VARIANTS)) + "|",
    ]
    for k in psets:
        v = pr[k]
        lines.append(
            f"| {k.upper()} | {v['matched_bodies']} | {v['width_excess_mm']} | {v['volume_ratio']} | "
            f"{v['excess_over_ref_volume']} | {v['missed_over_ref_volume']} | "
            + " | ".join(str(v[key]) for key, _ in DICE_VARIANTS)
            + f" | {v['mean_per_body_dice_all_refs']} |"
        )
    lines += [
        "",
        "Edge decomposition per free body side with an image edge. Calibrated true edge = image edge + the mean",
        f"distance the VB2 ({p['calibration_mm'].get('vb2')} mm) or VB3 ({p['calibration_mm'].get('vb3')} mm) "
        "annotators draw past it; reference deficit = calibrated edge - reference edge; model excess = predicted",
        "edge - calibrated edge. This assumes the image edge sits at the same place relative to the anatomy in",
        "every set (contrast and slice thickness make that uncertain; VB3 has VB1's 4 mm slices).",
        "",
        "| set | sides | pred - ref mm | image edge - ref mm | pred - image edge mm | ref deficit / model excess "
        "(VB2-calibrated) mm | ref deficit / model excess (VB3-calibrated) mm |",
        "|---|---|---|---|---|---|---|",
    ]
    for k in psets:
        v, o = pr[k], pr[k]["on_those_sides"]
        lines.append(
            f"| {k.upper()} | {v['sides_with_image_edge']} | {o['pred_beyond_ref_mm']} | {o['img_beyond_ref_mm']} "
            f"| {o['pred_beyond_img_mm']} | {_fmt(o.get('ref_deficit_mm_calibrated_on_vb2'))} / "
            f"{_fmt(o.get('model_excess_mm_calibrated_on_vb2'))} | {_fmt(o.get('ref_deficit_mm_calibrated_on_vb3'))} / "
            f"{_fmt(o.get('model_excess_mm_calibrated_on_vb3'))} |"
        )
    lines += [
        "",
        "Left-right width (mm) of matched bodies with both sides inside the field of view, by our level name",
        "(different subjects per set; VB1 includes scoliosis, whose coronal tilt widens a body's left-right extent):",
        "",
        "| level | " + " | ".join(f"{k.upper()} n / ref / pred" for k in psets) + " |",
        "|---" * (len(psets) + 1) + "|",
    ]
    order = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 7)]
    for lvl in sorted(p["widths_by_level"], key=lambda n: order.index(n) if n in order else 99):
        d = p["widths_by_level"][lvl]
        cells = [f"{d[k]['n']} / {d[k]['ref']} / {d[k]['pred']}" if k in d else "-" for k in psets]
        lines.append(f"| {lvl} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Figure `spine_reference_check.png`: "
        + "; ".join(f"{f['case']} slices {f['slices']}" for f in p.get("figure", []))
        + " (the last slice of each row is central; green reference, red prediction, yellow both).",
        "",
    ]
    return "\n".join(lines) + "\n"


def _share(pred: dict[str, Any], cats: tuple[str, ...]) -> float | None:
    return _r(sum(pred["by_category"][c]["share_of_excess"] or 0.0 for c in cats))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    per_set: dict[str, list[dict[str, Any]]] = {}
    by_name: dict[str, Case] = {}
    model = None
    for set_name in ("vb1", "vb2", "vb3"):
        per_set[set_name] = []
        for case in load_cases(set_name):
            if case.name in PIPELINE_CASES.get(set_name, ()) or set_name in PIPELINE_SETS:
                case.pred, case.pred_info = run_pipeline(case)
                model = case.pred_info.get("models")
            res = analyse_case(case)
            per_set[set_name].append(res)
            by_name[case.name] = case
            logging.getLogger(__name__).info(
                "%s %s %s", case.name, res["native_spacing_from_image_mm"], res["label_block_mm"]
            )
        # keep only what the figure needs in memory
        for name in [n for n in by_name if n not in {f[1] for f in FIGURE_CASES}]:
            del by_name[name]
    shape = {k: summarise_shape(v) for k, v in per_set.items()}
    image = {k: summarise_image(v) for k, v in per_set.items()}
    calib: dict[str, float] = {}
    for k in ("vb2", "vb3"):
        v = [
            s["img_beyond_ref_mm"]
            for c in per_set[k]
            for b in c["bodies"]
            for s in b["sides"].values()
            if not s["truncated"] and s["img_beyond_ref_mm"] is not None
        ]
        if v:
            calib[k] = round(-float(np.mean(v)), 3)
    pred = {k: summarise_pred(per_set[k], calib) for k in PRED_SETS}
    fig_path = RESULTS_DIR / f"{NAME}.png"
    shown = figure(by_name, {c["case"]: c for v in per_set.values() for c in v}, fig_path)
    payload = {
        "model": model,
        "calibration_mm": calib,
        "shape": shape,
        "image": image,
        "per_case": {k: case_rows(v) for k, v in per_set.items()},
        "widths_by_level": widths_by_level(per_set),
        "prediction": pred,
        "gap_explained": gap_explained(pred),
        "figure": shown,
    }
    write_results(NAME, payload, threads=THREADS, markdown=markdown(payload))
    logging.getLogger(__name__).info(json.dumps({"shape": shape, "image": image, "prediction": pred}, default=str))


if __name__ == "__main__":
    main()
