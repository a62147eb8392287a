"""Tissue classes: what each voxel is made of, for intensity synthesis (independent of the label scheme)."""

from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    AIR = 0
    FAT = 1
    MUSCLE = 2
    SOFT = 3  # generic soft tissue (neck, prevertebral, skin)
    ORGAN = 4  # solid abdominal / thoracic organs
    BOWEL = 5
    LUNG = 6
    VESSEL = 7
    CORTICAL = 8
    MARROW = 9  # vertebral body and sacrum marrow
    MARROW_POST = 10  # posterior elements
    ENDPLATE = 11
    NUCLEUS = 12
    ANNULUS = 13
    CSF = 14
    CORD = 15
    EPIDURAL_FAT = 16
    LIGAMENT = 17
    NERVE = 18  # cauda equina roots
    BRAIN = 19
    FLUID = 20  # bladder, cysts
    NUCLEUS_DEGEN = 21


N_TISSUES = len(Tissue)
