"""Cervical levels from the discs in front of the cord (the fallback when the spine model names none)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.cord.disclevels import cervical_levels, find_discs
from neurospine.io import Volume, load_volume
from neurospine.labels import VERTEBRA_IDS
from tests.conftest import make_affine


def _column(disc_z_mm: list[float], *, bright_discs: bool, shape=(40, 60, 80), noise=0.05, seed=0) -> Volume:
    """1 mm RAS phantom: a vertical cord (r = 4.8 mm, area ~72 mm2) with a column of bodies in front of it;
    5 mm discs (with 1 mm endplates) at ``disc_z_mm`` (slice index = mm)."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, 0.5, dtype=np.float32)
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    cord2d = (ii - 20) ** 2 + (jj - 20) ** 2 <= 4.8**2
    body_z = np.full(shape[2], 1.0)
    for z in disc_z_mm:
        k = np.arange(shape[2])
        body_z[np.abs(k - z) <= 2.5] = 1.6 if bright_discs else 0.4
        body_z[np.abs(np.abs(k - z) - 3.0) < 0.6] = 0.2  # dark endplates
    body2d = (np.abs(ii - 20) <= 8) & (jj >= 28) & (jj <= 45)
    img += body2d[:, :, None] * (body_z[None, None, :] - 0.5)
    img[cord2d] = 0.8
    img += rng.normal(0, noise, shape).astype(np.float32)
    aff = make_affine((1.0, 1.0, 1.0), "RAS", origin=(0.0, 0.0, 0.0))
    return Volume(img, aff)


def _cord(shape=(40, 60, 80)) -> np.ndarray:
    ii, jj = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    return np.repeat(((ii - 20) ** 2 + (jj - 20) ** 2 <= 4.8**2)[:, :, None], shape[2], axis=2).astype(np.float32)


@pytest.mark.parametrize("bright", [True, False])
def test_discs_found_whatever_their_contrast(bright):
    discs = [12.0, 30.0, 48.0, 66.0]
    vol = _column(discs, bright_discs=bright)
    found = cervical_levels(vol, _cord())
    assert found.mask is not None, found.reason
    assert sorted(found.discs_mm) == pytest.approx(discs, abs=2.0)
    assert 15.0 <= found.period_mm <= 21.0
    # the top disc is C2/C3: C2 above it, then C3, C4, C5 between the discs, C6 below the lowest one
    lev = found.mask[20, 20, :]
    assert lev[70] == VERTEBRA_IDS["C2"] and lev[57] == VERTEBRA_IDS["C3"] and lev[39] == VERTEBRA_IDS["C4"]
    assert lev[21] == VERTEBRA_IDS["C5"] and lev[5] == VERTEBRA_IDS["C6"]
    assert not found.mask[~(_cord() >= 0.5)].any()  # only the cord is painted


def test_no_levels_without_a_disc_pattern_or_for_a_thin_cord():
    flat = _column([], bright_discs=True)
    assert cervical_levels(flat, _cord()).mask is None
    thin = _cord() * 0.0
    thin[20:23, 20:23, :] = 1.0  # 9 mm2: not a cervical cord
    res = cervical_levels(_column([12.0, 30.0, 48.0, 66.0], bright_discs=True), thin)
    assert res.mask is None and "cervical" in res.reason


def test_thick_axial_slices_are_refused():
    vol = _column([12.0, 30.0], bright_discs=True)
    thick = Volume(vol.data[:, :, ::4], make_affine((1.0, 1.0, 4.0), "RAS"))
    assert "slices" in cervical_levels(thick, _cord()[:, :, ::4]).reason


def test_find_discs_on_a_flat_profile_finds_nothing():
    discs, _, _ = find_discs(np.ones(60), 1.0)
    assert discs.size == 0


def test_sct_t2_levels_agree_with_the_vertcenters_reference(shared_data):
    """errsm_30 sct-t2 (55 mm crop, C2-C5): the spine model names nothing there. The discs name every cord slice
    of the manual mask, and each SCT vertcenters point (one per level, in the cord) gets its own level."""
    sct = shared_data / "sct_testing_data"
    img = load_volume(sct / "sct-t2_img.nii.gz")
    cord = load_volume(sct / "sct-t2_cordseg.nii.gz", check_intensity=False)
    found = cervical_levels(img, np.asarray(cord.data, dtype=np.float32))
    assert found.mask is not None, found.reason
    on_cord = np.asarray(cord.data) > 0
    named = (found.mask > 0) & on_cord
    slices_with_cord = np.flatnonzero(on_cord.any(axis=(0, 2)))  # PSR: axis 1 is S
    slices_named = np.flatnonzero(named.any(axis=(0, 2)))
    assert slices_named.size >= 0.9 * slices_with_cord.size
    centres = np.asarray(load_volume(sct / "sct-t2_vertcenters.nii.gz", check_intensity=False).data)
    for v in np.unique(centres[centres > 0]):
        p = np.argwhere(centres == v)[0]
        assert int(found.mask[tuple(p)]) == int(v)
