"""The spine training command records a command line that reproduces the run."""

from __future__ import annotations

from pathlib import Path

import pytest

from neurospine.spine.training import build_parser, train_command


def test_train_command_lists_every_non_default_recipe_flag():
    argv = ["--minutes", "55", "--lr", "3e-4", "--init", "run/a.onnx", "--synth-fraction", "0.35"]
    argv += ["--synth-boundary-ignore", "1", "--no-body-below-l5", "--seed", "3"]
    cmd = train_command(build_parser().parse_args(argv))
    assert cmd.startswith("neurospine train spine --minutes 55 --threads 1")
    for part in ("--lr 0.0003", "--synth-fraction 0.35", "--synth-boundary-ignore 1", "--seed 3"):
        assert part in cmd
    assert "--no-body-below-l5" in cmd and cmd.endswith("--init run/a.onnx")
    # defaults are not repeated, and re-parsing the command gives the same recipe
    plain = train_command(build_parser().parse_args([]))
    assert "--lr" not in plain and "--init" not in plain
    again = build_parser().parse_args(cmd.split()[3:])
    assert again.lr == 3e-4 and again.no_body_below_l5 and again.seed == 3


def test_version_option_defaults_to_the_reproduced_version() -> None:
    from neurospine.spine.training import MODEL_VERSION, build_parser

    assert build_parser().parse_args([]).version == MODEL_VERSION
    assert build_parser().parse_args(["--version", "0.8.0"]).version == "0.8.0"


def test_step_budget_replaces_the_time_budget() -> None:
    from neurospine.nn.engine import Budget

    args = build_parser().parse_args(["--steps", "100", "--minutes", "1"])
    budget = Budget(minutes=args.minutes, clock="wall", steps=args.steps, used_s=10_000.0)  # as spine.train_loop
    budget.start()
    assert not budget.spent(99) and budget.spent(100)  # time is ignored when a step budget is given
    assert budget.fraction(50) == 0.5
    timed = build_parser().parse_args(["--minutes", "2"])
    clock = Budget(minutes=timed.minutes, clock="wall", steps=timed.steps, used_s=119.0)
    clock.start()
    assert not clock.spent(10**6)
    done = Budget(minutes=timed.minutes, clock="wall", steps=timed.steps, used_s=120.0)
    done.start()
    assert done.spent(0)
    cmd = train_command(args)
    assert cmd.startswith("neurospine train spine --steps 100 --threads 1") and "--minutes" not in cmd
    assert build_parser().parse_args(cmd.split()[3:]).steps == 100


def test_non_positive_step_budget_is_refused() -> None:
    import pytest

    from neurospine.spine.training import main

    with pytest.raises(SystemExit):
        main(["--steps", "0"])


@pytest.mark.slow
def test_train_spine_resumes_from_its_checkpoint(shared_data, tmp_path, caplog, capsys) -> None:
    """Run 1 stops after 2 steps; run 2 with ``--steps 3`` resumes at step 2 and does one more step."""
    import json
    import logging

    from neurospine.cli.main import main

    out = tmp_path / "run"
    tiny = ["--out", str(out), "--data", str(shared_data), "--batch", "1", "--patch", "32"]
    tiny += ["--synth-fraction", "0", "--no-calibrate", "--threads", "1"]
    caplog.set_level(logging.INFO, logger="neurospine")
    assert main(["train", "spine", "--steps", "2", *tiny]) == 0
    assert "resume at step 0" in caplog.text and (out / "checkpoint.pt").is_file()
    assert "synthetic engine not available" not in caplog.text and "synthetic samples off" in caplog.text
    assert json.loads(json.loads((out / "spine_semantic.json").read_text())["notes"])["steps"] == 2
    caplog.clear()
    assert main(["train", "spine", "--steps", "3", *tiny]) == 0
    assert "resume at step 2" in caplog.text
    card = json.loads((out / "spine_semantic.json").read_text())
    assert json.loads(card["notes"])["steps"] == 3 and card["train_command"].startswith(
        "neurospine train spine --steps 3"
    )
    capsys.readouterr()
    with pytest.raises(SystemExit):  # another learning rate on the same checkpoint
        main(["train", "spine", "--steps", "4", "--lr", "0.0005", *tiny])
    assert "other settings (--lr: was 0.002, now 0.0005)" in capsys.readouterr().err


def test_resume_refuses_a_checkpoint_trained_with_other_settings() -> None:
    from neurospine.spine.training import recipe_mismatch, training_recipe

    args = build_parser().parse_args(["--teacher-fraction", "0.3", "--teacher-keep-contrast", "0.25"])
    recorded = training_recipe(args)
    assert recipe_mismatch(recorded, args) == ""
    assert recipe_mismatch(None, args) == ""  # a checkpoint from before recipes were stored
    other = build_parser().parse_args(["--teacher-fraction", "0.3"])
    assert recipe_mismatch(recorded, other) == "--teacher-keep-contrast: was 0.25, now 0.5"
    # a checkpoint written before --dark-ligaments existed ran without it: resuming with it on is refused
    older = {k: v for k, v in recorded.items() if k != "dark_ligaments"}
    dark = build_parser().parse_args(
        ["--teacher-fraction", "0.3", "--teacher-keep-contrast", "0.25", "--dark-ligaments", "0.8"]
    )
    assert recipe_mismatch(older, dark) == "--dark-ligaments: was 0.0, now 0.8"
    assert recipe_mismatch(older, args) == ""


def test_dark_ligaments_is_part_of_the_reproducing_command() -> None:
    from neurospine.spine.training import VALUE_FLAGS, recipe_flags

    args = build_parser().parse_args(["--dark-ligaments", "0.8"])
    assert "--dark-ligaments 0.8" in recipe_flags(args, build_parser().parse_args([]), VALUE_FLAGS)


def test_card_lists_the_real_label_map_sources_only_when_the_run_used_them() -> None:
    from neurospine.spine.training import LABELMAP_TRAINING_DATA, TRAINING_DATA, training_data

    assert training_data(0.0) == TRAINING_DATA
    used = training_data(0.25)
    assert used[: len(TRAINING_DATA)] == TRAINING_DATA and used[len(TRAINING_DATA) :] == LABELMAP_TRAINING_DATA
    names = " ".join(d["name"] for d in used)
    assert "verse014" in names and "tptbox" in names and "panoptica" in names
    assert all(d["licence"] for d in used)


def test_teacher_images_are_listed_only_when_the_run_used_them() -> None:
    from neurospine.spine.training import teacher_training_data, training_data

    assert not any("teacher" in d["use"] for d in training_data(0.25))
    assert training_data(0.25, 0.3)[-1] == teacher_training_data(False)
    assert "posterior elements" in training_data(0.25, 0.3, True)[-1]["use"]
    assert "posterior elements" not in teacher_training_data(False)["use"]
    cmd = train_command(build_parser().parse_args(["--teacher-fraction", "0.3"]))
    assert "--teacher-fraction 0.3" in cmd and "--teacher-posterior" not in cmd
    cmd = train_command(build_parser().parse_args(["--teacher-fraction", "0.3", "--teacher-posterior"]))
    assert "--teacher-posterior" in cmd
    cmd = train_command(build_parser().parse_args(["--teacher-keep-contrast", "0.25"]))
    assert "--teacher-keep-contrast 0.25" in cmd


def test_weight_average_needs_a_first_model_and_export_only() -> None:
    from neurospine.spine.training import main

    with pytest.raises(SystemExit):
        main(["--average-with", "b.onnx", "--export-only"])  # no --init
    with pytest.raises(SystemExit):
        main(["--init", "a.onnx", "--average-with", "b.onnx"])  # would train
    args = build_parser().parse_args(["--init", "a.onnx", "--average-with", "b.onnx", "--export-only"])
    assert train_command(args).endswith("--init a.onnx --average-with b.onnx --average-weight 0.5 --export-only")


def test_teacher_options_need_teacher_targets_built_the_same_way(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import numpy as np

    from neurospine.spine.training import main, recorded_teacher_posterior

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--teacher-posterior"])  # no --teacher-fraction
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--teacher-keep-contrast", "0.25"])
    assert recorded_teacher_posterior(tmp_path) is None
    np.savez(tmp_path / "teacher.npz", keep_posterior=np.array(False))
    assert recorded_teacher_posterior(tmp_path) is False
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--teacher-fraction", "0.3", "--teacher-posterior"])  # cache built without
    assert "keep_posterior=False" in capsys.readouterr().err
