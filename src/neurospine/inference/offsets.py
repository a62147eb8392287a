"""Per-class logit offsets named in a model card (``inputs.logit_bias``) as a vector over the output channels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt


def logit_offsets(spec: Mapping[str, float] | None, class_names: Sequence[str]) -> npt.NDArray[np.float32] | None:
    """``{class name: offset}`` -> one offset per channel of ``class_names`` (None for an empty spec).

    Unknown names raise ``ValueError`` listing the known ones (a card written for another model)."""
    if not spec:
        return None
    names = list(class_names)
    unknown = sorted(set(spec) - set(names))
    if unknown:
        raise ValueError(f"logit_bias names unknown classes {unknown}; known: {names}")
    out = np.zeros(len(names), dtype=np.float32)
    for name, value in spec.items():
        out[names.index(name)] = float(value)
    return out
