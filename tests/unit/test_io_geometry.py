"""Geometry of neurospine.io: every voxel keeps its world position through reorient and resample.

Complements tests/unit/test_geometry_roundtrip.py (which checks one voxel and label round trips)
with whole-grid world-coordinate checks, dtype preservation and 0.5 x 0.5 x 4 mm round trips.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurospine.io import Volume, reorient, resample_like, resample_to_spacing

ANISO_MM = (0.5, 0.5, 4.0)
ORIENTATIONS = ["LAS", "PIR", "IPL", "RPI"]


def axis_affine(spacing_mm, axcodes="RAS", origin=(0.0, 0.0, 0.0)):
    aff = np.zeros((4, 4))
    aff[3, 3] = 1.0
    for vox_axis, (world_axis, flip) in enumerate(nib.orientations.axcodes2ornt(tuple(axcodes))):
        aff[int(world_axis), vox_axis] = flip * spacing_mm[vox_axis]
    aff[:3, 3] = origin
    return aff


def oblique(aff, degrees=(13.0, -21.0, 7.0)):
    """Rotate an affine about x, y and z (a tilted acquisition) and move its origin."""
    ax, ay, az = np.deg2rad(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    rot = np.eye(4)
    rot[:3, :3] = rz @ ry @ rx
    rot[:3, 3] = (31.0, -12.5, 88.0)
    return rot @ aff


def all_world(vol: Volume) -> np.ndarray:
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in vol.shape], indexing="ij"), -1).reshape(-1, 3)
    return vol.world_coords(ijk).reshape(*vol.shape, 3)


@pytest.mark.parametrize("axcodes", ORIENTATIONS)
@pytest.mark.parametrize("target", ["RAS", "PIR", "LPS"])
@pytest.mark.parametrize("tilted", [False, True])
def test_reorient_keeps_every_voxel_in_place(axcodes, target, tilted):
    aff = axis_affine(ANISO_MM, axcodes, origin=(-20.0, 5.0, 40.0))
    vol = Volume(np.arange(5 * 6 * 7, dtype=np.int32).reshape(5, 6, 7), oblique(aff) if tilted else aff)
    out, record = reorient(vol, target)
    if not tilted:
        assert out.axcodes == tuple(target)
    assert out.data.dtype == vol.data.dtype
    assert sorted(out.spacing_mm) == pytest.approx(sorted(vol.spacing_mm))
    # the voxel carrying value v sits at the same world point before and after
    before = all_world(vol).reshape(-1, 3)[vol.data.ravel().argsort()]
    after = all_world(out).reshape(-1, 3)[out.data.ravel().argsort()]
    np.testing.assert_allclose(after, before, atol=1e-9)
    back = record.undo_volume(out)
    assert back.same_grid(vol, tolerance_mm=1e-9)
    np.testing.assert_array_equal(back.data, vol.data)


@pytest.mark.parametrize("axcodes", ORIENTATIONS)
def test_anisotropic_labels_to_isotropic_and_back_is_exact(axcodes):
    """0.5 x 0.5 x 4 mm -> 0.5 mm isotropic -> back gives the same labels on the same grid."""
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 30, size=(12, 10, 6)).astype(np.uint16) * 7  # values up to 203, uint16
    vol = Volume(labels, oblique(axis_affine(ANISO_MM, axcodes)))
    iso = resample_to_spacing(vol, (0.5, 0.5, 0.5), order=0)
    assert iso.shape == (12, 10, 48)
    assert iso.data.dtype == np.uint16
    assert set(np.unique(iso.data)) <= set(np.unique(labels))
    back = resample_like(iso, vol, order=0)
    assert back.same_grid(vol, tolerance_mm=1e-9)
    np.testing.assert_array_equal(back.data, labels)


def test_resample_like_on_the_same_grid_is_identity():
    data = np.random.default_rng(0).random((7, 8, 5)).astype(np.float32)
    vol = Volume(data, oblique(axis_affine(ANISO_MM, "PIR")))
    np.testing.assert_array_equal(resample_like(vol, vol, order=0).data, data)
    np.testing.assert_allclose(resample_like(vol, vol, order=1).data, data, atol=1e-6)


def test_boolean_mask_resamples_as_boolean():
    mask = np.zeros((10, 10, 4), bool)
    mask[2:8, 3:7, 1:3] = True
    vol = Volume(mask, axis_affine(ANISO_MM, "LAS"))
    out = resample_to_spacing(vol, (0.25, 0.25, 2.0), order=0)
    assert out.data.dtype == np.bool_
    assert out.data.sum() == mask.sum() * 2 * 2 * 2


@pytest.mark.parametrize("axcodes", ORIENTATIONS)
def test_blob_centre_stays_put_across_grids(axcodes):
    """Resampling onto a rotated, coarser grid of another orientation keeps a blob's world centroid."""
    shape = (40, 40, 10)
    vol_aff = axis_affine(ANISO_MM, axcodes, origin=(-10.0, -10.0, -20.0))
    vol = Volume(np.zeros(shape, np.uint8), vol_aff)
    world = all_world(vol)
    centre = world[20, 20, 5]
    blob = (np.linalg.norm(world - centre, axis=-1) <= 6.0).astype(np.uint8)
    vol = Volume(blob, vol_aff)
    target = Volume(np.zeros((30, 30, 30), np.uint8), oblique(axis_affine((1.0, 1.0, 1.0), "RAS"), (5, 10, 15)))
    target = Volume(target.data, _centred(target, centre))
    moved = resample_like(vol, target, order=0)
    assert moved.data.sum() > 0
    got = all_world(moved)[moved.data > 0].mean(axis=0)
    np.testing.assert_allclose(got, centre, atol=1.0)  # within one target voxel


def _centred(vol: Volume, centre: np.ndarray) -> np.ndarray:
    """Affine of ``vol`` moved so that its middle voxel sits at ``centre``."""
    aff = vol.affine.copy()
    mid = (np.array(vol.shape) - 1) / 2.0
    aff[:3, 3] = centre - aff[:3, :3] @ mid
    return aff


def test_same_grid_tolerance():
    aff = axis_affine(ANISO_MM, "PIR")
    a = Volume(np.zeros((3, 4, 5)), aff)
    nudged = aff.copy()
    nudged[0, 3] += 5e-4
    assert a.same_grid(Volume(np.zeros((3, 4, 5)), nudged))
    nudged[0, 3] += 5e-2
    assert not a.same_grid(Volume(np.zeros((3, 4, 5)), nudged))
    assert not a.same_grid(Volume(np.zeros((3, 4, 6)), aff))
