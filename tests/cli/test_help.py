"""Every command's --help: each option and argument explained, short enough to read, wrapped, no stray %%."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator

import pytest

from neurospine.cli.main import build_parser
from neurospine.cli.train import TRAINERS

MAX_LINES = 25
WIDTH_COLUMNS = 100  # the terminal width the line budget is measured at


def _commands(
    parser: argparse.ArgumentParser, name: str = "neurospine"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _commands(sub, f"{name} {sub_name}")


def _unexplained(parser: argparse.ArgumentParser) -> list[str]:
    return [
        a.option_strings[-1] if a.option_strings else a.dest
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction)
        and (not a.help or a.help == argparse.SUPPRESS)
    ]


@pytest.fixture
def commands(monkeypatch) -> dict[str, argparse.ArgumentParser]:
    monkeypatch.setenv("COLUMNS", str(WIDTH_COLUMNS))
    return dict(_commands(build_parser()))


def test_walk_finds_every_command_and_subcommand(commands):
    assert {"neurospine spine", "neurospine cord", "neurospine brainage t1", "neurospine labels"} <= set(commands)
    assert len(commands) >= 18


def test_every_option_and_argument_has_help(commands):
    missing = {name: m for name, p in commands.items() if (m := _unexplained(p))}
    assert not missing, f"options without help text: {missing}"


def test_every_command_has_a_description(commands):
    assert not [name for name, p in commands.items() if name != "neurospine" and not p.description]


def test_help_fits_the_line_budget_and_width(commands):
    too_long = {}
    too_wide = {}
    for name, p in commands.items():
        lines = p.format_help().splitlines()
        if len(lines) > MAX_LINES:
            too_long[name] = len(lines)
        wide = [line for line in lines if len(line) > WIDTH_COLUMNS]
        if wide:
            too_wide[name] = wide
    assert not too_long, (
        f"help longer than {MAX_LINES} lines at {WIDTH_COLUMNS} columns (move prose to docs/): {too_long}"
    )
    assert not too_wide, f"help lines wider than the terminal: {too_wide}"


def test_no_literal_percent_escapes(commands):
    assert not [name for name, p in commands.items() if "%%" in p.format_help()]


def test_tool_help_points_to_its_docs_page(commands):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("spine", "cord", "slice2d", "brainage", "evaluate", "batch"):
        text = " ".join(commands[f"neurospine {name}"].format_help().split())
        page = text.split("Documentation: docs/", 1)[1].split()[0].rstrip(".")
        assert (root / "docs" / page).is_file(), (name, page)


def test_formatter_wraps_paragraphs_and_keeps_indented_blocks():
    from neurospine.cli.helpfmt import WrappedHelpFormatter

    fmt = WrappedHelpFormatter("prog", width=40)
    text = fmt._fill_text("word " * 30 + "\n\noutputs:\n  a_file.nii.gz    kept as written, even if long", 40, "")
    paragraphs = text.split("\n\n")
    assert all(len(line) <= 40 for line in paragraphs[0].splitlines()) and len(paragraphs[0].splitlines()) > 2
    assert paragraphs[1] == "outputs:\n  a_file.nii.gz    kept as written, even if long"


class _Parsed(Exception):
    pass


@pytest.mark.parametrize("task", sorted(TRAINERS))
def test_trainer_options_have_help(task, monkeypatch):
    seen: dict[str, argparse.ArgumentParser] = {}

    def capture(self, *args, **kwargs):
        seen["parser"] = self
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_Parsed):
        importlib.import_module(TRAINERS[task]).main(["--help"])
    assert not _unexplained(seen["parser"])


def test_trainer_with_a_missing_data_folder_is_one_line(tmp_path, capsys):
    pytest.importorskip("torch")
    from neurospine.cli.main import main

    rc = main(["train", "brainage-t1", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "absent" in err[0] and "Traceback" not in err[0]
