"""neurospine: spine and brain MRI masks and biomarkers, on the CPU, with models trained here.

The public names below are imported on first use (PEP 562), so ``import neurospine`` and ``neurospine --help``
do not load nibabel and numpy until a command needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["InputError", "NeuroSpineError", "TaskResult", "Volume", "__version__", "load_volume"]

_LAZY = {
    "InputError": "neurospine.errors",
    "NeuroSpineError": "neurospine.errors",
    "Volume": "neurospine.io",
    "load_volume": "neurospine.io",
    "TaskResult": "neurospine.results",
}

if TYPE_CHECKING:
    from neurospine.errors import InputError, NeuroSpineError
    from neurospine.io import Volume, load_volume
    from neurospine.results import TaskResult


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'neurospine' has no attribute {name!r}")
