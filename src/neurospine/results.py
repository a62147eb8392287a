"""``TaskResult``: what every pipeline returns, so batch runs and the CLI treat them alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TaskResult:
    """Outputs of one pipeline run on one input.

    ``measures`` holds scalar biomarkers for the cohort table, with units in the keys
    (``csa_mm2_C2C3``); ``models`` maps model name -> version.
    """

    task: str
    input_path: str
    outputs: dict[str, Path] = field(default_factory=dict)
    measures: dict[str, float | int | str | None] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
