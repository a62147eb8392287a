"""Issue 20, part 5: -o/-q/-v on every command, several inputs per command, checked numbers (one line, exit 2),
progress as plain lines when not on a terminal."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from neurospine.cli.main import build_parser, main
from neurospine.io import save_volume
from tests.unit.test_spine_support import lumbar_phantom, write_threshold_model


@pytest.fixture
def threshold_model(tmp_path, monkeypatch):
    write_threshold_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix}{name}"] = sub
                found.update(_commands(sub, f"{prefix}{name} "))
    return found


def test_every_command_has_quiet_verbose_and_short_out():
    commands = _commands(build_parser())
    assert {"spine", "cord", "slice2d", "brainage t1", "batch", "table", "evaluate", "models"} <= set(commands)
    for name, sub in commands.items():
        opts = sub._option_string_actions
        for flag in ("-q", "--quiet", "-v", "--verbose"):
            assert flag in opts, (name, flag)
        if name not in ("train", "brainage"):  # train passes its options on; brainage only groups sub-commands
            assert "-o" in opts and opts["-o"] is opts["--out"], name


def test_quiet_prints_nothing_and_verbose_logs_info(tmp_path, threshold_model, capsys, caplog):
    img = save_volume(lumbar_phantom(), tmp_path / "x.nii.gz")
    assert main(["spine", str(img), "-o", str(tmp_path / "q"), "-q"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert main(["spine", str(img), "-o", str(tmp_path / "v"), "-v"]) == 0
    assert any(r.levelno == logging.INFO and r.name.startswith("neurospine.spine") for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        assert main(["spine", str(img), "-o", str(tmp_path / "d")]) == 0
    assert not any(r.levelno == logging.INFO and r.name.startswith("neurospine.spine") for r in caplog.records)


def test_verbose_before_the_command_still_works(tmp_path, capsys):
    assert main(["-v", "labels", "-o", str(tmp_path / "l.txt")]) == 0
    assert (tmp_path / "l.txt").is_file()


def test_spine_takes_several_images(tmp_path, threshold_model, capsys):
    a = save_volume(lumbar_phantom("LAS"), tmp_path / "a.nii.gz")
    b = save_volume(lumbar_phantom("RPI"), tmp_path / "b.nii.gz")
    out = tmp_path / "out"
    assert main(["spine", str(a), str(b), "-o", str(out), "--json", "--no-snapshot"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [p["input"] for p in payload] == [str(a), str(b)]
    for stem in ("a", "b"):
        assert (out / f"{stem}_seg-vert_msk.nii.gz").is_file() and (out / f"{stem}_spine.csv").is_file()


def test_one_bad_input_among_several_fails_alone(tmp_path, threshold_model, capsys):
    good = save_volume(lumbar_phantom(), tmp_path / "good.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    assert main(["spine", str(bad), str(good), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.nii.gz" in err and "Traceback" not in err
    assert (out / "good_seg-vert_msk.nii.gz").is_file() and not list(out.glob("bad_*"))


def test_cord_levels_must_match_the_images(tmp_path, capsys):
    imgs = [save_volume(lumbar_phantom(), tmp_path / f"{n}.nii.gz") for n in ("a", "b")]
    argv = ["cord", *map(str, imgs), "-o", str(tmp_path / "o"), "--levels", str(imgs[0])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "1 --levels mask(s) for 2 images" in err and "Fix:" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["spine", "x.nii.gz", "-o", "o", "--threads", "0"],
        ["spine", "x.nii.gz", "-o", "o", "--threads", "-3"],
        ["cord", "x.nii.gz", "-o", "o", "--threads", "0"],
        ["slice2d", "x.png", "-o", "o", "--threads", "-3"],
        ["slice2d", "x.png", "-o", "o", "--pixel-mm", "0"],
        ["slice2d", "x.png", "-o", "o", "--slice", "-1"],
        ["brainage", "t1", "x.nii.gz", "-o", "p.csv", "--threads", "0"],
        ["brainage", "predict", "f.csv", "-o", "p.csv", "--passes", "0"],
        ["batch", "ds", "-o", "o", "--tasks", "info", "--jobs", "0"],
        ["batch", "ds", "-o", "o", "--tasks", "info", "--threads", "-3"],
        ["demo", "--threads", "0"],
        ["synth", "-o", "o", "--n", "0"],
        ["spine", "x.nii.gz", "-o", "o", "--threads", "two"],
    ],
)
def test_bad_numbers_are_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert "error: argument" in err and "--help" in err


def test_plain_progress_lines_when_not_on_a_terminal(tmp_path, threshold_model, capsys):
    imgs = [save_volume(lumbar_phantom(), tmp_path / f"s{i}.nii.gz") for i in (1, 2)]
    assert main(["spine", *map(str, imgs), "-o", str(tmp_path / "o"), "--no-snapshot"]) == 0
    err = capsys.readouterr().err
    assert "neurospine spine: [1/2] s1.nii.gz ..." in err
    assert "neurospine spine: [2/2] s2.nii.gz done in" in err


def test_batch_prints_plain_lines_per_case_when_not_on_a_terminal(tmp_path, capsys):
    from neurospine.batch.demo import make_demo_dataset

    make_demo_dataset(tmp_path / "ds", n_subjects=2, shape=(8, 24, 32))
    assert main(["batch", str(tmp_path / "ds"), "-o", str(tmp_path / "out"), "--tasks", "info"]) == 0
    err = capsys.readouterr().err
    assert "neurospine batch: [1/2] sub-001" in err and "neurospine batch: [2/2]" in err and "done in" in err
    assert main(["batch", str(tmp_path / "ds"), "-o", str(tmp_path / "out2"), "--tasks", "info", "-q"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""


def test_sigterm_unwinds_the_command_and_exits_143(monkeypatch, capsys):
    """SIGTERM raises inside the command so its cleanup runs (batch: workers stopped, run marked interrupted)."""
    import os
    import signal
    import time

    import neurospine.cli.labels as labels_cmd

    cleaned: list[bool] = []

    def handler(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
            return 0
        finally:
            cleaned.append(True)

    monkeypatch.setattr(labels_cmd, "_run", handler)
    before = signal.getsignal(signal.SIGTERM)
    t0 = time.monotonic()
    assert main(["labels"]) == 143
    assert time.monotonic() - t0 < 5 and cleaned == [True]
    assert "terminated" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is only installed while a command runs
