"""Tissue -> intensity: named contrast priors (T1w, T2w, STIR, T2*w, CT in HU) and random SynthSeg-style draws."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from neurospine.synth.tissues import N_TISSUES, Tissue

CONTRASTS = ("t2w", "t1w", "stir", "t2sw", "ct")
MR_CONTRASTS = ("t2w", "t1w", "stir", "t2sw")

T = Tissue
# Relative MR signal (0 = no signal, 1 = brightest) per tissue, from textbook appearances.
# fmt: off
_PRIORS: dict[str, dict[Tissue, float]] = {
    "t2w": {T.AIR: 0.01, T.FAT: 0.72, T.MUSCLE: 0.22, T.SOFT: 0.32, T.ORGAN: 0.30, T.BOWEL: 0.45, T.LUNG: 0.03,
            T.VESSEL: 0.07, T.CORTICAL: 0.04, T.MARROW: 0.42, T.MARROW_POST: 0.38, T.ENDPLATE: 0.07,
            T.NUCLEUS: 0.85, T.ANNULUS: 0.22, T.CSF: 0.95, T.CORD: 0.42, T.EPIDURAL_FAT: 0.70, T.LIGAMENT: 0.06,
            T.NERVE: 0.35, T.BRAIN: 0.45, T.FLUID: 0.92, T.NUCLEUS_DEGEN: 0.25},
    "t1w": {T.AIR: 0.01, T.FAT: 0.92, T.MUSCLE: 0.35, T.SOFT: 0.42, T.ORGAN: 0.48, T.BOWEL: 0.40, T.LUNG: 0.02,
            T.VESSEL: 0.12, T.CORTICAL: 0.04, T.MARROW: 0.62, T.MARROW_POST: 0.58, T.ENDPLATE: 0.10,
            T.NUCLEUS: 0.36, T.ANNULUS: 0.30, T.CSF: 0.12, T.CORD: 0.48, T.EPIDURAL_FAT: 0.88, T.LIGAMENT: 0.08,
            T.NERVE: 0.42, T.BRAIN: 0.50, T.FLUID: 0.10, T.NUCLEUS_DEGEN: 0.28},
    "stir": {T.AIR: 0.01, T.FAT: 0.06, T.MUSCLE: 0.20, T.SOFT: 0.30, T.ORGAN: 0.35, T.BOWEL: 0.50, T.LUNG: 0.03,
             T.VESSEL: 0.08, T.CORTICAL: 0.03, T.MARROW: 0.18, T.MARROW_POST: 0.16, T.ENDPLATE: 0.06,
             T.NUCLEUS: 0.85, T.ANNULUS: 0.25, T.CSF: 0.95, T.CORD: 0.40, T.EPIDURAL_FAT: 0.07, T.LIGAMENT: 0.05,
             T.NERVE: 0.35, T.BRAIN: 0.42, T.FLUID: 0.95, T.NUCLEUS_DEGEN: 0.25},
    "t2sw": {T.AIR: 0.01, T.FAT: 0.45, T.MUSCLE: 0.28, T.SOFT: 0.35, T.ORGAN: 0.25, T.BOWEL: 0.35, T.LUNG: 0.02,
             T.VESSEL: 0.40, T.CORTICAL: 0.03, T.MARROW: 0.22, T.MARROW_POST: 0.20, T.ENDPLATE: 0.05,
             T.NUCLEUS: 0.65, T.ANNULUS: 0.40, T.CSF: 0.90, T.CORD: 0.52, T.EPIDURAL_FAT: 0.45, T.LIGAMENT: 0.08,
             T.NERVE: 0.45, T.BRAIN: 0.50, T.FLUID: 0.85, T.NUCLEUS_DEGEN: 0.35},
    # CT in Hounsfield units
    "ct": {T.AIR: -1000.0, T.FAT: -100.0, T.MUSCLE: 50.0, T.SOFT: 40.0, T.ORGAN: 55.0, T.BOWEL: 20.0, T.LUNG: -850.0,
           T.VESSEL: 45.0, T.CORTICAL: 1100.0, T.MARROW: 230.0, T.MARROW_POST: 330.0, T.ENDPLATE: 700.0,
           T.NUCLEUS: 85.0, T.ANNULUS: 100.0, T.CSF: 8.0, T.CORD: 35.0, T.EPIDURAL_FAT: -90.0, T.LIGAMENT: 70.0,
           T.NERVE: 30.0, T.BRAIN: 35.0, T.FLUID: 5.0, T.NUCLEUS_DEGEN: 95.0},
}
# within-tissue texture (fraction of the mean for MR, HU for CT)
_TEXTURE_MR = {T.MARROW: 0.12, T.MARROW_POST: 0.12, T.MUSCLE: 0.10, T.BOWEL: 0.30, T.ORGAN: 0.10, T.FAT: 0.06,
               T.NUCLEUS: 0.06, T.LUNG: 0.5, T.SOFT: 0.12}
_TEXTURE_CT = {T.MARROW: 60.0, T.MARROW_POST: 80.0, T.CORTICAL: 150.0, T.BOWEL: 80.0, T.MUSCLE: 10.0, T.LUNG: 60.0}
# fmt: on


def prior_means(contrast: str) -> npt.NDArray[np.float32]:
    """Mean intensity of every tissue class under a named contrast (look-up table by tissue value)."""
    table = _PRIORS[contrast]
    return np.array([table[Tissue(i)] for i in range(N_TISSUES)], dtype=np.float32)


def sample_intensity_table(
    contrast: str, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Per-tissue (mean, texture std) for one case.

    Named contrasts jitter their priors (scanner and sequence variation keeps the order of tissues);
    ``"random"`` draws every tissue mean uniformly in [0, 1] (SynthSeg-style domain randomisation).
    """
    if contrast == "random":
        means = rng.uniform(0.0, 1.0, N_TISSUES).astype(np.float32)
        stds = (rng.uniform(0.0, 0.08, N_TISSUES) * (0.2 + means)).astype(np.float32)
        # keep air dark in most cases so body outlines look like images
        if rng.random() < 0.8:
            means[int(Tissue.AIR)] = float(rng.uniform(0.0, 0.08))
        return means, stds
    base = prior_means(contrast)
    if contrast == "ct":
        means = base + rng.normal(0.0, 1.0, N_TISSUES).astype(np.float32) * np.maximum(8.0, 0.06 * np.abs(base))
        means[int(Tissue.AIR)] = -1000.0
        stds = np.full(N_TISSUES, 6.0, dtype=np.float32)
        for tis, sd in _TEXTURE_CT.items():
            stds[int(tis)] = sd
        return means.astype(np.float32), stds
    jitter = rng.normal(1.0, 0.08, N_TISSUES).astype(np.float32)
    means = np.clip(base * jitter + rng.normal(0.0, 0.015, N_TISSUES).astype(np.float32), 0.0, 1.0)
    stds = np.full(N_TISSUES, 0.03, dtype=np.float32) * np.maximum(means, 0.1)
    for tis, sd in _TEXTURE_MR.items():
        stds[int(tis)] = sd * max(float(means[int(tis)]), 0.05)
    return means.astype(np.float32), stds.astype(np.float32)


def resolve_contrast(contrast: str, rng: np.random.Generator) -> str:
    """``"any"`` picks a named contrast; others pass through (``"random"`` stays random)."""
    if contrast == "any":
        return str(rng.choice([*MR_CONTRASTS, "random", "ct"]))
    if contrast not in (*CONTRASTS, "random"):
        raise ValueError(f"unknown contrast {contrast!r}; use one of {(*CONTRASTS, 'random', 'any')}")
    return contrast
