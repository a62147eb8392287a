"""Per-case provenance manifest (JSON): versions, model cards, options, input checksum, timings, outputs."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import sys
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST_NAME = "neurospine_manifest.json"
MANIFEST_SCHEMA = "neurospine.case-manifest/1"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def options_sha256(task_target: str, options: Mapping[str, Any]) -> str:
    """Checksum of the task and its options (threads excluded: they never change results)."""
    text = json.dumps({"task": task_target, "options": dict(options)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def jsonable(value: Any) -> Any:
    """Numbers, strings, None, lists and dicts only (numpy scalars become Python numbers)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    item = getattr(value, "item", None)
    if callable(item):
        return jsonable(item())
    return str(value)


def model_cards(models: Mapping[str, str]) -> list[dict[str, Any]]:
    """Full model cards of the models a case used (or a note when a card cannot be found)."""
    from neurospine.errors import NeuroSpineError
    from neurospine.models import load_card

    cards: list[dict[str, Any]] = []
    for name, version in models.items():
        try:
            card = asdict(load_card(name))
        except NeuroSpineError as e:
            card = {"name": name, "version": version, "note": f"card not found: {e}"}
        cards.append(card)
    return cards


def build_manifest(
    *,
    case_key: str,
    run_id: str,
    task: str,
    task_target: str,
    input_path: str,
    input_sha256: str,
    entities: Mapping[str, str],
    options: Mapping[str, Any],
    threads: int,
    models: Mapping[str, str],
    timings_s: Mapping[str, float],
    started: str,
    finished: str,
    duration_s: float,
    outputs: Mapping[str, str],
    measures: Mapping[str, Any],
    warnings: list[str],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    from neurospine import __version__

    return jsonable(
        {
            "schema": MANIFEST_SCHEMA,
            "neurospine_version": __version__,
            "case_key": case_key,
            "run_id": run_id,
            "task": task,
            "task_target": task_target,
            "input": {"path": input_path, "sha256": input_sha256, "entities": dict(entities)},
            "options": dict(options),
            "threads": threads,
            "models": dict(models),
            "model_cards": model_cards(models),
            "started": started,
            "finished": finished,
            "duration_s": duration_s,
            "timings_s": dict(timings_s),
            "outputs": dict(outputs),
            "measures": dict(measures),
            "warnings": list(warnings),
            "extra": dict(extra),
            "host": socket.gethostname(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        }
    )


def read_manifest(case_dir: Path) -> dict[str, Any] | None:
    p = case_dir / MANIFEST_NAME
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
