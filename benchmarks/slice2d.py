"""Benchmark of ``neurospine slice2d`` on held-out real data (never seen in training).

Run from the repository root: ``python -m benchmarks.slice2d [--threads 2] [--update-card]``;
``--modality-only`` runs only the modality-detection table (seconds, no model).

Sets (subject-wise held out; see ``neurospine.slice2d.data``):
- MR, bodies + discs: ``vesal_mri2d`` 15-19 (2D slices); ``tptbox_samples`` MRI (mid-sagittal, SPINEPS
  corpus 49/50 + endplate 62 = body, 100 = disc).
- MR, bodies only: mid-sagittal slice of ``fcs_vb3`` 27-31, ``fcs_vb2`` 12-14 and ``fcs_vb1`` (all; other
  sites, pathology).  MR discs only: ``fcs_ivd`` (3 cases).
- CT: ``tptbox_samples`` CT (same label rule), ``fewshot_ct_sag`` 36 (bodies split from the whole-vertebra
  mask at the midline, only if separable).
- X-ray: ``spineproject_xray`` lateral views (vertebra masks; 2 images) + overlay PNGs.

Dice is computed on the plane's own grid within the rows spanned by the reference labels (the sets
leave vertebrae above/below unlabelled, e.g. T12 and S1 in VB3); full-image Dice is reported too.
Over- vs under-segmentation per class on the same rows: pixel precision, recall and the mean outline
offset (predicted minus reference pixels over the reference outline length, in pixels).
Images whose stored spacing is a 1 mm placeholder (vesal, fewshot) are run with unknown spacing, as a PNG
would be. X-ray images go through the CLI's own path: ``load_input`` (whose stored 2 mm spacing on ~1400
pixels is implausible, so the pixel size is treated as unknown exactly as for a PNG) and the CLI's
modality detection (``api.input_modality``), not a benchmark-only override.
Modality detection (``slice2d_modality.{json,md}``): the 2D rule of ``neurospine.slice2d.modality`` on
every vesal slice, the four radiographs, the middle sagittal slice of every fcs_vb*/fcs_ivd volume and
the tptbox/fewshot volumes (each slice treated as a 2D image without metadata).
Segmentation applies the card's outline calibration (``inputs.logit_bias`` per modality). Radiomics:
predicted body/disc instances matched to reference instances (IoU >= 0.5);
Pearson r and Bland-Altman (mean difference, 95 % limits) per feature over all matched pairs, with the
package's default setting (IBSI re-segmentation, ``DEFAULT_OUTLIER_SIGMA``) and, for comparison, r with
no re-segmentation, on 1-pixel-eroded regions, and eroded + re-segmented (both masks treated alike).
Discs: the instances after the off-column disc filter; per case the number of discs it dropped.
Lumbar lordosis (L1 superior to L5 inferior endplate, ``heights.lumbar_lordosis``): on the same mid-sagittal
planes of the held-out VB3/VB2 cases, from the reference bodies (VB3 ids 1..5 = L1..L5; VB2's seven bodies
T11..L5, named superior to inferior) and from the predicted instances named after the reference body they match
(IoU >= 0.5; predicted discs named by the bodies around them, so the CLI's disc check applies); plus the
reference value on every VB3/VB2 volume (training cases too: the measure's plausibility on manual masks).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import nibabel as nib
import numpy as np
import numpy.typing as npt
from scipy import ndimage

import neurospine.slice2d.data as d
from benchmarks.common import SHARED_DATA, peak_rss_mb, write_results
from neurospine.io import Volume, reorient
from neurospine.metrics.overlap import dice
from neurospine.slice2d.api import input_modality, plane_modality
from neurospine.slice2d.heights import ColumnBody, body_measures, lumbar_lordosis, principal_frame
from neurospine.slice2d.instances import Instances2D, build_instances
from neurospine.slice2d.io2d import Plane2D, load_input, unknown_spacing_mm
from neurospine.slice2d.modality import image_signs
from neurospine.slice2d.radiomics import DEFAULT_OUTLIER_SIGMA, image_binning, region_features
from neurospine.slice2d.segment import MODEL_NAME, card_logit_bias, segment_plane

log = logging.getLogger("benchmarks.slice2d")

#: Radiomics settings compared: name -> (erode both masks by 1 pixel, outlier_sigma).
RADIOMIC_SETTINGS: dict[str, tuple[bool, float | None]] = {
    "no_resegmentation": (False, None),
    "outlier_3sd": (False, 3.0),
    "eroded_1px": (True, None),
    "eroded_1px_outlier_3sd": (True, 3.0),
}
RADIOMIC_KEYS = (
    "skewness",
    "kurtosis",
    "mean_positive",
    "entropy",
    "mean",
    "median",
    "sd",
    "p10",
    "p90",
    "iqr",
    "range",
    "energy",
    "uniformity",
)


@dataclass
class Case:
    name: str
    group: str  # mr / ct / xray
    plane: Plane2D
    ref: npt.NDArray[np.uint8]  # 0 / 1 body / 2 disc on the plane grid
    has_bodies: bool
    has_discs: bool
    modality: str
    ref_instances: npt.NDArray[np.int32] | None = None


def _unknown(plane: Plane2D) -> Plane2D:
    s = unknown_spacing_mm(plane.shape)
    return Plane2D(plane.pixels, (s, s), spacing_known=False, orientation_known=plane.orientation_known)


def _ipl(path: Path) -> npt.NDArray[Any]:
    """The image array reoriented to IPL, in the dtype stored in the file."""
    img = cast(nib.Nifti1Image, nib.load(str(path)))
    return np.asarray(reorient(Volume(np.asarray(img.dataobj), img.affine), "IPL")[0].data)


def vesal_cases(root: Path) -> list[Case]:
    out = []
    for i in sorted(d.VESAL_TEST):
        loaded = load_input(root / "vesal_mri2d" / f"vesal-{i:02d}_img.nii.gz")
        assert loaded.plane is not None
        lab_img = cast(nib.Nifti1Image, nib.load(str(root / "vesal_mri2d" / f"vesal-{i:02d}_discvert.nii.gz")))
        lab = np.asarray(lab_img.dataobj)[:, :, 0]
        ref = np.zeros(lab.shape, np.uint8)
        ref[lab == 2] = 1
        ref[lab == 1] = 2
        out.append(Case(f"vesal-{i:02d}", "mr_vesal", _unknown(loaded.plane), ref, True, True, "mr"))
    return out


def fcs_cases(root: Path, folder: str, names: set[str] | None, group: str, slice_offset: int = 0) -> list[Case]:
    """Cases of one fcs set on the best labelled sagittal slice (``slice_offset``: that many slices beside it)."""
    dd = root / folder
    out = []
    is_ivd = folder.startswith("fcs_ivd")
    for img_file in sorted(dd.glob("*_img.nii.gz")):
        case = img_file.name[: -len("_img.nii.gz")]
        if names is not None and case not in names:
            continue
        lab_file = dd / f"{case}_{'disc' if is_ivd else 'vertbody'}.nii.gz"
        if not lab_file.exists():
            continue
        loaded = load_input(img_file)
        lab = _ipl(lab_file)
        k = int(np.clip(d._best_slice(lab > 0) + slice_offset, 0, lab.shape[2] - 1))
        ref = np.where(lab[:, :, k] > 0, 2 if is_ivd else 1, 0).astype(np.uint8)
        out.append(
            Case(
                case,
                group,
                loaded.slice_plane(k),
                ref,
                not is_ivd,
                is_ivd,
                "mr",
                ref_instances=lab[:, :, k].astype(np.int32),
            )
        )
    return out


def tptbox_case(root: Path, which: str, slice_offset: int = 0) -> Case:
    dd = root / "tptbox_samples"
    loaded = load_input(dd / f"tpt-{which}_img.nii.gz")
    sub = _ipl(dd / f"tpt-{which}_subreg.nii.gz")
    vert = _ipl(dd / f"tpt-{which}_vert.nii.gz")
    body3 = np.isin(sub, (49, 50, 62))
    k = int(np.clip(d._best_slice(body3) + slice_offset, 0, sub.shape[2] - 1))
    ref = np.zeros(sub.shape[:2], np.uint8)
    ref[body3[:, :, k]] = 1
    ref[sub[:, :, k] == 100] = 2
    inst = np.where(ref == 1, vert[:, :, k], 0).astype(np.int32)
    inst = np.where(ref == 2, 1000 + vert[:, :, k].astype(np.int32), inst)
    modality = "ct" if which == "ct" else "mr"
    return Case(
        f"tpt-{which}",
        f"{modality}_tptbox",
        loaded.slice_plane(k),
        ref,
        True,
        bool((ref == 2).any()),
        modality,
        ref_instances=inst,
    )


def fewshot_case(root: Path, case: str) -> Case | None:
    dd = root / "fewshot_ct_sag"
    loaded = load_input(dd / f"{case}_img.nii.gz")
    for mask_name in ("spine", "lumbar"):
        lab = _ipl(dd / f"{case}_{mask_name}.nii.gz") > 0
        k0 = int(np.rint(float(np.argwhere(lab)[:, 2].mean())))
        for k in (k0, k0 - 1, k0 + 1, k0 - 2, k0 + 2):
            bodies, _post = d.split_posterior(lab[:, :, k])
            if d.plausible_bodies(bodies):
                return Case(
                    f"{case}-{mask_name}",
                    "ct_fewshot",
                    _unknown(loaded.slice_plane(k)),
                    bodies.astype(np.uint8),
                    True,
                    False,
                    "ct",
                )
    log.warning("%s: no midline slice with separable bodies; not evaluated", case)
    return None


def xray_cases(root: Path) -> list[Case]:
    """The lateral radiographs as the CLI sees them: its loader (spacing rule) and its modality detection."""
    out = []
    for name in ("xr-normal-lat", "xr-damaged-lat"):
        loaded = load_input(root / "spineproject_xray" / f"{name}_img.nii.gz")
        assert loaded.plane is not None
        modality = input_modality(loaded).modality
        lab_img = cast(nib.Nifti1Image, nib.load(str(root / "spineproject_xray" / f"{name}_vert.nii.gz")))
        lab = np.asarray(lab_img.dataobj)[:, :, 0]
        # remove speckle (components < 0.2 % of the labelled area)
        cc, n = ndimage.label(lab > 0)
        sizes = ndimage.sum_labels(lab > 0, cc, index=np.arange(1, n + 1))
        keep = np.isin(cc, 1 + np.flatnonzero(sizes >= 0.02 * sizes.max()))
        out.append(Case(name, "xray", loaded.plane, keep.astype(np.uint8), True, False, modality))
    return out


def modality_cases(root: Path) -> list[tuple[str, str, Path]]:
    """``(name, true modality, image)`` for the modality-detection table."""
    out: list[tuple[str, str, Path]] = []
    for f in sorted((root / "spineproject_xray").glob("*_img.nii.gz")):
        out.append((f.name[: -len("_img.nii.gz")], "xray", f))
    for f in sorted((root / "vesal_mri2d").glob("*_img.nii.gz")):
        out.append((f.name[: -len("_img.nii.gz")], "mr", f))
    for folder in (
        "fcs_vb1_zukic_lumbar_mri",
        "fcs_vb2_chu_lumbar_t2",
        "fcs_vb3_myosegmentum_lumbar",
        "fcs_ivd_fmrp_lumbar_t2",
    ):
        for f in sorted((root / folder).glob("*_img.nii.gz")):
            out.append((f.name[: -len("_img.nii.gz")], "mr", f))
    out.append(("tpt-mri", "mr", root / "tptbox_samples" / "tpt-mri_img.nii.gz"))
    out.append(("tpt-ct", "ct", root / "tptbox_samples" / "tpt-ct_img.nii.gz"))
    for f in sorted((root / "fewshot_ct_sag").glob("*_img.nii.gz")):
        out.append((f.name[: -len("_img.nii.gz")], "ct", f))
    return [c for c in out if c[2].exists()]


def modality_table(root: Path) -> dict[str, Any]:
    """Detected vs true modality, each image (or a volume's middle sagittal slice) taken as a 2D image.

    2D files go through ``api.input_modality`` exactly as in the CLI; for a volume the middle sagittal
    slice is given to the 2D rule with the volume's in-plane spacing, as if it had been exported as a 2D
    NIfTI (the CLI itself would call any 3D volume without HU MR).
    """
    rows: list[dict[str, Any]] = []
    for name, truth, f in modality_cases(root):
        loaded = load_input(f)
        if loaded.kind == "volume":
            plane = loaded.slice_plane(loaded.n_slices() // 2)
            g = plane_modality(plane)
            source = "middle sagittal slice of a volume"
        else:
            assert loaded.plane is not None
            plane = loaded.plane
            g = input_modality(loaded)
            source = "2D file"
        signs = image_signs(plane.pixels)
        rows.append(
            {
                "case": name,
                "true": truth,
                "detected": g.modality,
                "certain": g.certain,
                "source": source,
                "shape": list(plane.shape),
                "skewness": round(signs.skewness, 3),
                "bright_column_fraction": round(signs.bright_column_fraction, 3),
                "how": g.how,
            }
        )
    labels = ("mr", "ct", "xray")
    confusion = {t: {p: sum(r["true"] == t and r["detected"] == p for r in rows) for p in labels} for t in labels}
    uncertain = {t: sum(r["true"] == t and not r["certain"] for r in rows) for t in labels}
    return {"confusion_true_by_detected": confusion, "uncertain_by_true": uncertain, "per_case": rows}


def modality_markdown(table: dict[str, Any]) -> str:
    conf, unc = table["confusion_true_by_detected"], table["uncertain_by_true"]
    md = [
        "# slice2d modality detection (2D rule, no metadata)",
        "",
        "Each 2D file through `api.input_modality` (as the CLI); for volumes the middle sagittal slice is",
        "given to the 2D rule as if exported as a 2D image. CT with HU values is caught by the HU rule.",
        "",
        "| true \\ detected | mr | ct | xray | flagged uncertain |",
        "|---|---|---|---|---|",
    ]
    for t in ("mr", "ct", "xray"):
        md.append(f"| {t} | {conf[t]['mr']} | {conf[t]['ct']} | {conf[t]['xray']} | {unc[t]} |")
    md += [
        "",
        "| case | true | detected | certain | shape | skewness | bright column | how |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table["per_case"]:
        md.append(
            f"| {r['case']} | {r['true']} | {r['detected']} | {r['certain']} | {r['shape'][0]}x{r['shape'][1]} | "
            f"{r['skewness']:.2f} | {r['bright_column_fraction']:.2f} | {r['how']} |"
        )
    return "\n".join(md) + "\n"


def _rows(ref: npt.NDArray[np.uint8]) -> slice:
    rows = np.flatnonzero((ref > 0).any(axis=1))
    return slice(int(rows[0]), int(rows[-1]) + 1)


def _match(pred_masks: list[npt.NDArray[np.bool_]], ref_masks: list[npt.NDArray[np.bool_]]) -> list[tuple[int, int]]:
    pairs = []
    for j, r in enumerate(ref_masks):
        best, bi = 0.0, -1
        for i, p in enumerate(pred_masks):
            inter = float((p & r).sum())
            if inter == 0:
                continue
            iou = inter / float((p | r).sum())
            if iou > best:
                best, bi = iou, i
        if best >= 0.5:
            pairs.append((bi, j))
    return pairs


def _ref_masks(case: Case, cls: int) -> list[npt.NDArray[np.bool_]]:
    if case.ref_instances is not None:
        vals = np.unique(case.ref_instances[case.ref == cls])
        return [(case.ref_instances == v) & (case.ref == cls) for v in vals if v != 0]
    return d.body_instances((case.ref == cls).astype(np.uint8))


LUMBAR = ("L1", "L2", "L3", "L4", "L5")


def _column(masks: list[npt.NDArray[np.bool_]], names: list[str]) -> list[ColumnBody]:
    return [
        ColumnBody(n, m, (float(ndimage.center_of_mass(m)[0]), float(ndimage.center_of_mass(m)[1])))
        for n, m in zip(names, masks, strict=True)
    ]


def reference_lumbar_column(case: str, inst2d: npt.NDArray[np.int32]) -> list[ColumnBody] | None:
    """The reference bodies of a VB3 (L1..L5) or VB2 (T11..L5) plane, superior to inferior (None if not 5/7)."""
    vals = [int(v) for v in np.unique(inst2d) if v != 0]
    masks = sorted((inst2d == v for v in vals), key=lambda m: float(np.argwhere(m)[:, 0].mean()))
    if case.startswith("vb3") and len(masks) == 5:
        return _column(masks, list(LUMBAR))
    if case.startswith("vb2") and len(masks) == 7:
        return _column(masks, ["T11", "T12", *LUMBAR])
    return None


def lordosis_pred_vs_ref(case: Case, inst: Instances2D, ref_col: list[ColumnBody]) -> dict[str, Any]:
    """L1-L5 lordosis from the reference bodies and from the predicted instances named by their match."""
    sp = case.plane.spacing_mm
    ref = lumbar_lordosis(ref_col, sp)
    pred_masks = [b.mask for b in inst.bodies]
    names = {i: ref_col[j].name for i, j in _match(pred_masks, [b.mask for b in ref_col])}
    pred_col = [ColumnBody(names.get(i, f"other{i}"), b.mask, b.centroid_rc) for i, b in enumerate(inst.bodies)]
    rows = [b.centroid_rc[0] for b in pred_col]
    discs = set()
    for dsc in inst.discs:
        above = [k for k, r in enumerate(rows) if r < dsc.centroid_rc[0]]
        below = [k for k, r in enumerate(rows) if r > dsc.centroid_rc[0]]
        if above and below:
            discs.add(f"{pred_col[above[-1]].name}-{pred_col[below[0]].name}")
    pred = lumbar_lordosis(pred_col, sp, discs)
    return {
        "case": case.name,
        "ref_deg": ref.deg,
        "ref_levels": f"L1-{ref.lower}" if ref.lower else "",
        "ref_note": ref.note,
        "pred_deg": pred.deg,
        "pred_levels": f"L1-{pred.lower}" if pred.lower else "",
        "pred_note": pred.note,
        "ref_endplates_deg": ref.endplates,
        "pred_endplates_deg": pred.endplates,
    }


def reference_lordosis_all(root: Path) -> list[dict[str, Any]]:
    """Reference L1-L5 lordosis on the mid-sagittal plane of every VB3/VB2 volume (manual masks only)."""
    out: list[dict[str, Any]] = []
    for folder in ("fcs_vb3_myosegmentum_lumbar", "fcs_vb2_chu_lumbar_t2"):
        for lab_file in sorted((root / folder).glob("*_vertbody.nii.gz")):
            case = lab_file.name[: -len("_vertbody.nii.gz")]
            img = cast(nib.Nifti1Image, nib.load(str(lab_file)))
            vol = reorient(Volume(np.asarray(img.dataobj), img.affine), "IPL")[0]
            lab = np.asarray(vol.data)
            k = d._best_slice(lab > 0)
            col = reference_lumbar_column(case, lab[:, :, k].astype(np.int32))
            if col is None:
                continue
            res = lumbar_lordosis(col, (vol.spacing_mm[0], vol.spacing_mm[1]))
            out.append(
                {"case": case, "ref_deg": res.deg, "levels": f"L1-{res.lower}" if res.lower else "", "note": res.note}
            )
    return out


def over_under(pred: npt.NDArray[np.bool_], ref: npt.NDArray[np.bool_]) -> dict[str, float]:
    """Over- vs under-segmentation of one class: pixel precision, recall and the mean outline offset.

    ``outline_offset_px = (|pred| - |ref|) / (outline pixels of ref)``: about +1 when the prediction is
    one pixel too wide all round, -1 when one pixel too narrow (NaN without reference pixels).
    """
    n_pred, n_ref = float(pred.sum()), float(ref.sum())
    inter = float((pred & ref).sum())
    outline = float((ref & ~ndimage.binary_erosion(ref)).sum())
    return {
        "precision": inter / n_pred if n_pred else math.nan,
        "recall": inter / n_ref if n_ref else math.nan,
        "outline_offset_px": (n_pred - n_ref) / outline if outline else math.nan,
    }


def _stats(x: list[float]) -> dict[str, float]:
    a = np.asarray([v for v in x if not math.isnan(v)])
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median": float(np.median(a)), "mean": float(a.mean()), "min": float(a.min())}


def _over_under_stats(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        f"{m}_{key}": _stats([r[f"{m}_{key}"] for r in rows if f"{m}_{key}" in r])
        for key in ("body", "disc")
        for m in ("precision", "recall", "outline_offset_px")
    }


def pearson_ba(p: list[float], r: list[float]) -> dict[str, float]:
    a, b = np.asarray(p, float), np.asarray(r, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return {"n": int(a.size)}
    diff = a - b
    return {
        "n": int(a.size),
        "pearson_r": float(np.corrcoef(a, b)[0, 1]),
        "ba_mean_diff": float(diff.mean()),
        "ba_loa_low": float(diff.mean() - 1.96 * diff.std(ddof=1)),
        "ba_loa_high": float(diff.mean() + 1.96 * diff.std(ddof=1)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--update-card", action="store_true", help="write the held-out metrics into the shipped model card")
    ap.add_argument("--png-dir", type=Path, default=Path("benchmarks/results/slice2d_png"))
    ap.add_argument(
        "--modality-only", action="store_true", help="only the modality-detection table (no model; seconds)"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    table = modality_table(SHARED_DATA)
    log.info("modality confusion (true -> detected): %s", table["confusion_true_by_detected"])
    write_results("slice2d_modality", table, threads=args.threads, markdown=modality_markdown(table))
    if args.modality_only:
        return 0
    from neurospine.inference.onnx import onnx_session
    from neurospine.models import load_card
    from neurospine.slice2d.normalize import normalize_image
    from neurospine.slice2d.qc import write_overlay

    card = load_card(MODEL_NAME)
    session = onnx_session(card, threads=args.threads)
    root = SHARED_DATA
    cases: list[Case] = []
    cases += vesal_cases(root)
    cases.append(tptbox_case(root, "mri"))
    cases += fcs_cases(root, "fcs_vb3_myosegmentum_lumbar", d.VB3_TEST, "mr_vb3")
    cases += fcs_cases(root, "fcs_vb2_chu_lumbar_t2", d.VB2_TEST, "mr_vb2")
    cases += fcs_cases(root, "fcs_vb1_zukic_lumbar_mri", None, "mr_vb1_pathology")
    cases += fcs_cases(root, "fcs_ivd_fmrp_lumbar_t2", None, "mr_ivd")
    cases.append(tptbox_case(root, "ct"))
    fs = fewshot_case(root, "fst-36")
    if fs is not None:
        cases.append(fs)
    cases += xray_cases(root)

    per_case: list[dict[str, Any]] = []
    rad_pairs: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    times: list[float] = []
    times_all: list[float] = []
    height_pairs: dict[str, tuple[list[float], list[float]]] = {}
    lordosis_rows: list[dict[str, Any]] = []
    args.png_dir.mkdir(parents=True, exist_ok=True)
    for c in cases:
        # warm-up excluded from timing
        t = time.perf_counter()
        sem = segment_plane(session, c.plane, c.modality, card_logit_bias(card.inputs, c.modality))
        dt = time.perf_counter() - t
        times.append(dt)
        inst = build_instances(sem.labels, sem.probs, c.plane.spacing_mm)
        dt_all = time.perf_counter() - t
        times_all.append(dt_all)
        n_discs_unfiltered = len(
            build_instances(sem.labels, sem.probs, c.plane.spacing_mm, filter_off_column=False).discs
        )
        # the user's output: instance map after post-processing (1..99 bodies, >= 100 discs)
        out_cls = np.where(inst.label_map >= 100, 2, np.where(inst.label_map > 0, 1, 0))
        rows = _rows(c.ref)
        rec: dict[str, Any] = {
            "case": c.name,
            "group": c.group,
            "seconds": round(dt, 4),
            "n_bodies_pred": len(inst.bodies),
            "n_discs_pred": len(inst.discs),
            "n_discs_dropped_off_column": n_discs_unfiltered - len(inst.discs),
            "shape": list(c.plane.shape),
            "spacing_mm": [round(s, 4) for s in c.plane.spacing_mm],
            "spacing_known": c.plane.spacing_known,
            "modality": c.modality,
        }
        for cls, key, has in ((1, "body", c.has_bodies), (2, "disc", c.has_discs)):
            if not has:
                continue
            rec[f"dice_{key}"] = dice(out_cls[rows] == cls, c.ref[rows] == cls)
            rec[f"dice_{key}_full_image"] = dice(out_cls == cls, c.ref == cls)
            rec[f"dice_{key}_semantic"] = dice(sem.labels[rows] == cls, c.ref[rows] == cls)
            rec.update({f"{k}_{key}": v for k, v in over_under(out_cls[rows] == cls, c.ref[rows] == cls).items()})
            pred_masks = [b.mask for b in (inst.bodies if cls == 1 else inst.discs)]
            ref_masks = _ref_masks(c, cls)
            pairs = _match(pred_masks, ref_masks)
            rec[f"n_{key}_ref"] = len(ref_masks)
            rec[f"n_{key}_matched"] = len(pairs)
            store = rad_pairs.setdefault(f"{c.group}_{key}", {k: ([], []) for k in RADIOMIC_KEYS})
            binning = image_binning(c.plane.pixels)
            for i, j in pairs:
                fp = region_features(c.plane.pixels, pred_masks[i], binning, outlier_sigma=DEFAULT_OUTLIER_SIGMA)
                fr = region_features(c.plane.pixels, ref_masks[j], binning, outlier_sigma=DEFAULT_OUTLIER_SIGMA)
                for k in RADIOMIC_KEYS:
                    store[k][0].append(fp[k])
                    store[k][1].append(fr[k])
                if cls == 1 and c.plane.spacing_known:
                    # one frame for both (the reference body's principal axes): compares the masks only
                    fr_ref = principal_frame(ref_masks[j], c.plane.spacing_mm)
                    hp = body_measures(pred_masks[i], c.plane.spacing_mm, fr_ref)
                    hr = body_measures(ref_masks[j], c.plane.spacing_mm, fr_ref)
                    for hk in ("anterior_height_mm", "middle_height_mm", "posterior_height_mm", "wedge_ratio"):
                        height_pairs.setdefault(hk, ([], []))
                        height_pairs[hk][0].append(hp[hk])
                        height_pairs[hk][1].append(hr[hk])
                # the alternatives: re-segmentation off/on, on the whole regions and on their cores
                # (one-pixel erosion of both masks; pairs where a core has < 10 pixels are left out)
                ep, er = ndimage.binary_erosion(pred_masks[i]), ndimage.binary_erosion(ref_masks[j])
                for setting, (eroded, sigma) in RADIOMIC_SETTINGS.items():
                    mp, mr = (ep, er) if eroded else (pred_masks[i], ref_masks[j])
                    if mp.sum() < 10 or mr.sum() < 10:
                        continue
                    fpc = region_features(c.plane.pixels, mp, binning, outlier_sigma=sigma)
                    frc = region_features(c.plane.pixels, mr, binning, outlier_sigma=sigma)
                    alt = rad_pairs.setdefault(f"{setting}:{c.group}_{key}", {k: ([], []) for k in RADIOMIC_KEYS})
                    for k in RADIOMIC_KEYS:
                        alt[k][0].append(fpc[k])
                        alt[k][1].append(frc[k])
        if c.group in ("mr_vb3", "mr_vb2") and c.ref_instances is not None:
            ref_col = reference_lumbar_column(c.name, c.ref_instances)
            if ref_col is not None:
                lordosis_rows.append(lordosis_pred_vs_ref(c, inst, ref_col))
        per_case.append(rec)
        if c.group == "xray" or c.name in ("vesal-15", "tpt-ct", "vb1-02", "vb3-27"):
            write_overlay(
                args.png_dir / f"{c.name}.png",
                normalize_image(c.plane.pixels, c.modality),
                inst,
                c.plane.spacing_mm,
                f"{c.name} (held out)",
            )
        log.info("%s", rec)

    summary: dict[str, Any] = {}
    for grp in sorted({r["group"] for r in per_case}):
        rows_ = [r for r in per_case if r["group"] == grp]
        summary[grp] = {
            "cases": [r["case"] for r in rows_],
            "dice_body": _stats([r["dice_body"] for r in rows_ if "dice_body" in r]),
            "dice_disc": _stats([r["dice_disc"] for r in rows_ if "dice_disc" in r]),
            "dice_body_full_image": _stats([r["dice_body_full_image"] for r in rows_ if "dice_body_full_image" in r]),
            **_over_under_stats(rows_),
        }
    # pooled groups: MR from healthy-ish sets (vesal, tptbox, VB3, VB2, IVD discs), all CT
    for pooled_name, members in (
        ("MR_pooled_excl_vb1", ("mr_vesal", "mr_tptbox", "mr_vb3", "mr_vb2", "mr_ivd")),
        ("CT_pooled", ("ct_tptbox", "ct_fewshot")),
    ):
        rows_ = [r for r in per_case if r["group"] in members]
        summary[pooled_name] = {
            "cases": [r["case"] for r in rows_],
            "dice_body": _stats([r["dice_body"] for r in rows_ if "dice_body" in r]),
            "dice_disc": _stats([r["dice_disc"] for r in rows_ if "dice_disc" in r]),
            "dice_body_full_image": _stats([r["dice_body_full_image"] for r in rows_ if "dice_body_full_image" in r]),
            **_over_under_stats(rows_),
        }
    radiomics: dict[str, Any] = {
        grp: {k: pearson_ba(*v) for k, v in feats.items()} for grp, feats in rad_pairs.items() if ":" not in grp
    }
    # pooled MR+CT bodies (the SpineTK claim is per structure across modalities)
    pooled: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in RADIOMIC_KEYS}
    for grp, feats in rad_pairs.items():
        if grp.startswith(("mr_", "ct_")):
            for k in RADIOMIC_KEYS:
                pooled[k][0].extend(feats[k][0])
                pooled[k][1].extend(feats[k][1])
    radiomics["pooled_mr_ct"] = {k: pearson_ba(*v) for k, v in pooled.items()}
    radiomics["setting"] = {"outlier_sigma": DEFAULT_OUTLIER_SIGMA, "eroded": False}  # of "pooled_mr_ct"
    for setting in RADIOMIC_SETTINGS:
        pooled_alt: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in RADIOMIC_KEYS}
        for grp, feats in rad_pairs.items():
            if grp.startswith((f"{setting}:mr_", f"{setting}:ct_")):
                for k in RADIOMIC_KEYS:
                    pooled_alt[k][0].extend(feats[k][0])
                    pooled_alt[k][1].extend(feats[k][1])
        radiomics[f"pooled_mr_ct_{setting}"] = {k: pearson_ba(*v) for k, v in pooled_alt.items()}
    timing = {
        "segment_plane_s_median": float(np.median(times[1:] if len(times) > 1 else times)),
        "segment_plane_s_max": float(np.max(times)),
        "segment_plus_instances_s_median": float(np.median(times_all)),
        "load_average_1_5_15": [round(x, 2) for x in __import__("os").getloadavg()],
        "threads": args.threads,
    }
    heights = {}
    for hk, (hp_, hr_) in height_pairs.items():
        a, b = np.asarray(hp_, float), np.asarray(hr_, float)
        ok = np.isfinite(a) & np.isfinite(b)
        heights[hk] = {**pearson_ba(list(a[ok]), list(b[ok])), "mae": float(np.mean(np.abs(a[ok] - b[ok])))}
    # whole pipeline (load, automatic slice choice, segmentation, measures, writing) on two inputs
    import tempfile

    from neurospine.slice2d.api import run_file

    pipeline: dict[str, Any] = {}
    for label, path in (
        ("vb3-27_3d_auto_slice", root / "fcs_vb3_myosegmentum_lumbar" / "vb3-27_img.nii.gz"),
        ("tpt-ct_3d_auto_slice", root / "tptbox_samples" / "tpt-ct_img.nii.gz"),
    ):
        if path.exists():
            with tempfile.TemporaryDirectory() as tmp:
                res = run_file(path, tmp, threads=args.threads)
            pipeline[label] = {
                "timings_s": res.timings_s,
                "n_bodies": res.measures["n_bodies"],
                "n_discs": res.measures["n_discs"],
                "slice": res.extra.get("slice_input"),
                "slice_how": res.extra.get("slice_how"),
            }
    lordosis = lordosis_summary(lordosis_rows, reference_lordosis_all(root))
    payload = {
        "model": card.summary(),
        "summary": summary,
        "radiomics": radiomics,
        "timing": timing,
        "heights_pred_vs_ref_bodies_known_spacing": heights,
        "pipeline": pipeline,
        "lumbar_lordosis_l1_l5": lordosis,
        "peak_rss_mb": peak_rss_mb(),
        "per_case": per_case,
    }
    md = [
        f"# slice2d benchmark (model {card.name} {card.version})",
        "",
        "| group | cases | median Dice body | median Dice disc |",
        "|---|---|---|---|",
    ]
    for grp, s in summary.items():
        md.append(
            f"| {grp} | {len(s['cases'])} | {s['dice_body'].get('median', float('nan')):.3f} | "
            f"{s['dice_disc'].get('median', float('nan')):.3f} |"
        )
    md += [
        "",
        "| group | median precision body | median recall body | outline offset body (px) | "
        "median precision disc | median recall disc | outline offset disc (px) |",
        "|---|---|---|---|---|---|---|",
    ]
    for grp, s in summary.items():
        cells = [
            f"{s[f'{m}_{key}'].get('median', float('nan')):.3f}"
            for key in ("body", "disc")
            for m in ("precision", "recall", "outline_offset_px")
        ]
        md.append(f"| {grp} | " + " | ".join(cells) + " |")
    md += [
        "",
        "Outline offset = (predicted - reference pixels) / reference outline pixels: + over-, - under-segmentation.",
        "",
        f"Time per slice ({args.threads} threads): segmentation median {timing['segment_plane_s_median']:.3f} s, "
        f"with instances {timing['segment_plus_instances_s_median']:.3f} s; machine load average "
        f"{timing['load_average_1_5_15']} on {__import__('os').cpu_count()} CPUs (shared machine).",
        "",
        "Whole pipeline (3D input, automatic slice choice): "
        + "; ".join(f"{k}: {v['timings_s'].get('total_s')} s, {v['n_bodies']} bodies" for k, v in pipeline.items()),
        "",
    ]
    md += [
        "",
        "| body heights (mm), predicted vs reference mask, same frame (known spacing only) | n | MAE | Pearson r |",
        "|---|---|---|---|",
    ]
    for hk, v in heights.items():
        md.append(f"| {hk} | {v.get('n', 0)} | {v['mae']:.3f} | {v.get('pearson_r', float('nan')):.3f} |")
    dropped = sum(r["n_discs_dropped_off_column"] for r in per_case)
    md += [
        "",
        f"Off-column disc filter (instances): {dropped} disc component(s) dropped over {len(per_case)} images "
        + str({r["case"]: r["n_discs_dropped_off_column"] for r in per_case if r["n_discs_dropped_off_column"]}),
        "",
        f"Radiomics setting used (package default): IBSI re-segmentation outlier_sigma = {DEFAULT_OUTLIER_SIGMA} "
        "(region pixels beyond mean +- that many sd left out), whole regions. Pearson r of the alternatives "
        "on the same matched pairs (both masks treated alike; eroded: pairs whose cores keep >= 10 pixels).",
        "",
        "| radiomics (pooled MR+CT bodies+discs) | n | Pearson r (used) | BA mean diff | BA limits | "
        "r no re-seg. | r 3 sd re-seg. | r eroded 1 px | r eroded + 3 sd |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    alt_r = [radiomics[f"pooled_mr_ct_{setting}"] for setting in RADIOMIC_SETTINGS]
    for k, v in radiomics["pooled_mr_ct"].items():
        if "pearson_r" in v:
            alt_cells = " | ".join(f"{a.get(k, {}).get('pearson_r', float('nan')):.3f}" for a in alt_r)
            md.append(
                f"| {k} | {v['n']} | {v['pearson_r']:.3f} | {v['ba_mean_diff']:.4g} | "
                f"[{v['ba_loa_low']:.4g}, {v['ba_loa_high']:.4g}] | {alt_cells} |"
            )
    md += lordosis_markdown(lordosis)
    path = write_results("slice2d", payload, threads=args.threads, markdown="\n".join(md) + "\n")
    log.info("wrote %s", path)
    if args.update_card:
        _update_card(summary, radiomics, timing)
    return 0


def lordosis_summary(held_out: list[dict[str, Any]], ref_all: list[dict[str, Any]]) -> dict[str, Any]:
    both = [r for r in held_out if r["ref_deg"] is not None and r["pred_deg"] is not None]
    diff = np.asarray([r["pred_deg"] - r["ref_deg"] for r in both], float)

    def rng(vals: list[float]) -> list[float]:
        return [float(min(vals)), float(max(vals))] if vals else []

    ref_vals = [r["ref_deg"] for r in ref_all if r["ref_deg"] is not None]
    return {
        "held_out_per_case": held_out,
        "held_out_n": len(held_out),
        "held_out_n_both_measured": len(both),
        "held_out_ref_range_deg": rng([r["ref_deg"] for r in held_out if r["ref_deg"] is not None]),
        "held_out_pred_range_deg": rng([r["pred_deg"] for r in held_out if r["pred_deg"] is not None]),
        "pred_minus_ref_mean_deg": float(diff.mean()) if diff.size else math.nan,
        "pred_vs_ref_mean_abs_diff_deg": float(np.abs(diff).mean()) if diff.size else math.nan,
        "pred_vs_ref_max_abs_diff_deg": float(np.abs(diff).max()) if diff.size else math.nan,
        "reference_all_volumes": ref_all,
        "reference_all_n": len(ref_all),
        "reference_all_n_measured": len(ref_vals),
        "reference_all_range_deg": rng(ref_vals),
        "reference_all_median_deg": float(np.median(ref_vals)) if ref_vals else math.nan,
    }


def lordosis_markdown(lo: dict[str, Any]) -> list[str]:
    def f(v: float | None) -> str:
        return "withheld" if v is None else f"{v:.1f}"

    md = [
        "",
        "## Lumbar lordosis L1-L5 (L1 superior to L5 inferior endplate), predicted vs reference masks",
        "",
        "Mid-sagittal plane of each held-out VB3/VB2 case (reference bodies named L1..L5; predicted bodies named "
        "after the reference body they match, IoU >= 0.5). Withheld = the guards of `heights.lumbar_lordosis` "
        "refused an endplate (reason given).",
        "",
        "| case | reference (deg) | predicted (deg) | pred - ref | note |",
        "|---|---|---|---|---|",
    ]
    for r in lo["held_out_per_case"]:
        dd = "" if r["ref_deg"] is None or r["pred_deg"] is None else f"{r['pred_deg'] - r['ref_deg']:+.1f}"
        notes = [(who, r[f"{who}_note"]) for who in ("ref", "pred")]
        # the reference sets stop at L5: "S1 not in view" is the expected reason for L1-L5 and left out
        note = "; ".join(f"{who}: {n}" for who, n in notes if n and n != "S1 not in view")
        md.append(f"| {r['case']} | {f(r['ref_deg'])} | {f(r['pred_deg'])} | {dd} | {note} |")
    rr, pr = lo["held_out_ref_range_deg"], lo["held_out_pred_range_deg"]
    ra = lo["reference_all_range_deg"]
    md += [
        "",
        f"Held out: {lo['held_out_n_both_measured']}/{lo['held_out_n']} measured on both; reference "
        f"{rr[0]:.1f}..{rr[1]:.1f} deg, predicted {pr[0]:.1f}..{pr[1]:.1f} deg; pred - ref mean "
        f"{lo['pred_minus_ref_mean_deg']:+.1f} deg, mean |pred - ref| {lo['pred_vs_ref_mean_abs_diff_deg']:.1f} deg "
        f"(max {lo['pred_vs_ref_max_abs_diff_deg']:.1f}).",
        "",
        f"Reference masks of every VB3/VB2 volume (manual, supine MRI): {lo['reference_all_n_measured']}/"
        f"{lo['reference_all_n']} measured, {ra[0]:.1f}..{ra[1]:.1f} deg, median "
        f"{lo['reference_all_median_deg']:.1f} deg"
        + "".join(f"; {r['case']} withheld ({r['note']})" for r in lo["reference_all_volumes"] if r["ref_deg"] is None)
        + ".",
    ]
    return md


def _update_card(summary: dict[str, Any], radiomics: dict[str, Any], timing: dict[str, Any]) -> None:
    from neurospine.models.registry import _card_path

    p = _card_path(MODEL_NAME)
    card = json.loads(p.read_text())
    card["metrics"] = {
        "held_out": {
            g: {
                "cases": len(s["cases"]),
                "median_dice_body": s["dice_body"].get("median"),
                "median_dice_disc": s["dice_disc"].get("median"),
            }
            for g, s in summary.items()
        },
        "radiomics_pooled_pearson_r": {k: v.get("pearson_r") for k, v in radiomics["pooled_mr_ct"].items()},
        "radiomics_outlier_sigma": radiomics["setting"]["outlier_sigma"],
        "seconds_per_slice_median": timing["segment_plane_s_median"],
        "threads": timing["threads"],
        "source": "python -m benchmarks.slice2d (benchmarks/results/slice2d.json)",
    }
    p.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
