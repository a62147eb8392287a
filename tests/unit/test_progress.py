"""Progress display: a rich bar on a terminal only after the delay, plain lines elsewhere, nothing when off."""

from __future__ import annotations

import io
import time

from neurospine.progress import Progress, resolve_mode


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_mode_follows_the_stream():
    assert resolve_mode("auto", _Tty()) == "rich"
    assert resolve_mode(True, io.StringIO()) == "plain"
    assert resolve_mode(False) == "off"
    assert resolve_mode("plain", _Tty()) == "plain"


def test_short_runs_draw_nothing_long_runs_draw_a_bar():
    quick = _Tty()
    with Progress("spine", 1, stream=quick, delay_s=2.0) as bar:
        bar.begin("a.nii.gz")
        bar.end("a.nii.gz")
    assert quick.getvalue() == ""  # finished before the delay: no flicker for a 1 s run
    slow = _Tty()
    with Progress("spine", 1, stream=slow, delay_s=0.05, transient=False) as bar:
        bar.begin("a.nii.gz")
        time.sleep(0.5)
        bar.end("a.nii.gz")
    assert "spine a.nii.gz" in slow.getvalue()


def test_plain_lines_count_items_and_failures():
    log = io.StringIO()
    with Progress("batch", 2, stream=log) as bar:
        bar.end("sub-01/spine", ok=True, seconds=1.25)
        bar.end("sub-02/spine", ok=False, seconds=0.5)
    lines = log.getvalue().splitlines()
    assert lines[0].endswith("neurospine batch: [1/2] sub-01/spine done in 1.2 s")
    assert lines[1].endswith("neurospine batch: [2/2] sub-02/spine FAILED in 0.5 s")
    off = io.StringIO()
    with Progress("batch", 2, mode="off", stream=off) as bar:
        bar.end("x")
    assert off.getvalue() == ""
