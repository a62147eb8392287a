"""No sacrum or vertebra in the pelvis: the clean-up as committed against the candidates of
``docs/decisions/spine-pelvic-spill.md`` (rules written there before scoring): round 1 A and B against the clean-up
before them, round 2 C against A, round 3 D against C.

Run from the repository root: ``OMP_NUM_THREADS=1 python -m benchmarks.spine_pelvic --round 3``. The network runs
once per case (class map cached under ``--cache-dir``, shared with ``benchmarks.spine_cleanup``); the pipeline after it
runs once per variant. A variant is a set of values for the clean-up's constants (``neurospine.spine.cleanup``);
``committed`` is the clean-up before this change (those steps off).

Measured per variant:

- every labelled fcs case (held-out and training) and tptbox MRI: corridor FP volume (``benchmarks.spine_cleanup``),
  output sacrum volume, number of vertebrae, level names; Dice on the held-out cases (per body, per disc,
  tptbox 14-structure mean);
- real and synthetic reference label maps run through the clean-up itself (panoptica SPINEPS semantic
  reference, tptbox MRI and CT sub-region maps, the engine's truth on fresh lumbar seeds): voxels a candidate
  removes that the committed clean-up keeps;
- the synthetic lumbar naming seeds of ``benchmarks.spine_naming`` (97001-97406): names turned wrong, flags lost.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import numpy.typing as npt

from benchmarks.common import SHARED_DATA, write_results
from benchmarks.spine_cleanup import (
    SETS,
    RawCache,
    fp_scores,
    held_out_dice,
    labelled_cases,
    near_fp_mm3,
    tptbox_mri,
)

THREADS = 1
INF = float("inf")
#: clean-up constants per variant and round: round 1 (committed = the clean-up before A and B), round 2
#: (committed = A, candidate C), round 3 (committed = C, candidate D)
_OLD = {
    "SACRUM_CONTACT_BELOW_MM": INF,
    "BODY_BELOW_LOWEST_MM": INF,
    "SACRUM_OPENING_MM": 2.0,
    "SACRUM_NECK_MM": 0.0,
    "COLUMN_GAP_MM": INF,
}
_A = {**_OLD, "SACRUM_CONTACT_BELOW_MM": 20.0, "BODY_BELOW_LOWEST_MM": 20.0}
_C = {**_A, "SACRUM_NECK_MM": 3.0}
ROUNDS: dict[str, dict[str, dict[str, float]]] = {
    "1": {"committed": _OLD, "A": _A, "B": {**_A, "SACRUM_OPENING_MM": 3.0}},
    "2": {"committed": _A, "C": _C},
    "3": {"committed": _C, "D": {**_C, "COLUMN_GAP_MM": 30.0}},
}
#: synthetic truth maps for the reference check: fresh lumbar seeds no trainer or other benchmark uses
SYNTH_REF_SEEDS = tuple(range(98501, 98511))
DICE_TOLERANCE = 0.005


Variants = dict[str, dict[str, float]]


@contextlib.contextmanager
def variant(values: dict[str, float]) -> Iterator[None]:
    """The clean-up with these constants (``neurospine.spine.cleanup``)."""
    from neurospine.spine import cleanup

    with contextlib.ExitStack() as stack:
        for key, value in values.items():
            stack.enter_context(mock.patch.object(cleanup, key, value))
        yield


def _summary_of(seg: Any, labels: Any, ref: npt.NDArray[np.integer]) -> dict[str, Any]:
    from neurospine.spine import classes as C

    vox = float(np.prod(seg.grid.spacing_mm))
    return {
        "fp": fp_scores(seg, labels, ref),
        "sacrum_mm3": round(float((seg.classes == C.SACRUM).sum()) * vox, 1),
        "vertebrae": len(seg.instances.vertebrae),
        "names": [seg.names[k] for k in sorted(seg.names)],
        "naming": [seg.naming.anchor, round(float(seg.naming.confidence), 3)],
        "removed_mm3_model_grid": seg.cleanup.as_dict()["removed_mm3"],
    }


def bench_real(cache: RawCache, variants: Variants, only: list[str] | None = None) -> list[dict[str, Any]]:
    """Every labelled fcs case, each variant on the same cached network output."""
    from neurospine.spine.api import segment

    rows = []
    for which, is_held, case in labelled_cases(only):
        ref = np.asarray(case.labels.data)
        row: dict[str, Any] = {"case": case.name, "set": which, "held_out": is_held}
        for v in variants:
            with cache.patch(case.name), variant(variants[v]):
                seg = segment(case.image, threads=THREADS)
            row[v] = _summary_of(seg, case.labels, ref) | (held_out_dice(which, seg, case) if is_held else {})
        rows.append(row)
        print(case.name, {v: (row[v]["fp"]["fp_mm3"], row[v]["sacrum_mm3"], row[v]["vertebrae"]) for v in variants})
    return rows


def bench_tptbox(cache: RawCache, variants: Variants) -> dict[str, Any]:
    from neurospine.labels import SEMANTIC_OUTPUT_VALUES
    from neurospine.metrics import dice
    from neurospine.spine.api import segment

    img, sub_vol, subreg, bodies = tptbox_mri()
    out: dict[str, Any] = {"case": "tpt-mri"}
    for v in variants:
        with cache.patch("tpt-mri"), variant(variants[v]):
            seg = segment(img, threads=THREADS)
        sem = np.asarray(seg.semantic_input)
        per = [float(dice(sem == s, subreg == s)) for s in SEMANTIC_OUTPUT_VALUES if (subreg == s).any()]
        fp = fp_scores(seg, sub_vol, bodies)
        fp["near_fp_mm3"] = near_fp_mm3(seg, subreg > 0, sub_vol.spacing_mm)
        out[v] = {"mean_dice": round(float(np.mean(per)), 4), "fp": fp}
    print("tptbox", out, flush=True)
    return out


def _reference_maps() -> Iterator[tuple[str, npt.NDArray[np.uint8], tuple[float, float, float]]]:
    """(name, network-class map in PIR, spacing) of every real and synthetic SPINEPS-style reference."""
    from neurospine.io import load_volume, reorient
    from neurospine.spine.classes import spineps_to_net

    real = (
        ("panoptica-semantic_ref", SHARED_DATA / "label_only_refs" / "panoptica-semantic_ref.nii.gz"),
        ("tpt-mri_subreg", SHARED_DATA / "tptbox_samples" / "tpt-mri_subreg.nii.gz"),
        ("tpt-ct_subreg", SHARED_DATA / "tptbox_samples" / "tpt-ct_subreg.nii.gz"),
    )
    for name, path in real:
        vol = reorient(load_volume(path, check_intensity=False), "PIR")[0]
        sp = vol.spacing_mm
        yield name, spineps_to_net(np.asarray(vol.data)), (sp[0], sp[1], sp[2])
    from benchmarks.spine_naming import config
    from neurospine.synth import generate_case

    for seed in SYNTH_REF_SEEDS:
        case = generate_case(seed, config(seed, None))
        vol = reorient(case.semantic, "PIR")[0]
        sp = vol.spacing_mm
        yield f"synth-{seed}", spineps_to_net(np.asarray(vol.data)), (sp[0], sp[1], sp[2])


def bench_references(variants: Variants) -> list[dict[str, Any]]:
    """Reference label maps through the clean-up: what each candidate removes beyond the committed clean-up."""
    from neurospine.spine import classes as C
    from neurospine.spine.cleanup import clean_anatomy

    rows = []
    for name, cls, sp in _reference_maps():
        kept = {}
        for v in variants:
            with variant(variants[v]):
                kept[v] = clean_anatomy(cls, sp)[0] > 0
        vox = float(np.prod(sp))
        row: dict[str, Any] = {
            "reference": name,
            "labelled_mm3": round(float((cls > 0).sum()) * vox, 1),
            "sacrum_mm3": round(float((cls == C.SACRUM).sum()) * vox, 1),
            "removed_by_committed_mm3": round(float(((cls > 0) & ~kept["committed"]).sum()) * vox, 1),
        }
        for v in list(variants)[1:]:
            row[f"extra_removed_{v}_mm3"] = round(float((kept["committed"] & ~kept[v]).sum()) * vox, 1)
        rows.append(row)
        print(row, flush=True)
    return rows


def bench_naming(cache: RawCache, variants: Variants) -> list[dict[str, Any]]:
    """The synthetic lumbar naming seeds: per variant, per true body, right and flagged."""
    from benchmarks.spine_naming import cases, score_case
    from neurospine.spine.naming import CONFIDENT

    rows = []
    for seed, kind in cases():
        row: dict[str, Any] = {"seed": seed, "kind": kind or "typical"}
        for v in variants:
            with variant(variants[v]):
                r = score_case(seed, kind, cache, CONFIDENT)
            row[v] = {b["truth"]: [b["right"], b["flagged"]] for b in r["bodies"]}
        rows.append(row)
    return rows


def _mean_dice(rows: list[dict[str, Any]], which: str, v: str) -> float | None:
    key = "disc_dice" if which == "ivd" else "body_dice"
    vals = []
    for r in rows:
        if r["set"] != which or not r["held_out"] or key not in r[v]:
            continue
        d = r[v][key]
        per = list(d.values()) if isinstance(d, dict) else list(d)
        if which == "ivd":
            vals.extend(per)
        elif per:
            vals.append(float(np.mean(per)))
    return round(float(np.mean(vals)), 4) if vals else None


def decide(
    real: list[dict[str, Any]],
    tpt: dict[str, Any] | None,
    refs: list[dict[str, Any]],
    naming: list[dict[str, Any]],
    preference: tuple[str, ...] = ("B", "A"),
) -> dict[str, Any]:
    """The rule of docs/decisions/spine-pelvic-spill.md for each candidate in ``preference`` (the first that passes
    is chosen; none: ``committed``)."""
    out: dict[str, Any] = {}
    for v in preference:
        drops = {}
        for which in SETS:
            b, a = _mean_dice(real, which, "committed"), _mean_dice(real, which, v)
            if b is not None and a is not None:
                drops[which] = round(b - a, 4)
        if tpt is not None:
            drops["tptbox"] = round(tpt["committed"]["mean_dice"] - tpt[v]["mean_dice"], 4)
        fp_b = sum(r["committed"]["fp"]["fp_mm3"] for r in real) + (tpt["committed"]["fp"]["fp_mm3"] if tpt else 0.0)
        fp_a = sum(r[v]["fp"]["fp_mm3"] for r in real) + (tpt[v]["fp"]["fp_mm3"] if tpt else 0.0)
        renamed = [r["case"] for r in real if r[v]["names"] != r["committed"]["names"]]
        extra_ref = {r["reference"]: r[f"extra_removed_{v}_mm3"] for r in refs if r[f"extra_removed_{v}_mm3"] > 0}
        turned_wrong = lost_flag = 0
        for r in naming:
            for truth, (right, flagged) in r[v].items():
                old = r["committed"].get(truth)
                if old is None:
                    continue
                turned_wrong += bool(old[0] and not right)
                lost_flag += bool((not old[0]) and old[1] and not right and not flagged)
        checks = {
            "1_dice": all(d <= DICE_TOLERANCE for d in drops.values()),
            "2_fp_not_up": fp_a <= fp_b,
            "3_names_unchanged_or_listed": True,  # changes are listed below and looked at (rule 3)
            "4_references_untouched": not extra_ref,
            "5_synthetic_naming": turned_wrong == 0 and lost_flag == 0,
        }
        out[v] = {
            "dice_drops": drops,
            "fp_mm3_committed": round(fp_b, 1),
            "fp_mm3": round(fp_a, 1),
            "renamed_cases": renamed,
            "reference_extra_removed_mm3": extra_ref,
            "synthetic_names_turned_wrong": turned_wrong,
            "synthetic_flags_lost": lost_flag,
            "checks": checks,
            "passes": all(checks.values()),
        }
    out["chosen"] = next((v for v in preference if out[v]["passes"]), "committed")
    return out


def markdown(p: dict[str, Any]) -> str:
    d = p["decision"]
    cands = [v for v in p["variants"] if v != "committed"]
    lines = [
        f"# No sacrum or vertebra in the pelvis: committed clean-up vs candidate(s) {', '.join(cands)}",
        "",
        f"Model {p['model']}. Rule and candidates: docs/decisions/spine-pelvic-spill.md (written before scoring). "
        "Same network output per case for every variant. FP = corridor false-positive volume "
        "(benchmarks/spine_cleanup.py). Rule 3 (names) is judged by looking at each renamed case.",
        "",
        f"**Chosen: {d['chosen']}**",
        "",
        "| check | " + " | ".join(cands) + " |",
        "|---|" + "---|" * len(cands),
    ]
    for key in d[cands[0]]["checks"]:
        lines.append(f"| {key} | " + " | ".join(str(d[v]["checks"][key]) for v in cands) + " |")
    for key in (
        "dice_drops",
        "fp_mm3_committed",
        "fp_mm3",
        "renamed_cases",
        "reference_extra_removed_mm3",
        "synthetic_names_turned_wrong",
        "synthetic_flags_lost",
    ):
        lines.append(f"| {key} | " + " | ".join(str(d[v][key]) for v in cands) + " |")
    lines += [
        "",
        f"Per case (committed -> {' -> '.join(cands)}): sacrum mm3, vertebrae, corridor FP mm3, naming (anchor, "
        "confidence).",
        "",
        "| case | held-out | sacrum mm3 | vertebrae | FP mm3 | naming | names |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in p["real"]:
        vs = list(p["variants"])

        def col(f: Any, r: dict[str, Any] = r, vs: list[str] = vs) -> str:
            return " -> ".join(str(f(r[v])) for v in vs)

        names = (
            "same"
            if all(r[v]["names"] == r["committed"]["names"] for v in vs)
            else col(lambda x: ",".join(n for n in x["names"] if n))
        )
        lines.append(
            f"| {r['case']} | {'yes' if r['held_out'] else 'no'} | {col(lambda x: round(x['sacrum_mm3']))} | "
            f"{col(lambda x: x['vertebrae'])} | {col(lambda x: round(x['fp']['fp_mm3']))} | "
            f"{col(lambda x: tuple(x['naming']))} | {names} |"
        )
    lines += [
        "",
        "Reference label maps through the clean-up (mm3): what a candidate removes that the committed clean-up keeps.",
        "",
        "| reference | labelled | sacrum | removed by committed | "
        + " | ".join(f"extra removed {v}" for v in cands)
        + " |",
        "|---|---|---|---|" + "---|" * len(cands),
    ]
    for r in p["references"]:
        extra = " | ".join(f"{r[f'extra_removed_{v}_mm3']:.0f}" for v in cands)
        lines.append(
            f"| {r['reference']} | {r['labelled_mm3']:.0f} | {r['sacrum_mm3']:.0f} | "
            f"{r['removed_by_committed_mm3']:.0f} | {extra} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from neurospine.models import load_card

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "neurospine_spine_raw")
    ap.add_argument("--cases", nargs="*", help="only these real cases (no results file written)")
    ap.add_argument("--round", choices=sorted(ROUNDS), default="3", help="1: A and B; 2: C against A; 3: D against C")
    ap.add_argument("--results-name", help="default spine_pelvic (round 1), spine_pelvic_round<N> otherwise")
    args = ap.parse_args(argv)
    variants = ROUNDS[args.round]
    name = args.results_name or ("spine_pelvic" if args.round == "1" else f"spine_pelvic_round{args.round}")
    card = load_card("spine_semantic")
    cache = RawCache(args.cache_dir, card.sha256)
    t = time.perf_counter()
    real = bench_real(cache, variants, args.cases)
    if args.cases:
        return 0
    tpt = bench_tptbox(cache, variants)
    refs = bench_references(variants)
    naming = bench_naming(cache, variants)
    payload = {
        "model": f"{card.name} {card.version} (sha256 {card.sha256[:12]})",
        "round": args.round,
        "variants": {n: {k: (None if x == INF else x) for k, x in v.items()} for n, v in variants.items()},
        "decision": decide(real, tpt, refs, naming, tuple(reversed([v for v in variants if v != "committed"]))),
        "real": real,
        "tptbox": tpt,
        "references": refs,
        "naming": naming,
        "seconds_total": round(time.perf_counter() - t, 1),
    }
    print(payload["decision"], flush=True)
    write_results(name, payload, threads=THREADS, markdown=markdown(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
