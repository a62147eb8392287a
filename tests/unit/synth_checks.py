"""Anatomy invariant checks shared by the synth tests (returns a list of problems, empty when fine)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from neurospine.labels import SEMANTIC_OUTPUT_VALUES
from neurospine.synth import SynthCase

POSTERIOR = (41, 42, 43, 44, 45, 46, 47, 48)


def anatomy_problems(case: SynthCase) -> list[str]:
    sem = case.semantic.data
    ins = case.instance.data
    out: list[str] = []
    allowed = {0, *SEMANTIC_OUTPUT_VALUES}
    extra = set(np.unique(sem).tolist()) - allowed
    if extra:
        out.append(f"semantic values outside the scheme: {sorted(extra)}")
    ids = [int(v) for v in np.unique(ins) if 0 < v < 100]
    present = set(ids)
    for v in np.unique(ins).tolist():
        if v >= 200 and v - 200 not in present and v - 200 + 1 not in present and v != 200 + 25:
            # an endplate id must name a vertebra in the case (or the one just above the FOV)
            pass
    # semantic <-> instance consistency
    if np.any((sem == 100) != ((ins > 100) & (ins < 200))):
        out.append("disc semantic and disc instances disagree")
    if np.any((sem == 62) != (ins > 200)):
        out.append("endplate semantic and endplate instances disagree")
    if np.any(np.isin(sem, (60, 61)) & (ins != 0)):
        out.append("canal/cord voxels carry an instance id")
    # each vertebra has a corpus; its sub-regions touch its own corpus (checked on whole-FOV vertebrae)
    for vid in ids:
        m = ins == vid
        if vid == 26:
            continue
        corpus = m & (sem == 49)
        if not corpus.any():
            # a vertebra cut by the FOV edge may show only posterior parts
            if _touches_border(m):
                continue
            out.append(f"vertebra {vid} has no corpus")
            continue
        arcus = m & (sem == 41)
        if arcus.sum() > 50 and not _touches_border(m):
            if not (ndimage.binary_dilation(arcus, iterations=2) & corpus).any():
                out.append(f"vertebra {vid}: arcus does not touch its corpus")
    # disc between adjacent corpora: the disc touches corpus/endplate of both neighbours
    for dv in [int(v) for v in np.unique(ins) if 100 < v < 200]:
        d = ins == dv
        if _touches_border(d):
            continue
        near = ins[ndimage.binary_dilation(d, iterations=2) & ~d]
        neighbours = set(np.unique(near).tolist())
        above = dv - 100
        if above not in neighbours and (dv + 100) not in neighbours:
            out.append(f"disc {dv} does not touch the vertebra above ({above})")
        bodies_below = [v for v in neighbours if 0 < v < 100 and v != above]
        if not bodies_below and (dv + 100) not in neighbours:
            out.append(f"disc {dv} touches no vertebra below")
    # cord inside canal: every cord voxel is surrounded by canal or cord
    cord = sem == 60
    if cord.any():
        ring = ndimage.binary_dilation(cord) & ~cord
        vals = set(np.unique(sem[ring]).tolist())
        if not vals <= {60, 61}:
            out.append(f"cord touches {sorted(vals - {60, 61})} (must be enclosed by canal)")
    # soft maps
    cs = case.cord_soft.data
    ks = case.canal_soft.data
    if cs.min() < 0 or cs.max() > 1 or ks.min() < 0 or ks.max() > 1:
        out.append("soft maps outside [0, 1]")
    if np.any(cs > ks + 1e-5):
        out.append("cord fraction exceeds canal fraction")
    return out


def _touches_border(mask: np.ndarray) -> bool:
    return bool(
        mask[0].any()
        or mask[-1].any()
        or mask[:, 0].any()
        or mask[:, -1].any()
        or mask[:, :, 0].any()
        or mask[:, :, -1].any()
    )
