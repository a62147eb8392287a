"""The trainers ported to the one engine (``neurospine.nn.engine``) train exactly as their former loops did.

``data/engine_equivalence.json`` holds the per-step losses and a digest of the trained weights of tiny
fake-clock runs made with the loops *before* the engine (see ``engine_equivalence.py`` for the runs and the
command). On the machine and torch build that recorded them the ported trainers must match bit for bit;
elsewhere (other CPU kernels) the losses and weights must agree closely.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from tests.unit.engine_equivalence import FIXTURE, machine, run_task

RECORD = json.loads(FIXTURE.read_text(encoding="utf-8"))
SAME_MACHINE = RECORD["machine"] == machine()


@pytest.mark.parametrize(
    "task",
    [
        "slice2d",
        "spine-body",
        "spine-body-synth",
        pytest.param("brainage-t1", marks=pytest.mark.slow),
        "brainage-t1-lowres",
        "spine",
        "spine-synth",
        "cord",
    ],
)
def test_ported_trainer_reproduces_the_former_loop(task, tmp_path):
    want = RECORD["tasks"][task]
    got = run_task(task, tmp_path)
    assert got["rc"] == 0
    assert len(got["losses"]) == len(want["losses"])
    if SAME_MACHINE:
        assert got["losses"] == want["losses"]
        assert got["weights"]["sha256"] == want["weights"]["sha256"]
    else:
        np.testing.assert_allclose(got["losses"], want["losses"], rtol=1e-4)
        assert got["weights"]["abs_sum"] == pytest.approx(want["weights"]["abs_sum"], rel=1e-4)


def test_equivalence_run_sees_a_changed_recipe(tmp_path):
    """The comparison can fail: another learning rate gives other losses and other weights."""
    want = RECORD["tasks"]["slice2d"]
    got = run_task("slice2d", tmp_path, ["--lr", "5e-3"])
    assert got["losses"][0] == pytest.approx(want["losses"][0], rel=1e-4)  # the first step precedes any update
    assert got["losses"][1:] != want["losses"][1:]
    assert got["weights"]["sha256"] != want["weights"]["sha256"]


@pytest.mark.parametrize("task", ["slice2d", "spine-body-synth", "spine-synth"])
def test_worker_processes_train_the_same_budget(task, tmp_path):
    """--workers 1: batches come from a worker process (another, seeded stream); same steps, finite losses."""
    want = RECORD["tasks"][task]
    got = run_task(task, tmp_path, ["--workers", "1"])
    assert got["rc"] == 0
    assert len(got["losses"]) == len(want["losses"]) and np.isfinite(got["losses"]).all()
    assert got["losses"] != want["losses"]


def test_cord_wall_cap_stops_without_bending_the_schedule(tmp_path):
    """--max-wall-minutes stops the cord run early; the steps it did take match the uncapped run."""
    want = RECORD["tasks"]["cord"]
    got = run_task("cord", tmp_path, ["--max-wall-minutes", "0.25"])  # 15 s of the fake clock: 2 of 3 steps
    assert got["rc"] == 0
    assert len(got["losses"]) == 2
    np.testing.assert_allclose(got["losses"], want["losses"][:2], rtol=1e-5)
