"""The outcome of a plausibility check and how a pipeline acts on it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from neurospine.errors import InputError

log = logging.getLogger(__name__)

Status = Literal["ok", "flag", "refuse"]
_RANK = {"ok": 0, "flag": 1, "refuse": 2}


@dataclass
class Verdict:
    """``status`` with the reasons behind it.

    ``looks_like`` says what the image seems to be (for a refusal), ``expects`` what the tool reads.
    ``forced`` is True when a refusal was overridden with ``--force`` (the result is then flagged).
    """

    tool: str
    status: Status = "ok"
    reasons: list[str] = field(default_factory=list)
    looks_like: str = ""
    expects: str = ""
    forced: bool = False

    def flag(self, reason: str) -> None:
        """Add a reason to run with a flag."""
        self.reasons.append(reason)
        if _RANK[self.status] < _RANK["flag"]:
            self.status = "flag"

    def refuse(self, looks_like: str, reason: str = "") -> None:
        """Add a reason to refuse: the image looks like ``looks_like``."""
        self.status = "refuse"
        if not self.looks_like:
            self.looks_like = looks_like
        if reason:
            self.reasons.append(reason)

    def merge(self, other: Verdict) -> Verdict:
        """Both verdicts' reasons under the stronger status, forced if either was (in place; returns self)."""
        for r in other.reasons:
            if r not in self.reasons:
                self.reasons.append(r)
        if _RANK[other.status] > _RANK[self.status]:
            self.status = other.status
        if other.looks_like and not self.looks_like:
            self.looks_like = other.looks_like
        self.forced = self.forced or other.forced
        return self

    @property
    def field(self) -> str:
        """The ``plausibility`` value of the JSON/CSV outputs: ``ok``, or ``flag: reason; reason``."""
        if self.status == "ok":
            return "ok"
        head = "forced" if self.forced else "flag"
        return f"{head}: " + "; ".join(self.reasons)

    @property
    def note(self) -> str | None:
        """The ``note:`` line for a flagged result (None when ok)."""
        if self.status == "ok":
            return None
        what = f"looks like {self.looks_like}; " if self.looks_like else ""
        forced = " (refusal overridden with --force)" if self.forced else ""
        return f"plausibility{forced}: {what}" + "; ".join(self.reasons) + " - check the result"


def enforce(verdict: Verdict, path: str | Path | None, *, force: bool = False) -> Verdict:
    """Raise ``InputError`` (exit 2) for a refusal unless ``force``; a forced refusal becomes a flag."""
    if verdict.status != "refuse":
        return verdict
    if force:
        log.warning("%s: %s refusal overridden with --force (%s)", path, verdict.tool, "; ".join(verdict.reasons))
        verdict.status = "flag"
        verdict.forced = True
        return verdict
    why = f" ({'; '.join(verdict.reasons)})" if verdict.reasons else ""
    raise InputError(
        path,
        f"this looks like {verdict.looks_like}{why}, but `neurospine {verdict.tool}` expects {verdict.expects}",
        f"give {verdict.expects}, or add --force to run it anyway (the result is then flagged)",
    )
