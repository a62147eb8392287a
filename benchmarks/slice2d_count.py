"""Reliability of the 2D body count confidence (``neurospine.slice2d.count_confidence``) on held-out slices.

Run from the repository root: ``python -m benchmarks.slice2d_count [--threads 1]``.

Cases: the held-out body-labelled slices of ``benchmarks/slice2d.py`` (same sets, same splits, same loaders),
plus, to widen the range of counts and errors, (a) the sagittal slices 3 voxels either side of the chosen one in
each held-out volume (when the reference still has bodies there) and (b) the two lateral radiographs re-run with
a user-given ``--pixel-mm`` of 0.2, 0.25, 0.3 and 0.35 mm (the issue-18 case where the count swings).
Reference count: connected reference body instances, exactly as the slice2d benchmark matches them
(``_ref_masks``). Predicted count: predicted bodies whose centroid row lies within the rows spanned by the
reference bodies (the sets leave vertebrae above/below unlabelled); the whole-image count is listed too.
The confidence rules are fixed in the module (no fit), so every case here is a test case.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from typing import Any

import numpy as np

import neurospine.slice2d.data as d
from benchmarks.common import SHARED_DATA, write_results
from benchmarks.slice2d import (
    Case,
    _ref_masks,
    _rows,
    fcs_cases,
    fewshot_case,
    tptbox_case,
    vesal_cases,
    xray_cases,
)
from neurospine.slice2d.count_confidence import FLAG_BELOW, count_confidence
from neurospine.slice2d.instances import build_instances
from neurospine.slice2d.segment import MODEL_NAME, card_logit_bias, segment_plane

log = logging.getLogger("benchmarks.slice2d_count")

BINS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 1.01))
OFFSET_SLICES = (-3, 3)
XRAY_PIXEL_MM = (0.2, 0.25, 0.3, 0.35)


def _cases() -> list[Case]:
    root = SHARED_DATA
    out: list[Case] = []
    out += vesal_cases(root)
    out.append(tptbox_case(root, "mri"))
    vols = fcs_cases(root, "fcs_vb3_myosegmentum_lumbar", d.VB3_TEST, "mr_vb3")
    vols += fcs_cases(root, "fcs_vb2_chu_lumbar_t2", d.VB2_TEST, "mr_vb2")
    vols += fcs_cases(root, "fcs_vb1_zukic_lumbar_mri", None, "mr_vb1_pathology")
    out += vols
    out.append(tptbox_case(root, "ct"))
    fs = fewshot_case(root, "fst-36")
    if fs is not None:
        out.append(fs)
    xr = xray_cases(root)
    out += xr
    out += _offset_cases(root)
    for c in xr:
        for px in XRAY_PIXEL_MM:
            pl = replace(c.plane, spacing_mm=(px, px), spacing_known=True)
            out.append(replace(c, name=f"{c.name}@{px}mm", group="xray_pixel_mm", plane=pl))
    return [c for c in out if c.has_bodies and (c.ref == 1).any()]


def _offset_cases(root: Any) -> list[Case]:
    """Slices beside the chosen one in the held-out volumes (same reference labels, same loaders)."""
    out: list[Case] = []
    for off in OFFSET_SLICES:
        vols = fcs_cases(root, "fcs_vb3_myosegmentum_lumbar", d.VB3_TEST, "mr_vb3", off)
        vols += fcs_cases(root, "fcs_vb2_chu_lumbar_t2", d.VB2_TEST, "mr_vb2", off)
        vols += fcs_cases(root, "fcs_vb1_zukic_lumbar_mri", None, "mr_vb1_pathology", off)
        vols += [tptbox_case(root, "mri", off), tptbox_case(root, "ct", off)]
        out += [replace(c, name=f"{c.name}{off:+d}", group=f"{c.group}_offslice") for c in vols]
    return out


def evaluate(threads: int) -> dict[str, Any]:
    from neurospine.inference.onnx import onnx_session
    from neurospine.models import load_card

    card = load_card(MODEL_NAME)
    session = onnx_session(card, threads=threads)
    rows: list[dict[str, Any]] = []
    for c in _cases():
        sem = segment_plane(session, c.plane, c.modality, card_logit_bias(card.inputs, c.modality))
        inst = build_instances(sem.labels, sem.probs, c.plane.spacing_mm)
        conf = count_confidence(inst, sem.probs, c.plane.spacing_mm)
        span = _rows(np.where(c.ref == 1, 1, 0).astype(np.uint8))
        n_ref = len(_ref_masks(c, 1))
        n_in = sum(1 for b in inst.bodies if span.start <= b.centroid_rc[0] < span.stop)
        rows.append(
            {
                "case": c.name,
                "group": c.group,
                "n_ref": n_ref,
                "n_pred_in_span": n_in,
                "n_pred_image": len(inst.bodies),
                "abs_error": abs(n_in - n_ref),
                "count_confidence": conf.confidence,
                "count_flag": conf.flagged,
                "reasons": conf.reasons,
            }
        )
        log.info("%s: ref %d pred %d conf %.3f %s", c.name, n_ref, n_in, conf.confidence, conf.reasons)
    primary = [r for r in rows if not r["group"].endswith(("_offslice", "_pixel_mm"))]
    return {
        "per_case": rows,
        "reliability": reliability(rows),
        "reliability_chosen_slices_only": reliability(primary),
        "flag_below": FLAG_BELOW,
    }


def reliability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for lo, hi in BINS:
        sel = [r for r in rows if lo <= r["count_confidence"] < hi]
        out.append(
            {
                "bin": f"[{lo:.2f}, {min(hi, 1.0):.2f}{')' if hi < 1 else ']'}",
                "n": len(sel),
                "mean_confidence": round(float(np.mean([r["count_confidence"] for r in sel])), 3) if sel else None,
                "fraction_exact": round(float(np.mean([r["abs_error"] == 0 for r in sel])), 3) if sel else None,
                "mean_abs_error": round(float(np.mean([r["abs_error"] for r in sel])), 3) if sel else None,
            }
        )
    for name, sel in (
        ("flagged", [r for r in rows if r["count_flag"]]),
        ("not flagged", [r for r in rows if not r["count_flag"]]),
        ("all", rows),
    ):
        out.append(
            {
                "bin": name,
                "n": len(sel),
                "mean_confidence": round(float(np.mean([r["count_confidence"] for r in sel])), 3) if sel else None,
                "fraction_exact": round(float(np.mean([r["abs_error"] == 0 for r in sel])), 3) if sel else None,
                "mean_abs_error": round(float(np.mean([r["abs_error"] for r in sel])), 3) if sel else None,
            }
        )
    return out


def markdown(res: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "-" if v is None else str(v)

    lines = [
        f"# slice2d body count confidence (model {MODEL_NAME})",
        "",
        "Held-out slices only (splits of benchmarks/slice2d.py); rules fixed before scoring, no fit. "
        f"Flag: count_confidence < {FLAG_BELOW}.",
        "",
        "| confidence | n | mean confidence | fraction exact count | mean abs count error |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {b['bin']} | {b['n']} | {f(b['mean_confidence'])} | {f(b['fraction_exact'])} | {f(b['mean_abs_error'])} |"
        for b in res["reliability"]
    ]
    lines += [
        "",
        "Chosen slices only (one per held-out image, stored or CLI spacing; no neighbouring slices, no forced "
        "pixel sizes):",
        "",
        "| confidence | n | mean confidence | fraction exact count | mean abs count error |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {b['bin']} | {b['n']} | {f(b['mean_confidence'])} | {f(b['fraction_exact'])} | {f(b['mean_abs_error'])} |"
        for b in res["reliability_chosen_slices_only"]
    ]
    lines += [
        "",
        "Neighbouring slices of one volume are not independent cases; the bins are small. Read the table as: "
        "fraction exact rises with the confidence bin; on the 64 slices every bin's fraction exact is at or above "
        "its mean confidence (conservative), on the 24 chosen slices all but the two-case lowest bin (0 of 2 exact) "
        "and, within rounding, the 0.70-0.85 bin (0.80 exact at mean 0.81).",
        "",
        "| case | group | reference | predicted (in span) | predicted (image) | confidence | flag | reasons |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['case']} | {r['group']} | {r['n_ref']} | {r['n_pred_in_span']} | {r['n_pred_image']} | "
        f"{r['count_confidence']} | {'yes' if r['count_flag'] else ''} | {'; '.join(r['reasons'])} |"
        for r in res["per_case"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    res = evaluate(args.threads)
    write_results("slice2d_count", res, threads=args.threads, markdown=markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
