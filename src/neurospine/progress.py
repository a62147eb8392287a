"""Progress of a run over N items: a rich bar on a terminal, plain log lines elsewhere, nothing when quiet.

The rich display appears only once a run has lasted ``delay_s`` (a 1 s run draws nothing); when the
stream is not a terminal (a log file, a pipe, a job scheduler) each item ends with one plain line
(``12:00:03 neurospine spine: [2/5] sub-02_T2w.nii.gz done in 8.1 s``) instead. A single announced item
prints its start and end lines only when it lasts ``delay_s`` (a quick failure leaves just its error line).
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Any, Literal, TextIO

Mode = Literal["auto", "rich", "plain", "off"]


def resolve_mode(mode: Mode | bool, stream: TextIO | None = None) -> Literal["rich", "plain", "off"]:
    """``auto`` (or True): rich when ``stream`` (default stderr) is a terminal, else plain; False: off."""
    if mode is True or mode == "auto":
        s = stream if stream is not None else sys.stderr
        try:
            return "rich" if s.isatty() else "plain"
        except (AttributeError, ValueError):  # closed or odd streams
            return "plain"
    if mode is False:
        return "off"
    return mode


class Progress:
    """Track ``total`` items named by :meth:`begin` / :meth:`end`."""

    def __init__(
        self,
        label: str,
        total: int,
        *,
        mode: Mode | bool = "auto",
        delay_s: float = 2.0,
        announce: bool = False,
        transient: bool = True,
        stream: TextIO | None = None,
    ) -> None:
        self.label = label
        self.total = total
        self.mode = resolve_mode(mode, stream) if total > 0 else "off"
        self.announce = announce  # plain mode: a line when an item starts, too (useful for long single items)
        self.done = 0
        self.failed = 0
        self._stream = stream
        self._lock = threading.Lock()
        self._live: Any = None
        self._task: Any = None
        self._timer: threading.Timer | None = None
        self._closed = False
        self._current = ""
        self._started_at: dict[str, float] = {}
        self._delay_s = delay_s
        self._announced = False
        if self.mode == "rich":
            self._make_rich(transient)
            self._timer = threading.Timer(max(0.0, delay_s), self._show)
            self._timer.daemon = True
            self._timer.start()

    # -- rich -----------------------------------------------------------------------------------------------
    def _make_rich(self, transient: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        columns: list[Any] = [SpinnerColumn(), TextColumn("[bold]{task.description}")]
        if self.total > 1:
            columns += [BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed")]
        columns.append(TimeElapsedColumn())
        if self.total > 1:
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
        console = Console(file=self._stream) if self._stream is not None else Console(stderr=True)
        self._live = RichProgress(
            *columns, console=console, transient=transient, redirect_stdout=False, redirect_stderr=True
        )
        self._task = self._live.add_task(self.label, total=self.total, failed=0)

    def _show(self) -> None:
        with self._lock:
            if not self._closed and self._live is not None:
                self._live.start()

    def _describe(self) -> str:
        return f"{self.label} {self._current}".strip()

    # -- public ---------------------------------------------------------------------------------------------
    def begin(self, item: str) -> None:
        self._started_at[item] = time.perf_counter()
        self._current = item
        if self.mode == "rich":
            with self._lock:
                self._live.update(self._task, description=self._describe())
        elif self.mode == "plain" and self.announce:
            text = f"[{self.done + 1}/{self.total}] {item} ..."
            if self.total == 1:  # one item: say it only once it has lasted delay_s (a quick run prints nothing)
                self._timer = threading.Timer(max(0.0, self._delay_s), self._announce, args=(text,))
                self._timer.daemon = True
                self._timer.start()
            else:
                self._line(text)

    def end(self, item: str, *, ok: bool = True, seconds: float | None = None, note: str = "") -> None:
        self.done += 1
        self.failed += int(not ok)
        if seconds is None and item in self._started_at:
            seconds = time.perf_counter() - self._started_at.pop(item)
        if self.mode == "rich":
            with self._lock:
                self._live.update(self._task, advance=1, failed=self.failed)
        elif self.mode == "plain":
            if self.total == 1 and self.announce and not self._announced:
                if self._timer is not None:
                    self._timer.cancel()
                return  # a single quick step: its start was never shown, so no end line either
            took = "" if seconds is None else f" in {seconds:.1f} s"
            status = "done" if ok else "FAILED"
            self._line(f"[{self.done}/{self.total}] {item} {status}{took}{f' ({note})' if note else ''}")

    def _announce(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            self._announced = True
        self._line(text)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            if self._live is not None and self._live.live.is_started:
                self._live.stop()

    def _line(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        stream.write(f"{time.strftime('%H:%M:%S')} neurospine {self.label}: {text}\n")
        stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
