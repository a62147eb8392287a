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
    """Every headline figure resolves in its JSON record (what the docs pages print)."""
    import json

    gen = _gen_pages()
    rows = gen.headline_rows(gen.load_records())
    assert len(rows) == len(gen.HEADLINES)
    spine_vb2 = json.loads((ROOT / "benchmarks" / "results" / "spine.json").read_text())["vb2"]["mean_per_body_dice"]
    assert ("spine", "VB2 held-out per-body Dice", f"{spine_vb2:.3f}", "spine") in rows


def _gen_pages():
    """docs/gen_pages.py as a module, without running it (it writes through mkdocs-gen-files)."""
    import types

    module = types.ModuleType("gen_pages_probe")
    module.__file__ = str(ROOT / "docs" / "gen_pages.py")
    sys.modules.setdefault("mkdocs_gen_files", types.ModuleType("mkdocs_gen_files"))
    source = (ROOT / "docs" / "gen_pages.py").read_text(encoding="utf-8").replace("\nmain()\n", "\n")
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def test_readme_is_short_and_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 120
    first = text.index("pip install . && neurospine demo")
    second = text.index("bash scripts/install-test-deps.sh && python -m pytest -q")
    assert first < second < text.index("../shared/data") < text.index("## Tools")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/install-test-deps.sh && python -m pytest -q" in ci  # CI runs the README's command


def test_readme_links_resolve():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)#]+)\)", text) if "://" not in t]
    assert targets and all((ROOT / t).exists() for t in targets), [t for t in targets if not (ROOT / t).exists()]


def test_readme_tool_figures_match_the_benchmark_records():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("## Tools") : text.index("\n\n", text.index("| command |"))]
    values: dict[str, set[str]] = {}
    for tool, _what, value, _name in _gen_pages().headline_rows(_gen_pages().load_records()):
        values.setdefault(tool, set()).add(value)
    pages = {"spine": "spine", "cord": "cord", "slice2d": "slice2d", "brain age": "brainage", "cohort runs": "batch"}
    pages["evaluate"] = "evaluate"
    rows = [r for r in table.splitlines() if r.startswith("| `neurospine")]
    assert len(rows) == 6
    for row in rows:
        tool = pages[re.search(r"\[([^]]+)\]\(docs/", row).group(1)]  # type: ignore[union-attr]
        figures = re.findall(r"\*\*([^*]+)\*\*", row)
        assert figures, row
        stale = [f for f in figures if f not in values[tool]]
        assert not stale, f"README figures not in benchmarks/results for {tool}: {stale} (have {sorted(values[tool])})"
