"""Find shipped model cards and their verified weight files.

Models ship inside the package (``neurospine/models/weights/<name>.json`` + weights file). The
environment variable ``NEUROSPINE_MODELS_DIR`` points at another folder with the same layout (e.g. a
freshly trained model); it is read when a model is requested, never at import.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from neurospine.errors import InputError, ModelNotFoundError, WeightsIntegrityError
from neurospine.models.card import ModelCard

ENV_MODELS_DIR = "NEUROSPINE_MODELS_DIR"


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent / "weights"


def search_dirs() -> list[Path]:
    dirs = []
    override = os.environ.get(ENV_MODELS_DIR)
    if override:
        dirs.append(Path(override))
    dirs.append(shipped_dir())
    return dirs


def list_cards() -> list[ModelCard]:
    """Every card found (override folder first; a name appears once)."""
    seen: dict[str, ModelCard] = {}
    for d in search_dirs():
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.json")):
            card = ModelCard.from_json(p)
            seen.setdefault(card.name, card)
    return list(seen.values())


def _card_path(name: str) -> Path:
    for d in search_dirs():
        p = d / f"{name}.json"
        if p.is_file():
            return p
    raise ModelNotFoundError(
        f"model '{name}' is not installed (looked in {', '.join(str(d) for d in search_dirs())}); "
        f"reinstall neurospine or train it with `neurospine train`"
    )


def load_card(name: str, task: str | None = None) -> ModelCard:
    """The card of model ``name``; with ``task`` (e.g. ``"cord"``), a model made for another task (a name
    from ``neurospine models`` given to the wrong command's ``--model``) is an ``InputError``."""
    card = ModelCard.from_json(_card_path(name))
    if task is not None and card.task != task:
        fitting = sorted(c.name for c in list_cards() if c.task == task)
        raise InputError(
            None,
            f"model '{name}' is not a {task} model (its task: {card.task})",
            f"give --model one of {', '.join(fitting) or 'the ' + task + ' models'} (`neurospine models`)",
        )
    return card


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=32)
def _verified(path: str, mtime_ns: int, expected: str) -> bool:
    return sha256_of(Path(path)) == expected


def weights_path(card: ModelCard) -> Path:
    """The card's weight file, checked against its sha256."""
    p = _card_path(card.name).parent / card.file
    if not p.is_file():
        raise ModelNotFoundError(f"{p}: weights of model '{card.name}' missing; reinstall neurospine")
    if not _verified(str(p), p.stat().st_mtime_ns, card.sha256):
        raise WeightsIntegrityError(
            f"{p}: sha256 does not match model card '{card.name}' {card.version}; the file is corrupt or was "
            "replaced, reinstall neurospine or retrain"
        )
    return p
