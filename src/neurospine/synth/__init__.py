"""Synthetic spine engine: procedural SPINEPS label maps and images of any contrast.

``generate_case(seed, SynthConfig(...))`` returns a :class:`SynthCase` (image, semantic and instance
labels, soft cord/canal fractions, tissue map, metadata); ``generate_slice2d`` makes 2D MR/CT/X-ray
slices with body and disc instances. Everything is deterministic from the seed and needs no disk.
"""

from neurospine.synth.case import SynthCase, SynthConfig, generate_case
from neurospine.synth.slice2d import generate_slice2d

__all__ = ["SynthCase", "SynthConfig", "generate_case", "generate_slice2d"]
