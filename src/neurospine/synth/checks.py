"""Anatomy invariants of a synthetic case: a list of human-readable problems (empty when all hold).

Used by the tests on many seeds, and usable on any generated case before training on it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from neurospine.labels import SEMANTIC_OUTPUT_VALUES
from neurospine.synth.case import SynthCase


def _touches_border(mask: npt.NDArray[np.bool_]) -> bool:
    return bool(
        mask[0].any()
        or mask[-1].any()
        or mask[:, 0].any()
        or mask[:, -1].any()
        or mask[:, :, 0].any()
        or mask[:, :, -1].any()
    )


def anatomy_problems(case: SynthCase) -> list[str]:
    """Check the label scheme, corpus/disc/sub-region relations, cord-in-canal and soft-map ranges."""
    sem = np.asarray(case.semantic.data)
    ins = np.asarray(case.instance.data)
    out: list[str] = []
    extra = set(np.unique(sem).tolist()) - {0, *SEMANTIC_OUTPUT_VALUES}
    if extra:
        out.append(f"semantic values outside the scheme: {sorted(extra)}")
    if np.any((sem == 100) != ((ins > 100) & (ins < 200))):
        out.append("disc semantic and disc instances disagree")
    if np.any((sem == 62) != (ins > 200)):
        out.append("endplate semantic and endplate instances disagree")
    if np.any(np.isin(sem, (60, 61)) & (ins != 0)):
        out.append("canal/cord voxels carry an instance id")
    ids = [int(v) for v in np.unique(ins) if 0 < v < 100]
    # each vertebra inside the field of view has a corpus, and its arch touches that corpus
    for vid in ids:
        if vid == 26:
            continue
        m = ins == vid
        corpus = m & (sem == 49)
        if not corpus.any():
            if not _touches_border(m):
                out.append(f"vertebra {vid} has no corpus")
            continue
        arcus = m & (sem == 41)
        if arcus.sum() > 50 and not _touches_border(m):
            if not (ndimage.binary_dilation(arcus, iterations=2) & corpus).any():
                out.append(f"vertebra {vid}: arcus does not touch its corpus")
    # a disc lies between the vertebra above (or its endplate) and a vertebra below
    for dv in [int(v) for v in np.unique(ins) if 100 < v < 200]:
        d = ins == dv
        if _touches_border(d):
            continue
        neighbours = set(np.unique(ins[ndimage.binary_dilation(d, iterations=2) & ~d]).tolist())
        above = dv - 100
        if above not in neighbours and (dv + 100) not in neighbours:
            out.append(f"disc {dv} does not touch the vertebra above ({above})")
        below = [v for v in neighbours if 0 < v < 100 and v != above]
        if not below and (dv + 100) not in neighbours:
            out.append(f"disc {dv} touches no vertebra below")
    # the cord is enclosed by the canal
    cord = sem == 60
    if cord.any():
        ring = ndimage.binary_dilation(cord) & ~cord
        vals = set(np.unique(sem[ring]).tolist())
        if not vals <= {60, 61}:
            out.append(f"cord touches {sorted(vals - {60, 61})} (must be enclosed by canal)")
    cs = np.asarray(case.cord_soft.data)
    ks = np.asarray(case.canal_soft.data)
    if cs.min() < 0 or cs.max() > 1 or ks.min() < 0 or ks.max() > 1:
        out.append("soft maps outside [0, 1]")
    if np.any(cs > ks + 1e-5):
        out.append("cord fraction exceeds canal fraction")
    return out
