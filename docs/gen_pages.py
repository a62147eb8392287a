"""Pages generated at build time (mkdocs-gen-files), so their figures cannot drift from the records.

- ``benchmarks.md``: headline figures and every scalar of ``benchmarks/results/*.json``, with provenance
  (date, commit, threads, machine) of each record;
- ``model-cards.md``: the shipped model cards (``src/neurospine/models/weights/*.json``);
- ``decisions/index.md``: the decision records under ``docs/decisions/`` with their titles;
- in each tool page, the line ``<!-- figures -->`` becomes that tool's table of headline figures.

A headline figure whose JSON path no longer exists is logged as a warning, which fails ``mkdocs build
--strict`` (the docs test): change :data:`HEADLINES` together with the benchmark that renamed it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CARDS = ROOT / "src" / "neurospine" / "models" / "weights"
DECISIONS = ROOT / "docs" / "decisions"
log = logging.getLogger("mkdocs.plugins.neurospine_gen_pages")

#: (tool, benchmark record, what, dotted JSON path, format) - the figures the README and tool pages quote
HEADLINES: list[tuple[str, str, str, str, str]] = [
    ("spine", "spine", "VB2 held-out per-body Dice", "vb2.mean_per_body_dice", "{:.3f}"),
    ("spine", "spine", "VB3 held-out per-body Dice", "vb3.mean_per_body_dice", "{:.3f}"),
    ("spine", "spine", "VB1 (other sites) per-body Dice", "vb1.mean_per_body_dice", "{:.3f}"),
    ("spine", "spine", "VB2 level naming accuracy", "vb2.naming_accuracy", "{:.0%}"),
    ("spine", "spine", "disc Dice (per disc)", "ivd.mean_per_disc_dice", "{:.3f}"),
    ("spine", "spine", "tptbox 14-structure mean Dice", "tptbox.mean_dice_present", "{:.3f}"),
    ("spine", "spine", "cord (60) Dice, errsm_30 sagittal T2w", "cord.sct-t2.cord_dice", "{:.3f}"),
    ("spine", "spine", "lumbar T2w wall time, s", "timing.t2_lumbar.wall_s_including_imports", "{:.1f}"),
    ("spine", "spine", "whole-spine wall time, s", "timing.synthetic_whole_spine.wall_s_including_imports", "{:.1f}"),
    ("spine", "spine", "whole-spine peak memory, MB", "timing.synthetic_whole_spine.peak_rss_mb", "{:.0f}"),
    ("cord", "cord", "mean Dice over contrasts", "summary.dice_mean", "{:.3f}"),
    ("cord", "cord", "lowest Dice over contrasts", "summary.dice_min", "{:.3f}"),
    ("cord", "cord", "across-contrast CSA CV", "summary.across_contrast_cv_mean", "{:.1%}"),
    ("cord", "cord", "largest per-level CSA error vs manual", "summary.per_level_abs_rel_err_max", "{:.1%}"),
    ("cord", "cord", "slowest image, s", "summary.seconds_max", "{:.2f}"),
    ("cord", "cord_gmc", "T2*w of unseen sites: mean Dice (challenge)", "summary.held_out_dice_mean", "{:.3f}"),
    ("cord", "cord_gm", "grey matter (--gm), unseen sites: mean Dice", "summary.held_out_dice_mean", "{:.3f}"),
    ("slice2d", "slice2d", "MR body Dice (median, pooled)", "summary.MR_pooled_excl_vb1.dice_body.median", "{:.3f}"),
    ("slice2d", "slice2d", "MR disc Dice (median, pooled)", "summary.MR_pooled_excl_vb1.dice_disc.median", "{:.3f}"),
    ("slice2d", "slice2d", "CT body Dice (tptbox, median)", "summary.ct_tptbox.dice_body.median", "{:.3f}"),
    ("slice2d", "slice2d", "X-ray body Dice (median)", "summary.xray.dice_body.median", "{:.3f}"),
    (
        "slice2d",
        "slice2d",
        "lordosis mean abs difference, deg",
        "lumbar_lordosis_l1_l5.pred_vs_ref_mean_abs_diff_deg",
        "{:.1f}",
    ),
    ("slice2d", "slice2d", "segment + instances per slice, s", "timing.segment_plus_instances_s_median", "{:.2f}"),
    ("slice2d", "slice2d_slice_choice", "auto slice: median distance to midline, mm", "median_distance_mm", "{:.1f}"),
    ("brainage", "brainage", "features: CV MAE, years", "features_cv.mean_over_folds.mae_years", "{:.2f}"),
    ("brainage", "brainage", "features: 95 % interval coverage", "features_cv.mean_over_folds.coverage_95", "{:.3f}"),
    ("brainage", "brainage_t1", "raw T1 CNN: TEST MAE, years", "t1.mae_years", "{:.2f}"),
    ("brainage", "brainage_t1", "raw T1 CNN: 95 % interval coverage", "t1.coverage_95", "{:.2f}"),
    ("brainage", "brainage_t1", "raw T1 CNN: seconds per image (median)", "t1.seconds_per_subject_median", "{:.2f}"),
    (
        "batch",
        "batch_throughput",
        "in-run overhead per spine case, % (3 runs)",
        "tasks.spine.in_run_overhead_pct",
        "range:{:.2f}",
    ),
    (
        "batch",
        "batch_throughput",
        "in-run overhead per brainage-t1 case, % (3 runs)",
        "tasks.brainage-t1.in_run_overhead_pct",
        "range:{:.1f}",
    ),
    (
        "evaluate",
        "metrics_speed",
        "semantic evaluation, every label, 512x512x17 voxels, s",
        "results.3.median_s",
        "{:.1f}",
    ),
    ("evaluate", "metrics_speed", "instance evaluation (CLI path), s", "results.6.median_s", "{:.1f}"),
    ("batch", "batch_throughput", "kill-and-resume: SIGKILLs", "kill_resume.totals.kills", "{:d}"),
    ("batch", "batch_throughput", "kill-and-resume: cases lost", "kill_resume.totals.lost", "{:d}"),
]

#: keys whose values are per-case detail, left out of the full listing
DETAIL_KEYS = {"cases", "per_case", "per_trial", "per_fold", "machine", "calibration_curve", "reference_all_volumes"}


def lookup(record: dict[str, Any], dotted: str) -> Any:
    value: Any = record
    for key in dotted.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            raise KeyError(dotted)
    return value


def flatten(value: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Scalar leaves as (dotted path, value), skipping per-case detail and lists."""
    if isinstance(value, dict):
        if depth >= 4:
            return
        for key, sub in value.items():
            if key in DETAIL_KEYS:
                continue
            yield from flatten(sub, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield prefix, value


def fmt_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


def load_records() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("*.json"))}


def provenance(record: dict[str, Any]) -> str:
    machine = record.get("machine") or {}
    cpus = machine.get("cpu_count", "?") if isinstance(machine, dict) else "?"
    return (
        f"run {record.get('date_utc', '?')}, commit `{record.get('commit', '?')}`, "
        f"{record.get('threads', '?')} thread(s), machine with {cpus} CPU(s)"
    )


def format_value(value: Any, form: str) -> str:
    """``form`` applied to a number; ``range:<form>`` prints the span of a list of numbers."""
    if form.startswith("range:"):
        inner = form.removeprefix("range:")
        if not isinstance(value, list) or not value:
            raise TypeError(form)
        return f"{inner.format(min(value))}-{inner.format(max(value))}"
    return form.format(value)


def headline_rows(records: dict[str, dict[str, Any]], tool: str | None = None) -> list[tuple[str, str, str, str]]:
    """(tool, figure, formatted value, record name) for the headline figures (of one tool)."""
    rows = []
    for t, name, what, dotted, form in HEADLINES:
        if tool is not None and t != tool:
            continue
        record = records.get(name)
        if record is None:
            log.warning("benchmarks: record benchmarks/results/%s.json is missing", name)
            continue
        try:
            text = format_value(lookup(record, dotted), form)
        except (KeyError, ValueError, TypeError):
            log.warning("benchmarks: %s.json has no usable %s (update docs/gen_pages.py)", name, dotted)
            continue
        rows.append((t, what, text, name))
    return rows


def tool_page(page: str, tool: str, records: dict[str, dict[str, Any]]) -> str:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    if "<!-- figures -->" not in text:
        log.warning("docs/%s has no <!-- figures --> line for the generated figures", page)
        return text
    depth = "../" * page.count("/")
    table = ["| figure | value |", "|---|---|"]
    used: dict[str, None] = {}
    for _t, what, value, name in headline_rows(records, tool):
        table.append(f"| {what} | **{value}** |")
        used[name] = None
    table.append("")
    table += [f"Record `{name}`: {provenance(records[name])}." for name in used]
    link = f"[Benchmarks]({depth}benchmarks.md)"
    table += ["", f"Generated from `benchmarks/results/*.json` when the site is built; all records: {link}."]
    return text.replace("<!-- figures -->", "\n".join(table))


def benchmarks_page(records: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated from `benchmarks/results/*.json` when the site is built (`docs/gen_pages.py`); every figure",
        "below is read from the record a benchmark wrote, so this page cannot drift from the measurements.",
        "Rerun a benchmark with `python -m benchmarks.<name>`; the split and data of each are described in the",
        "record's Markdown twin (`benchmarks/results/<name>.md`) and in the tool pages.",
        "",
        "## Headline figures",
        "",
        "| tool | figure | value | record |",
        "|---|---|---|---|",
    ]
    for tool, what, text, name in headline_rows(records):
        page = "cohort.md" if tool == "batch" else f"tools/{tool}.md"
        lines.append(f"| [{tool}]({page}) | {what} | **{text}** | `{name}` |")
    lines += ["", "## Every record", ""]
    lines.append("All scalar figures of each record (per-case rows are in the JSON files themselves).")
    for name, record in records.items():
        lines += ["", f"### {name}", "", provenance(record), ""]
        rows = list(flatten({k: v for k, v in record.items() if k not in {"threads"}}))
        if not rows:
            lines.append("(no scalar figures)")
            continue
        lines += [f'??? note "{len(rows)} figures"', ""]
        lines += ["    | figure | value |", "    |---|---|"]
        lines += [f"    | `{path}` | {fmt_number(value)} |" for path, value in rows]
    return "\n".join(lines) + "\n"


def cards_page() -> str:
    lines = [
        "# Model cards",
        "",
        "Generated from the cards shipped in `src/neurospine/models/weights/*.json` (`neurospine models` prints",
        "the same). The sha256 is checked before a model is used.",
        "",
        "| model | version | task | sha256 | training CPU-min | train command |",
        "|---|---|---|---|---|---|",
    ]
    cards = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(CARDS.glob("*.json"))]
    for c in cards:
        cmd = str(c.get("train_command", "")).replace("|", "\\|")
        lines.append(
            f"| `{c['name']}` | {c['version']} | {c.get('task', '')} | `{str(c.get('sha256', ''))[:12]}` | "
            f"{c.get('train_cpu_minutes', '')} | `{cmd}` |"
        )
    for c in cards:
        lines += ["", f"## {c['name']} {c['version']}", "", str(c.get("description", "")), ""]
        lines += ["Training data:", ""]
        for d in c.get("training_data") or []:
            if isinstance(d, dict):
                lic = d.get("licence") or d.get("license") or "licence not stated"
                lines.append(f"- {d.get('name', '?')} ({lic})")
        metrics = c.get("metrics") or {}
        scalars = list(flatten(metrics))
        if scalars:
            lines += ["", "| metric | value |", "|---|---|"]
            lines += [f"| `{k}` | {fmt_number(v)} |" for k, v in scalars]
    return "\n".join(lines) + "\n"


def decisions_index() -> str:
    lines = [
        "# Decision records",
        "",
        "Each candidate model or option was kept or rejected by a rule written down before it was scored.",
        "One file per decision (context, rule written before scoring, result, decision); newest rules last.",
        "",
    ]
    for p in sorted(DECISIONS.glob("*.md")):
        if p.name == "index.md":
            continue
        title = next(
            (ln.lstrip("# ").strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.startswith("# ")),
            p.stem,
        )
        lines.append(f"- [{title}]({p.name})")
    return "\n".join(lines) + "\n"


def labels_page() -> str:
    """docs/labels.md with its ``<!-- labels:semantic -->`` / ``<!-- labels:instance -->`` tables filled in."""
    import sys

    sys.path.insert(0, str(ROOT / "src"))
    from neurospine.labels import all_label_rows

    text = (ROOT / "docs" / "labels.md").read_text(encoding="utf-8")
    for kind in ("semantic", "instance"):
        marker = f"<!-- labels:{kind} -->"
        if marker not in text:
            log.warning("docs/labels.md has no %s line", marker)
            continue
        rows = ["| value | name | group |", "|---|---|---|"]
        rows += [f"| {r.value} | {r.name} | {r.region} |" for r in all_label_rows(kind)]
        if kind == "instance":
            rows = ['??? note "All instance values"', "", *("    " + r for r in rows)]
        text = text.replace(marker, "\n".join(rows))
    return text


def main() -> None:
    records = load_records()
    with mkdocs_gen_files.open("benchmarks.md", "w") as fh:
        fh.write(benchmarks_page(records))
    with mkdocs_gen_files.open("model-cards.md", "w") as fh:
        fh.write(cards_page())
    with mkdocs_gen_files.open("decisions/index.md", "w") as fh:
        fh.write(decisions_index())
    with mkdocs_gen_files.open("labels.md", "w") as fh:
        fh.write(labels_page())
    for tool in dict.fromkeys(t for t, *_ in HEADLINES):
        page = "cohort.md" if tool == "batch" else f"tools/{tool}.md"
        with mkdocs_gen_files.open(page, "w") as fh:
            fh.write(tool_page(page, tool, records))


main()
