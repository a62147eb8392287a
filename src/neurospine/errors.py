"""Exception hierarchy. Every error names the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path


class NeuroSpineError(Exception):
    """Base class of all errors raised on purpose by neurospine."""

    exit_code = 1


class InputError(NeuroSpineError):
    """The user's input cannot be used (missing, unreadable, wrong shape or values)."""

    exit_code = 2

    def __init__(self, path: str | Path | None, problem: str, fix: str) -> None:
        self.path = None if path is None else str(path)
        self.problem = problem
        self.fix = fix
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{problem}. Fix: {fix}")


class GeometryError(InputError):
    """Image geometry is unusable (spacing, affine, orientation, grid mismatch)."""


class ModelNotFoundError(NeuroSpineError):
    """A model card or its weights are not shipped/installed."""

    exit_code = 3


class WeightsIntegrityError(NeuroSpineError):
    """A weights file does not match the sha256 recorded in its model card."""

    exit_code = 3


class NoStructureFoundError(NeuroSpineError):
    """A pipeline ran but found nothing to measure (e.g. no cord in the image)."""

    exit_code = 4
