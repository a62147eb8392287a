"""What the anatomy clean-up (``neurospine.spine.cleanup``) changes: false-positive volume and Dice.

Run from the repository root: ``OMP_NUM_THREADS=1 python -m benchmarks.spine_cleanup``. Every labelled case of
the shared fcs sets (VB1, VB2, VB3, IVD; held-out and training cases) and ``tptbox_samples`` MRI goes through
``spine.api.segment`` twice on the same network output (the network runs once per case and its class map is
cached under ``--cache-dir``): without the clean-up (``cleanup=False``, the pipeline as it was) and with it.

False-positive (FP) volume, defined in ``docs/decisions/spine-cleanup.md`` before scoring: labelled output voxels
outside the reference's column corridor (axis through the reference structures' centroids, extrapolated
linearly beyond the end ones; from ``depth/2 + 15 mm`` in front of the axis to ``depth/2 + 100 mm`` behind it,
within 60 mm left-right). Dice (per body, per disc, tptbox 14 structures) only on the held-out splits of
``neurospine.spine.data`` (unchanged), the same measures as ``benchmarks/spine.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import numpy.typing as npt

from benchmarks.common import RESULTS_DIR, SHARED_DATA, write_results

THREADS = 1
#: corridor margins (mm), see the module docstring
ANTERIOR_MM = 15.0
POSTERIOR_MM = 100.0
LATERAL_MM = 60.0
#: tptbox (all structures labelled): a labelled voxel farther than this from every reference voxel is an FP
NEAR_MM = 10.0
SETS = ("vb2", "vb1", "vb3", "ivd")


def corridor(ref_pir: npt.NDArray[np.integer], spacing_mm: tuple[float, float, float]) -> npt.NDArray[np.bool_]:
    """Column corridor (PIR) of a reference instance map (each id one body or disc)."""
    ids = [int(v) for v in np.unique(ref_pir) if v]
    if not ids:
        raise ValueError("corridor needs a reference with at least one labelled structure")
    cents, depths = [], []
    for i in ids:
        pts = np.nonzero(ref_pir == i)
        cents.append([float(np.mean(a)) for a in pts])
        depths.append((float(np.percentile(pts[0], 98)) - float(np.percentile(pts[0], 2)) + 1) * spacing_mm[0])
    c = np.array(sorted(cents, key=lambda t: t[1]))
    rows = np.arange(ref_pir.shape[1], dtype=np.float64)

    def axis(col: int) -> npt.NDArray[np.float64]:
        if len(c) == 1:
            return np.full(rows.size, c[0, col])
        line = np.interp(rows, c[:, 1], c[:, col])
        top_slope = (c[1, col] - c[0, col]) / max(c[1, 1] - c[0, 1], 1e-6)
        bot_slope = (c[-1, col] - c[-2, col]) / max(c[-1, 1] - c[-2, 1], 1e-6)
        line = np.where(rows < c[0, 1], c[0, col] + (rows - c[0, 1]) * top_slope, line)
        return np.where(rows > c[-1, 1], c[-1, col] + (rows - c[-1, 1]) * bot_slope, line)

    half = float(np.median(depths)) / 2.0
    p = np.arange(ref_pir.shape[0], dtype=np.float64)[:, None]
    ap = (p >= axis(0)[None, :] - (half + ANTERIOR_MM) / spacing_mm[0]) & (
        p <= axis(0)[None, :] + (half + POSTERIOR_MM) / spacing_mm[0]
    )
    r = np.arange(ref_pir.shape[2], dtype=np.float64)[None, :]
    lr = np.abs(r - axis(2)[:, None]) * spacing_mm[2] <= LATERAL_MM
    return ap[:, :, None] & lr[None, :, :]


def fp_scores(seg: Any, labels: Any, ref_structures: npt.NDArray[np.integer]) -> dict[str, float]:
    """FP volumes (mm^3) of one segmentation against a reference (``labels`` gives the input grid)."""
    from neurospine.io import Volume, reorient

    def pir(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.asarray(reorient(Volume(np.asarray(arr), labels.affine), "PIR")[0].data)

    sp_vol = reorient(Volume(np.asarray(ref_structures), labels.affine), "PIR")[0]
    sp = sp_vol.spacing_mm
    inside = corridor(np.asarray(sp_vol.data), (sp[0], sp[1], sp[2]))
    vox = float(np.prod(sp))
    sem = pir(seg.semantic_input) > 0
    vert = pir(seg.seg_vert_input)
    vert = (vert > 0) & (vert < 100)
    return {
        "labelled_mm3": round(float(sem.sum()) * vox, 1),
        "fp_mm3": round(float((sem & ~inside).sum()) * vox, 1),
        "vertebra_mm3": round(float(vert.sum()) * vox, 1),
        "vertebra_fp_mm3": round(float((vert & ~inside).sum()) * vox, 1),
    }


def near_fp_mm3(seg: Any, ref_any: npt.NDArray[np.bool_], spacing_mm: tuple[float, float, float]) -> float:
    """Labelled output volume (mm^3) farther than ``NEAR_MM`` from every reference-labelled voxel."""
    from scipy import ndimage

    dist = ndimage.distance_transform_edt(~ref_any, sampling=spacing_mm)
    far = (np.asarray(seg.semantic_input) > 0) & (dist > NEAR_MM)
    return round(float(far.sum()) * float(np.prod(spacing_mm)), 1)


class RawCache:
    """Caches the network's class map per case, so both pipeline variants see the same network output."""

    def __init__(self, folder: Path, model_sha: str) -> None:
        self.folder = folder
        self.sha = model_sha[:12]
        folder.mkdir(parents=True, exist_ok=True)

    def patch(self, key: str) -> Any:
        from neurospine.spine import api

        real: Callable[..., Any] = api.predict_classes_cropped
        path = self.folder / f"{key}_{self.sha}.npz"

        def cached(session: Any, image: npt.NDArray[np.float32], spacing_mm: Any, **kw: Any) -> Any:
            if path.is_file():
                with np.load(path) as z:
                    if z["raw"].shape == image.shape and float(z["digest"]) == _digest(image):
                        return z["raw"]
            raw = real(session, image, spacing_mm, **kw)
            np.savez_compressed(path, raw=raw, digest=np.float64(_digest(image)))
            return raw

        return mock.patch.object(api, "predict_classes_cropped", cached)


def _digest(image: npt.NDArray[np.float32]) -> float:
    return float(int(hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:12], 16))


def _both(cache: RawCache, key: str, image: Any) -> tuple[Any, Any, float]:
    from neurospine.spine.api import segment

    with cache.patch(key):
        before = segment(image, threads=THREADS, cleanup=False)
        t = time.perf_counter()
        after = segment(image, threads=THREADS, cleanup=True)
    return before, after, time.perf_counter() - t


def _disc_scores(seg: Any, ref: npt.NDArray[np.integer]) -> dict[str, float]:
    from neurospine.metrics import match_instances

    vert = np.asarray(seg.seg_vert_input)
    pred = np.where((vert > 100) & (vert < 200), vert, 0)
    m = match_instances(pred, ref, method="hungarian", threshold=0.1)
    by = {p.ref_id: p.dice for p in m.pairs}
    return {str(r): round(by.get(r, 0.0), 4) for r in sorted(int(v) for v in np.unique(ref) if v)}


def labelled_cases(
    only: list[str] | None = None, held_out: bool | None = None, skip: frozenset[str] = frozenset()
) -> Iterator[tuple[str, bool, Any]]:
    """(set, held out, ``EvalCase``) of every labelled fcs case (``held_out``: only held-out / only training cases;
    ``skip``: names; ``only``: just these names)."""
    from neurospine.spine import data as D

    folders: dict[str, tuple[str, tuple[str, ...] | None]] = {
        "vb2": (D.VB2_DIR, D.VB2_TEST),
        "vb1": (D.VB1_DIR, None),
        "vb3": (D.VB3_DIR, D.VB3_TEST),
        "ivd": (D.IVD_DIR, D.IVD_TEST),
    }
    for which in SETS:
        folder, held = folders[which]
        for man in D.manifest(SHARED_DATA, folder):
            name = str(man["case"])
            is_held = held is None or name in held
            if (only and name not in only) or name in skip or (held_out is not None and is_held != held_out):
                continue
            yield which, is_held, D.load_eval_case(SHARED_DATA, folder, man)


def held_out_dice(which: str, seg: Any, case: Any) -> dict[str, Any]:
    """Per-disc Dice (IVD) or per-body Dice (the VB sets) of one segmentation against a held-out case."""
    from benchmarks.spine import body_scores, lateral_spacing_mm

    ref = np.asarray(case.labels.data)
    if which == "ivd":
        return {"disc_dice": _disc_scores(seg, ref)}
    return {"body_dice": body_scores(seg, ref, lateral_spacing_mm(case.labels))["per_body_dice"]}


def bench_sets(
    cache: RawCache, only: list[str] | None = None, held_out: bool | None = None, skip: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Rows of every labelled fcs case (``held_out``: only held-out / only training cases; ``skip``: names)."""
    rows = []
    for which, is_held, case in labelled_cases(only, held_out, skip):
        name = case.name
        t = time.perf_counter()
        before, after, post_s = _both(cache, name, case.image)
        ref = np.asarray(case.labels.data)
        row: dict[str, Any] = {
            "case": name,
            "set": which,
            "held_out": is_held,
            "fp_before": fp_scores(before, case.labels, ref),
            "fp_after": fp_scores(after, case.labels, ref),
            "removed_mm3_model_grid": after.cleanup.as_dict()["removed_mm3"],
            "names_before": [before.names.get(k) for k in sorted(before.names)],
            "names_after": [after.names.get(k) for k in sorted(after.names)],
            "naming_before": [before.naming.anchor, round(before.naming.confidence, 3)],
            "naming_after": [after.naming.anchor, round(after.naming.confidence, 3)],
            "seconds_case": round(time.perf_counter() - t, 1),
            "seconds_pipeline_after": round(post_s, 1),
        }
        if row["held_out"]:
            for tag, seg in (("before", before), ("after", after)):
                row.update({f"{k}_{tag}": v for k, v in held_out_dice(which, seg, case).items()})
        rows.append(row)
        print(which, row, flush=True)
    return rows


def tptbox_mri() -> tuple[Any, Any, npt.NDArray[np.integer], npt.NDArray[np.integer]]:
    """The tptbox MRI case: image, sub-region label volume, its map (50 merged into 49) and the body instances."""
    from neurospine.io import load_volume

    folder = SHARED_DATA / "tptbox_samples"
    img = load_volume(folder / "tpt-mri_img.nii.gz")
    sub_vol = load_volume(folder / "tpt-mri_subreg.nii.gz", check_intensity=False)
    subreg = np.asarray(sub_vol.data).copy()
    vert = np.asarray(load_volume(folder / "tpt-mri_vert.nii.gz", check_intensity=False).data)
    subreg[subreg == 50] = 49
    bodies = np.where((subreg == 49) & (vert > 0) & (vert < 100), vert, 0)
    return img, sub_vol, subreg, bodies


def bench_tptbox(cache: RawCache) -> dict[str, Any]:
    from neurospine.labels import SEMANTIC_OUTPUT_VALUES
    from neurospine.metrics import dice

    img, sub_vol, subreg, bodies = tptbox_mri()
    before, after, post_s = _both(cache, "tpt-mri", img)
    out: dict[str, Any] = {"case": "tpt-mri", "seconds_pipeline_after": round(post_s, 1)}
    for tag, seg in (("before", before), ("after", after)):
        sem = np.asarray(seg.semantic_input)
        per = {
            str(v): round(float(dice(sem == v, subreg == v)), 4) for v in SEMANTIC_OUTPUT_VALUES if (subreg == v).any()
        }
        out[f"structure_dice_{tag}"] = per
        out[f"mean_dice_{tag}"] = round(float(np.mean(list(per.values()))), 4)
        out[f"fp_{tag}"] = fp_scores(seg, sub_vol, bodies)
        out[f"fp_{tag}"]["near_fp_mm3"] = near_fp_mm3(seg, subreg > 0, sub_vol.spacing_mm)
    out["removed_mm3_model_grid"] = after.cleanup.as_dict()["removed_mm3"]
    print("tptbox", out, flush=True)
    return out


def summarise(rows: list[dict[str, Any]], tpt: dict[str, Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for which in SETS:
        rs = [r for r in rows if r["set"] == which]
        if not rs:
            continue
        s: dict[str, Any] = {"cases": len(rs), "held_out": sum(r["held_out"] for r in rs)}
        for tag in ("before", "after"):
            for k in ("fp_mm3", "vertebra_fp_mm3", "labelled_mm3", "vertebra_mm3"):
                s[f"{k}_{tag}"] = round(sum(r[f"fp_{tag}"][k] for r in rs), 1)
            s[f"cases_with_fp_over_1000mm3_{tag}"] = sum(r[f"fp_{tag}"]["fp_mm3"] > 1000 for r in rs)
            held = [r for r in rs if r["held_out"]]
            if which == "ivd":
                d = [v for r in held for v in r.get(f"disc_dice_{tag}", {}).values()]
                s[f"per_disc_dice_{tag}"] = round(float(np.mean(d)), 4) if d else None
            else:
                per_case = [float(np.mean(r[f"body_dice_{tag}"])) for r in held if r.get(f"body_dice_{tag}")]
                s[f"per_body_dice_{tag}"] = round(float(np.mean(per_case)), 4) if per_case else None
        s["names_changed"] = sum(r["names_before"] != r["names_after"] for r in rs)
        summary[which] = s
    if tpt is not None:
        summary["tptbox"] = {
            "mean_dice_before": tpt["mean_dice_before"],
            "mean_dice_after": tpt["mean_dice_after"],
            **{f"{k}_{tag}": tpt[f"fp_{tag}"][k] for tag in ("before", "after") for k in ("fp_mm3", "near_fp_mm3")},
        }
    return summary


def decide(summary: dict[str, Any]) -> dict[str, Any]:
    """The rule of docs/decisions/spine-cleanup.md."""
    drops = {}
    for which, key in (("vb2", "per_body_dice"), ("vb1", "per_body_dice"), ("vb3", "per_body_dice")):
        if which in summary and summary[which].get(f"{key}_before") is not None:
            drops[which] = round(summary[which][f"{key}_before"] - summary[which][f"{key}_after"], 4)
    if "ivd" in summary and summary["ivd"].get("per_disc_dice_before") is not None:
        drops["ivd"] = round(summary["ivd"]["per_disc_dice_before"] - summary["ivd"]["per_disc_dice_after"], 4)
    if "tptbox" in summary:
        drops["tptbox"] = round(summary["tptbox"]["mean_dice_before"] - summary["tptbox"]["mean_dice_after"], 4)
    fp_b = sum(v.get("fp_mm3_before", 0.0) for v in summary.values()) + summary.get("tptbox", {}).get(
        "fp_mm3_before", 0.0
    )
    fp_a = sum(v.get("fp_mm3_after", 0.0) for v in summary.values()) + summary.get("tptbox", {}).get(
        "fp_mm3_after", 0.0
    )
    ok = all(d <= 0.005 for d in drops.values()) and fp_a < fp_b
    return {"dice_drops": drops, "fp_mm3_total_before": fp_b, "fp_mm3_total_after": fp_a, "adopt": ok}


def markdown(p: dict[str, Any]) -> str:
    s, d = p["summary"], p["decision"]
    lines = [
        "# Anatomy clean-up: false-positive volume and Dice, without / with `spine.cleanup`",
        "",
        "Same network output through the pipeline without and with the clean-up. FP = labelled output voxels "
        f"outside the reference column corridor ({ANTERIOR_MM:.0f} mm in front of / {POSTERIOR_MM:.0f} mm behind "
        f"the reference bodies or discs, +-{LATERAL_MM:.0f} mm left-right; docs/decisions/spine-cleanup.md). FP "
        "volumes over the cases listed (held-out and, when included, training cases); Dice on the held-out cases "
        f"only. Training cases included: {'yes' if p.get('training_cases_included') else 'no'}.",
        "",
        (
            f"Model {p.get('model')}. Rule: adopt if no Dice drops by more than 0.005 and the FP volume falls. "
            f"**Decision: {'adopt' if d['adopt'] else 'reject'}** (Dice drops {d['dice_drops']})."
            if d["dice_drops"]
            else f"Model {p.get('model')}. Training cases only: FP volumes (Dice and the decision are measured on "
            "the held-out cases, spine_cleanup.md)."
        ),
        "",
        "| set | cases (held-out) | FP mm3 before | FP mm3 after | vertebra FP mm3 before | after | "
        "scans with FP > 1 cm3 before / after | Dice before | Dice after | names changed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for which in SETS:
        if which not in s:
            continue
        v = s[which]
        key = "per_disc_dice" if which == "ivd" else "per_body_dice"
        lines.append(
            f"| {which.upper()} | {v['cases']} ({v['held_out']}) | {v['fp_mm3_before']:.0f} | "
            f"{v['fp_mm3_after']:.0f} | "
            f"{v['vertebra_fp_mm3_before']:.0f} | {v['vertebra_fp_mm3_after']:.0f} | "
            f"{v['cases_with_fp_over_1000mm3_before']} / {v['cases_with_fp_over_1000mm3_after']} | "
            f"{v[key + '_before']} | {v[key + '_after']} | {v['names_changed']} |"
        )
    if "tptbox" in s:
        t = s["tptbox"]
        lines.append(
            f"| tptbox MRI | 1 (1) | {t['fp_mm3_before']:.0f} | {t['fp_mm3_after']:.0f} | | | | "
            f"{t['mean_dice_before']} (14-structure mean) | {t['mean_dice_after']} | |"
        )
        lines += [
            "",
            f"tptbox labelled voxels farther than {NEAR_MM:.0f} mm from every reference structure: "
            f"{t['near_fp_mm3_before']:.0f} mm3 before, {t['near_fp_mm3_after']:.0f} mm3 after.",
        ]
    lines += [
        "",
        f"Total FP volume: {d['fp_mm3_total_before']:.0f} mm3 before, {d['fp_mm3_total_after']:.0f} mm3 after.",
        "",
        "| case | set | held-out | FP mm3 before | after | vertebra FP mm3 before | after | removed (model grid mm3) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in p["cases"]:
        rem = ", ".join(f"{k} {v:.0f}" for k, v in r["removed_mm3_model_grid"].items())
        lines.append(
            f"| {r['case']} | {r['set']} | {'yes' if r['held_out'] else 'no'} | {r['fp_before']['fp_mm3']:.0f} | "
            f"{r['fp_after']['fp_mm3']:.0f} | {r['fp_before']['vertebra_fp_mm3']:.0f} | "
            f"{r['fp_after']['vertebra_fp_mm3']:.0f} | {rem} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from neurospine.models import load_card

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "neurospine_spine_raw")
    ap.add_argument(
        "--cases", nargs="*", help="only these case names (no results file written, except with --add-training)"
    )
    ap.add_argument("--results-name", default="spine_cleanup")
    part = ap.add_mutually_exclusive_group()
    part.add_argument("--held-out-only", action="store_true", help="held-out cases and tptbox only")
    part.add_argument(
        "--add-training", action="store_true", help="add the training cases to the last results (same model)"
    )
    args = ap.parse_args(argv)
    card = load_card("spine_semantic")
    cache = RawCache(args.cache_dir, card.sha256)
    t = time.perf_counter()
    old: dict[str, Any] = {}
    previous = RESULTS_DIR / f"{args.results_name}.json"
    if args.add_training and previous.is_file():
        old = json.loads(previous.read_text(encoding="utf-8"))
        if not str(old.get("model", "")).endswith(f"(sha256 {card.sha256[:12]})"):
            raise SystemExit(f"{previous} was measured with another model; rerun without --add-training")
    held: bool | None = True if args.held_out_only else False if args.add_training else None
    done = frozenset(str(r["case"]) for r in old.get("cases", []))
    rows = [*old.get("cases", []), *bench_sets(cache, args.cases, held, done)]
    tpt = None if args.cases else old.get("tptbox") if args.add_training else bench_tptbox(cache)
    summary = summarise(rows, tpt)
    payload = {
        "model": f"{card.name} {card.version} (sha256 {card.sha256[:12]})",
        "summary": summary,
        "decision": decide(summary),
        "cases": rows,
        "tptbox": tpt,
        "seconds_total": round(time.perf_counter() - t, 1) + float(old.get("seconds_total", 0.0)),
        "training_cases_included": any(not r["held_out"] for r in rows),
    }
    print(payload["summary"], payload["decision"], flush=True)
    if not args.cases or args.add_training:
        write_results(args.results_name, payload, threads=THREADS, markdown=markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
