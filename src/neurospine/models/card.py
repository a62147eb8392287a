"""``ModelCard``: a shipped model describes itself (version, hash, inputs, data, measured metrics)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from neurospine.errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str
    file: str
    sha256: str
    framework: str = "onnx"
    description: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    training_data: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_command: str = ""
    train_cpu_minutes: float | None = None
    created: str = ""
    notes: str = ""

    @classmethod
    def from_json(cls, path: Path) -> ModelCard:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise ModelNotFoundError(f"{path}: model card unreadable ({e}); reinstall neurospine") from e
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False) + "\n"

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "task": self.task, "sha256": self.sha256[:12]}
