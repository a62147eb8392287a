"""Reorientation and resampling round trips on oblique, permuted and anisotropic grids."""

import nibabel as nib
import numpy as np
import pytest

from neurospine.io import Volume, load_volume, reorient, resample_like, resample_to_spacing, save_like, save_volume
from neurospine.io.resample import grid_for_spacing, resample_to_grid
from tests.conftest import make_affine


def _oblique(affine: np.ndarray, degrees: float = 17.0) -> np.ndarray:
    t = np.deg2rad(degrees)
    rot = np.eye(4)
    rot[:3, :3] = [[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]
    rot[:3, 3] = [12.5, -40.0, 7.25]
    return rot @ affine


@pytest.mark.parametrize("axcodes", ["LAS", "PIR", "IPL", "RPI", "RAS", "SLA"])
@pytest.mark.parametrize("target", ["RAS", "PIR", "LPI"])
def test_reorient_round_trip_is_exact(axcodes, target):
    vol = Volume(
        np.random.default_rng(0).random((7, 9, 11)).astype(np.float32), _oblique(make_affine((0.5, 0.5, 4.0), axcodes))
    )
    out, undo = reorient(vol, target)
    assert out.axcodes == tuple(target)
    # the same voxel has the same world position after reorientation
    ijk = np.array([[1, 2, 3]])
    world = vol.world_coords(ijk)[0]
    ijk_new = np.linalg.solve(out.affine[:3, :3], world - out.affine[:3, 3])
    assert out.data[tuple(np.round(ijk_new).astype(int))] == vol.data[1, 2, 3]
    back = undo.undo_volume(out)
    assert back.same_grid(vol)
    np.testing.assert_array_equal(back.data, vol.data)


def test_to_canonical_las_gives_expected_affine():
    vol = Volume(np.zeros((4, 5, 6), np.float32), make_affine((2.0, 3.0, 4.0), "LAS", origin=(10, 20, 30)))
    out, _ = reorient(vol, "RAS")
    expected = np.diag([2.0, 3.0, 4.0, 1.0])
    expected[:3, 3] = [10 - 2.0 * 3, 20, 30]
    np.testing.assert_allclose(out.affine, expected)


@pytest.mark.parametrize("axcodes", ["LAS", "PIR", "IPL", "RPI"])
def test_label_resample_there_and_back_is_identity(axcodes):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, size=(16, 18, 6)).astype(np.uint8)
    labels = np.repeat(np.repeat(labels, 2, axis=0), 2, axis=1)  # blocks survive 2x downsampling
    vol = Volume(labels, _oblique(make_affine((0.5, 0.5, 4.0), axcodes)))
    coarse = resample_to_spacing(vol, (1.0, 1.0, 4.0), order=0)
    assert coarse.data.dtype == np.uint8
    assert set(np.unique(coarse.data)) <= set(np.unique(labels))
    back = resample_like(coarse, vol, order=0)
    assert back.same_grid(vol)
    np.testing.assert_array_equal(back.data, labels)


def test_upsample_then_downsample_image_is_close():
    z = np.linspace(0, 1, 12)
    img = np.broadcast_to(z[None, None, :], (10, 10, 12)).astype(np.float32)
    vol = Volume(img.copy(), make_affine((0.5, 0.5, 4.0), "PIR"))
    fine = resample_to_spacing(vol, (0.5, 0.5, 1.0), order=1)
    back = resample_like(fine, vol, order=1)
    np.testing.assert_allclose(back.data[:, :, 1:-1], img[:, :, 1:-1], atol=1e-5)


def test_grid_for_spacing_keeps_field_of_view():
    vol = Volume(np.zeros((10, 20, 5), np.float32), _oblique(make_affine((0.5, 0.5, 4.0), "RPI")))
    shape, affine = grid_for_spacing(vol, (1.0, 1.0, 2.0))
    assert shape == (5, 10, 10)
    corner_old = vol.affine @ np.array([-0.5, -0.5, -0.5, 1])
    corner_new = affine @ np.array([-0.5, -0.5, -0.5, 1])
    np.testing.assert_allclose(corner_old, corner_new)


def test_resample_to_grid_identity():
    data = np.random.default_rng(2).random((6, 7, 8)).astype(np.float32)
    aff = _oblique(make_affine((1.0, 1.0, 1.0), "LAS"))
    np.testing.assert_allclose(resample_to_grid(data, aff, data.shape, aff, order=1), data, atol=1e-6)


def test_saved_mask_keeps_input_affine_exactly(tmp_path):
    aff = _oblique(make_affine((0.5, 0.5, 4.0), "PIR"))
    img = Volume(np.random.default_rng(3).random((8, 9, 10)).astype(np.float32) + 1, aff)
    save_volume(img, tmp_path / "img.nii.gz")
    loaded = load_volume(tmp_path / "img.nii.gz")
    mask = (loaded.data > 1.5).astype(np.uint8)
    save_like(mask, loaded, tmp_path / "mask.nii.gz")
    out = nib.load(str(tmp_path / "mask.nii.gz"))
    np.testing.assert_allclose(out.affine, aff, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(out.dataobj), mask)
    assert not list(tmp_path.glob(".*tmp*"))


def test_plane_detection():
    assert Volume(np.zeros((4, 4, 4)), make_affine((0.5, 0.5, 4.0), "PIR")).plane == "sagittal"
    assert Volume(np.zeros((4, 4, 4)), make_affine((0.5, 0.5, 4.0), "LPS")).plane == "axial"
    assert Volume(np.zeros((4, 4, 4)), make_affine((1.0, 1.0, 1.2), "RAS")).plane == "isotropic"
