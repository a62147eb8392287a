"""A small sacrum the naming did not accept is removed from the outputs; an accepted or large one stays."""

from __future__ import annotations

import numpy as np

from neurospine.spine import classes as C
from neurospine.spine.api import drop_unused_sacrum
from neurospine.spine.instances import SACRUM_TMP, InstanceResult, Vertebra
from neurospine.spine.naming import Naming


def _vertebra(depth_mm: float) -> Vertebra:
    return Vertebra(1, np.zeros(3), 64, 15.0, depth_mm, 2.0, 6.0)


def _case(sacrum_voxels: int, depth_mm: float = 15.0) -> tuple[InstanceResult, np.ndarray]:
    inst = np.zeros((20, 20, 20), dtype=np.int16)
    cls = np.zeros((20, 20, 20), dtype=np.uint8)
    inst[2:6, 2:6, 2:6] = 1
    cls[2:6, 2:6, 2:6] = C.CORPUS
    flat = inst.reshape(-1)
    idx = np.arange(8000 - sacrum_voxels, 8000)
    flat[idx] = SACRUM_TMP
    cls.reshape(-1)[idx] = C.SACRUM
    return InstanceResult(inst, (inst == 1).astype(np.int16), [_vertebra(depth_mm)], sacrum_voxels), cls


def test_small_unused_sacrum_under_cervical_bodies_is_removed_with_a_flag():
    inst, cls = _case(300, depth_mm=15.0)
    naming = Naming([2, 3, 4], "positional", 0.2, [])
    drop_unused_sacrum(inst, cls, naming, (1.0, 1.0, 1.0))
    assert inst.sacrum_voxels == 0 and not (inst.instances == SACRUM_TMP).any()
    assert not (cls == C.SACRUM).any() and (cls == C.CORPUS).sum() == 64
    assert "sacrum-like" in naming.flags[-1]


def test_anchor_sacrum_large_sacrum_or_sliver_under_lumbar_bodies_is_kept():
    for anchor, voxels, spacing, depth in (
        ("S1", 300, (1.0, 1.0, 1.0), 15.0),
        ("positional", 1200, (2.0, 2.0, 2.0), 15.0),
        ("positional", 300, (1.0, 1.0, 1.0), 29.0),
    ):
        inst, cls = _case(voxels, depth)
        naming = Naming([20, 21], anchor, 0.9, [])
        drop_unused_sacrum(inst, cls, naming, spacing)
        assert inst.sacrum_voxels == voxels and (cls == C.SACRUM).sum() == voxels and not naming.flags
