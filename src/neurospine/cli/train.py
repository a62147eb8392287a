"""``neurospine train TASK``: reproduce a shipped model (needs the ``train`` extra: torch)."""

from __future__ import annotations

import argparse
import importlib
import logging
from typing import Any

from neurospine.cli.helpfmt import docs_line
from neurospine.errors import InputError

#: task name -> module with ``main(argv: list[str]) -> int``
TRAINERS: dict[str, str] = {
    "spine": "neurospine.spine.training",
    "spine-body": "neurospine.spine.body_training",
    "cord": "neurospine.cord.training",
    "cord-gm": "neurospine.cord.gm_training",
    "slice2d": "neurospine.slice2d.training",
    "brainage-t1": "neurospine.brainage.training_t1",
    "brainage-t1-ensemble": "neurospine.brainage.t1_ensemble",
    "brainage-features": "neurospine.brainage.training_features",
}

#: tasks whose trainer needs only numpy
NUMPY_ONLY: frozenset[str] = frozenset({"brainage-features", "brainage-t1-ensemble"})


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train (reproduce) a shipped model on this machine",
        description="Train one of the shipped models from scratch or resume from its checkpoint. Needs "
        "`pip install 'neurospine[train]'`. Runs go to ./runs/<task> unless --out is given. Run `neurospine "
        "train TASK --help` for the task's options. Example: neurospine train cord --minutes 25. "
        + docs_line("training.md"),
    )
    p.add_argument("task", choices=sorted(TRAINERS), metavar="TASK", help="one of " + ", ".join(sorted(TRAINERS)))
    p.add_argument("task_args", nargs=argparse.REMAINDER, metavar="...", help="options passed to the task's trainer")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        if args.task not in NUMPY_ONLY:
            import torch  # noqa: F401  (checked only to give a clear message)
    except ImportError as e:
        raise InputError(
            None,
            "training needs PyTorch, which is not installed",
            "pip install 'neurospine[train]' (torch==2.13.0, CPU build)",
        ) from e
    if not getattr(args, "verbose", 0) and not getattr(args, "quiet", False):
        logging.getLogger("neurospine").setLevel(logging.INFO)  # training progress is the point of the command
    module = importlib.import_module(TRAINERS[args.task])
    try:
        return int(module.main(list(args.task_args)))
    except FileNotFoundError as e:  # a training set or run file that is not there: one line, exit 2
        raise InputError(
            e.filename,
            "a file the trainer reads does not exist",
            "point --data at the shared data folder (../shared/data) or pass the file that exists",
        ) from e
