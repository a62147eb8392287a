"""Which feature model reads a table: ``--model`` as a file or a shipped name, and the automatic fallback.

``--model`` takes a model file (``MODEL.npz``, with or without the suffix, as written by ``fit`` and
``recalibrate``) or the name of a shipped feature model as ``neurospine models`` prints it
(``brainage_features``, ``brainage_features_regional``).

Without ``--model``, the shipped ``brainage_features`` reads the table when every one of its columns is
there (a column that is absent or empty in every row counts as missing); otherwise the first model of
:data:`FALLBACKS` whose columns are all there does, and one warning line names the missing columns and the
model used. When no shipped model's columns are complete, or a model given by ``--model`` lacks columns,
an :class:`~neurospine.errors.InputError` (exit 2) lists the missing columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from neurospine.brainage.features import FeatureTable, list_names
from neurospine.brainage.model import BrainAgeModel, npz_path
from neurospine.errors import InputError, ModelNotFoundError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "brainage_features"
#: shipped models tried, in this order, when the default model's columns are incomplete
FALLBACKS: tuple[str, ...] = ("brainage_features_regional",)
FEATURE_FRAMEWORK = "numpy-npz"


@dataclass(frozen=True)
class ChosenModel:
    model: BrainAgeModel
    #: the shipped model's name, or the file it was read from
    name: str
    #: columns of the default model the table lacks when a fallback was chosen (else empty)
    missing_from_default: tuple[str, ...] = ()


def shipped_feature_models() -> list[str]:
    """Names of the installed feature models (cards with framework ``numpy-npz``)."""
    from neurospine.models.registry import list_cards

    return [c.name for c in list_cards() if c.framework == FEATURE_FRAMEWORK]


def load_shipped(name: str) -> BrainAgeModel:
    """A shipped feature model by card name (weights sha256-verified)."""
    from neurospine.models.registry import load_card, weights_path

    card = load_card(name)
    if card.framework != FEATURE_FRAMEWORK:
        raise InputError(
            None,
            f"model '{name}' is not a feature-table model (framework {card.framework})",
            f"use one of {', '.join(shipped_feature_models())} or a MODEL.npz written by `neurospine brainage fit`",
        )
    model = BrainAgeModel.load(weights_path(card))
    model.meta.setdefault("shipped_model", {"name": card.name, "version": card.version, "sha256": card.sha256})
    return model


def resolve(spec: str | Path | None) -> tuple[BrainAgeModel, str]:
    """``--model`` value -> (model, name): an existing file first, else a shipped model name."""
    if spec is None:
        return load_shipped(DEFAULT_MODEL), DEFAULT_MODEL
    text = str(spec)
    if Path(text).is_file() or npz_path(text).is_file():
        return BrainAgeModel.load(text), text
    names = shipped_feature_models()
    is_name = "/" not in text and "\\" not in text and not text.endswith(".npz")
    if is_name:
        try:
            return load_shipped(text), text
        except ModelNotFoundError:
            pass
    raise InputError(
        text,
        "model not found: neither a model file nor the name of an installed feature model",
        f"give a MODEL.npz written by `neurospine brainage fit|recalibrate` or one of {', '.join(names)} "
        "(`neurospine models`)",
    )


def for_table(table: FeatureTable, spec: str | Path | None) -> ChosenModel:
    """The model that reads ``table``: ``spec`` when given (its columns must all be there), else the default
    model or, when the table lacks some of its columns, the first complete fallback (module doc)."""
    model, name = resolve(spec)
    missing = table.missing(model.features)
    if not missing:
        return ChosenModel(model, name)
    fallbacks = [f for f in FALLBACKS if f != name] if spec is None else []
    available = set(shipped_feature_models())
    for fb in fallbacks:
        if fb not in available:
            continue
        alt = load_shipped(fb)
        if not table.missing(alt.features):
            log.warning(
                "%s: %d column(s) of %s missing or empty (%s); using %s, which does not need them",
                table.path,
                len(missing),
                name,
                list_names(missing),
                fb,
            )
            return ChosenModel(alt, fb, tuple(missing))
    alt_names = [f for f in FALLBACKS if f in available and f != name]
    fix = (
        "export the same FreeSurfer measures (aparc.a2009s thickness + aseg volumes) with these column names"
        + (f" (no installed fallback model has all its columns either: {', '.join(alt_names)})" if alt_names else "")
        + ", or fit a model on your own labelled table with `neurospine brainage fit`"
    )
    if spec is not None:
        usable = [f for f in alt_names if not table.missing(load_shipped(f).features)]
        if usable:
            fix = f"use --model {usable[0]}, which does not need them, or omit --model to choose automatically"
    raise InputError(
        table.path,
        f"{len(missing)} column(s) that model {name} needs are missing or empty: {list_names(missing)}",
        fix,
    )
