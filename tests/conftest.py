"""Shared fixtures: phantom factories and the path to ../shared/data."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from neurospine.io import Volume

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


def make_affine(spacing_mm: tuple[float, float, float], axcodes: str = "RAS", origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Affine whose voxel axes point along ``axcodes`` with the given spacing."""
    ornt = nib.orientations.axcodes2ornt(tuple(axcodes))
    aff = np.zeros((4, 4))
    aff[3, 3] = 1
    for vox_axis, (world_axis, flip) in enumerate(ornt):
        aff[int(world_axis), vox_axis] = flip * spacing_mm[vox_axis]
    aff[:3, 3] = origin
    return aff


def make_volume(shape=(10, 20, 30), spacing_mm=(1.0, 1.0, 1.0), axcodes="RAS", seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.random(shape).astype(np.float32), make_affine(spacing_mm, axcodes))


@pytest.fixture
def volume_factory():
    return make_volume
