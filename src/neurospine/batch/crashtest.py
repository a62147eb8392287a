"""Kill-and-resume trial: SIGKILL ``neurospine batch`` at random moments, resume, check nothing was lost.

Useful to check crash safety on your own storage (network filesystems differ in rename semantics)::

    from neurospine.batch.crashtest import kill_resume_trial
    print(kill_resume_trial("bids/", "/scratch/trial", kills=5))
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neurospine.batch.verify import verify_outputs


@dataclass
class TrialResult:
    kills: int = 0
    kill_times_s: list[float] = field(default_factory=list)
    runs_finished_before_kill: int = 0
    cases: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    final_returncode: int | None = None


def batch_command(
    dataset: str | Path, out: str | Path, tasks: str, options: Sequence[str] = (), jobs: int = 1
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "neurospine",
        "batch",
        str(dataset),
        "--out",
        str(out),
        "--tasks",
        tasks,
        "--no-progress",
        "--jobs",
        str(jobs),
    ]
    for opt in options:
        cmd += ["--option", opt]
    return cmd


def kill_resume_trial(
    dataset: str | Path,
    out: str | Path,
    *,
    tasks: str = "selftest",
    options: Sequence[str] = ("sleep_s=0.05",),
    jobs: int = 1,
    kills: int = 3,
    max_delay_s: float = 4.0,
    seed: int = 0,
    timeout_s: float = 600.0,
) -> TrialResult:
    """Start the batch ``kills`` times, SIGKILL its whole process group after a random delay, then let a last
    run finish and check the output folder (``verify_outputs``)."""
    rng = random.Random(seed)
    res = TrialResult()
    cmd = batch_command(dataset, out, tasks, options, jobs)
    for _ in range(kills):
        delay = rng.uniform(0.0, max_delay_s)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            proc.wait(timeout=delay)
            res.runs_finished_before_kill += 1
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the batch and its workers, like a scheduler killing the job
            proc.wait()
            res.kills += 1
            res.kill_times_s.append(round(delay, 3))
        _reap_group(proc.pid)
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    res.final_returncode = final.returncode
    rep = verify_outputs(out)
    res.cases, res.problems, res.leftovers = rep.cases, rep.problems, rep.leftovers
    return res


def _reap_group(pgid: int) -> None:
    """Wait until no process of the killed group is left (spawned workers may take a moment to go)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
