"""Shared benchmark plumbing: machine facts, commit, writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=False, cwd=Path(__file__).parent
        ).stdout.strip()
        return (out.stdout.strip() or "uncommitted") + ("+dirty" if dirty else "")
    except OSError:
        return "unknown"


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB (``VmHWM``; ``ru_maxrss`` elsewhere).

    ``ru_maxrss`` survives fork+exec on Linux (a child reports its parent's peak), so measure
    memory inside the process that did the work.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_results(name: str, payload: dict[str, Any], *, threads: int, markdown: str | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (and ``.md`` if given) with provenance."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": git_commit(),
        "threads": threads,
        "machine": machine(),
        **payload,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    if markdown is not None:
        header = f"<!-- {record['date_utc']} commit {record['commit']} threads {threads} -->\n"
        (RESULTS_DIR / f"{name}.md").write_text(header + markdown, encoding="utf-8")
    return path


def model_benchmark_args(doc: str | None, model: str, default_name: str) -> Any:
    """The parser shared by the benchmarks that score one installed model: ``--threads``, ``--models-dir`` (points
    ``NEUROSPINE_MODELS_DIR`` at a candidate ``model``), ``--name`` (results stem)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models-dir", type=Path, default=None, help=f"folder with a candidate {model} model")
    ap.add_argument("--name", default=default_name, help="results file stem in benchmarks/results")
    return ap


def finish_model_benchmark(args: Any, run: Any, markdown: Any) -> int:
    """Point the models folder, run ``run()``, write the JSON and Markdown record, log where."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.models_dir is not None:
        os.environ["NEUROSPINE_MODELS_DIR"] = str(args.models_dir)
    payload = run()
    md = markdown(payload)
    path = write_results(args.name, payload, threads=args.threads, markdown=md)
    logging.getLogger(__name__).info("%s\nwritten %s", md, path)
    return 0
