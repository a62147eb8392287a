"""benchmarks.cord_lumbar: the superior-inferior extent of a mask in world millimetres."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.cord_lumbar import superior_length_mm

from tests.conftest import make_affine


def test_superior_length_follows_the_world_axis_not_the_voxel_axis():
    mask = np.zeros((10, 12, 8), dtype=bool)
    mask[5, 2:9, 4] = True  # 7 voxels along axis 1
    ras = make_affine((1.0, 2.0, 3.0), "RAS")  # axis 1 is anterior: no superior extent
    pir = make_affine((1.0, 2.0, 3.0), "PIR")  # axis 1 is inferior, 2 mm per voxel
    assert superior_length_mm(mask, ras) == pytest.approx(0.0)
    assert superior_length_mm(mask, pir) == pytest.approx(12.0)
    assert superior_length_mm(np.zeros_like(mask), pir) == 0.0
