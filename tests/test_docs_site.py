"""The documentation site builds with warnings as errors (broken links, stale figure paths, bad API refs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="docs tools are in the test extra: pip install -e '.[test]'")
    pytest.importorskip("mkdocs_gen_files")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    bench = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "Headline figures" in bench and "spine" in bench
    spine = (site / "tools" / "spine" / "index.html").read_text(encoding="utf-8")
    assert "<!-- figures -->" not in spine and "VB2 held-out per-body Dice" in spine
    assert (site / "images" / "spine-snapshot.png").is_file()
    shutil.rmtree(site, ignore_errors=True)


def test_generated_figures_are_read_from_the_records():
    """Every headline figure resolves in its JSON record (what the docs page prints)."""
    import importlib.util
    import json
    import types

    fake = types.ModuleType("mkdocs_gen_files")
    fake.open = None  # type: ignore[attr-defined]
    sys.modules.setdefault("mkdocs_gen_files", fake)
    spec = importlib.util.spec_from_file_location("gen_pages_probe", ROOT / "docs" / "gen_pages.py")
    assert spec is not None and spec.loader is not None
    source = (ROOT / "docs" / "gen_pages.py").read_text(encoding="utf-8").replace("\nmain()\n", "\n")
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, str(ROOT / "docs" / "gen_pages.py"), "exec"), module.__dict__)
    records = module.load_records()
    rows = module.headline_rows(records)
    assert len(rows) == len(module.HEADLINES)
    spine_vb2 = json.loads((ROOT / "benchmarks" / "results" / "spine.json").read_text())["vb2"]["mean_per_body_dice"]
    assert ("spine", "VB2 held-out per-body Dice", f"{spine_vb2:.3f}", "spine") in rows
