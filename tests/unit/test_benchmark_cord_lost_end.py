"""The simulated coil fall-off of benchmarks.cord_lost_end darkens the caudal half of the field, in any voxel order."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.cord_lost_end import falloff

from neurospine.io import Volume, reorient
from tests.conftest import make_affine


@pytest.mark.parametrize("axcodes", ["RAS", "PSR", "LPI"])
def test_falloff_darkens_the_caudal_half_only(axcodes):
    ras = Volume(np.ones((4, 5, 21), dtype=np.float32), make_affine((1.0, 1.0, 2.0), "RAS"))
    vol = reorient(ras, axcodes)[0]
    out = Volume(falloff(np.asarray(vol.data), np.asarray(vol.affine), 10.0), vol.affine)
    back = np.asarray(reorient(out, "RAS")[0].data)[0, 0]  # along the superior axis, caudal first
    assert np.allclose(back[10:], 1.0)  # the middle slice and everything above it
    assert back[9] == pytest.approx(np.exp(-2.0 / 10.0)) and back[0] == pytest.approx(np.exp(-20.0 / 10.0))
    assert np.all(np.diff(back[:11]) > 0)
