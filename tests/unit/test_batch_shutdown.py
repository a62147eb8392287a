"""Issue 20, part 5: no process outlives ``neurospine batch --jobs 2`` when it is killed (SIGKILL) or stopped
(SIGTERM). Before, kill -9 left the fork server, both workers and the resource tracker running (~0.95 GB)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neurospine.batch.demo import make_demo_dataset

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[0], []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pids: set[int]) -> set[int]:
    """Those still running (a zombie holds no memory and runs nothing: it counts as gone)."""
    return {p for p in pids if (st := _stat(p)) is not None and st[1] != "Z"}


def _start_batch(tmp_path: Path) -> tuple[subprocess.Popen[bytes], set[int]]:
    make_demo_dataset(tmp_path / "ds", n_subjects=4, shape=(8, 24, 32))
    cmd = [sys.executable, "-m", "neurospine", "batch", str(tmp_path / "ds"), "-o", str(tmp_path / "out")]
    cmd += ["--tasks", "selftest", "--option", "sleep_s=60", "--jobs", "2", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tmp_root = tmp_path / "out" / "derivatives" / "neurospine" / ".neurospine-tmp"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both workers are inside a case
        if len(list(tmp_root.glob("*/*/*_step-0_partial.json"))) >= 2:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the workers did not start within 120 s")
    family = _descendants(proc.pid)
    assert len(family) >= 4, family  # fork server, 2 workers, resource tracker
    return proc, family


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def _cleanup(pids: set[int]) -> None:
    for pid in _alive(pids):  # never leave a failed test's processes behind
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow  # a real batch with 2 workers: about 7 s
def test_kill_9_of_batch_leaves_no_worker(tmp_path: Path) -> None:
    proc, family = _start_batch(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        left = _wait_gone(family, 15)
        assert not left, f"still running after kill -9 of the batch: {left}"
    finally:
        _cleanup(family)


@pytest.mark.slow  # about 8 s; tests/cli/test_cli_habits.py checks main()'s SIGTERM unwinding in-process
def test_sigterm_of_batch_stops_workers_and_records_the_run(tmp_path: Path) -> None:
    import sqlite3

    proc, family = _start_batch(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143 and b"terminated" in err and b"Traceback" not in err
        assert not _wait_gone(family, 15)
        db = tmp_path / "out" / "derivatives" / "neurospine" / "neurospine.sqlite3"
        with sqlite3.connect(db) as con:
            assert [r[0] for r in con.execute("select status from runs")] == ["interrupted"]
    finally:
        _cleanup(family)
