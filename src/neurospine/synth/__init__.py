"""Synthetic spine engine: procedural SPINEPS label maps and images of any contrast.

``generate_case(seed, SynthConfig(...))`` returns a :class:`SynthCase`; ``generate_slice2d`` makes 2D
MR/CT slices and lateral/AP X-ray projections with body and disc instances; ``augment.augment_labelmap``
warps real label maps and ``augment.image_from_labels`` paints images on them. Everything is
deterministic from the seed and needs no disk.

Conventions of a :class:`SynthCase`:

- Arrays are axis-aligned with RAS+ world axes (``data[i, j, k]``: ``i`` to the patient's right, ``j``
  anterior, ``k`` superior; axcodes ``RAS``). Thick slices lie on axis 0 (sagittal), 2 (axial) or
  1 (coronal). Use ``neurospine.io.reorient`` for other orientations.
- ``semantic``: SPINEPS output values (41-48 posterior sub-regions, 49 corpus, 62 endplate, 100 disc,
  60 cord, 61 spinal canal = content of the bony canal (thecal sac + epidural space, as in SPINEPS
  masks), 26 sacrum, 0 everything else).
- ``instance``: vertebra ids from ``neurospine.labels`` (C1=1 .. L5=24, L6=25, T13=28, sacrum/S1=26),
  discs 100+X and endplates 200+X where X is the vertebra above the disc (both endplates facing disc
  100+X carry 200+X, as in the SPINEPS/TPTBox fixtures); canal and cord are 0.
- ``cord_soft`` / ``canal_soft``: fraction of each voxel inside the cord / the canal (partial volume;
  the canal fraction is geometric and ignores bone or disc reaching into the canal).
  Canal and cord labels start at the foramen magnum; the medulla above is drawn but not labelled, and
  the cord ends at the conus (between mid L1 and mid L2).
- ``tissue``: :class:`neurospine.synth.tissues.Tissue` classes used for intensity synthesis.
- MR images are scaled so the 99.5th percentile is about 1; CT images are in HU.
"""

from neurospine.synth.case import SynthCase, SynthConfig, generate_case
from neurospine.synth.slice2d import generate_slice2d

__all__ = ["SynthCase", "SynthConfig", "generate_case", "generate_slice2d"]
