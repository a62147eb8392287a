"""Surface distances in mm: exact box phantoms, offset spheres and a brute-force cross-check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from neurospine.metrics import assd_mm, hd95_mm, hd_mm, surface, surface_distances, surface_metrics

ANISO_MM = (0.5, 0.5, 3.0)


def box(shape, lo, hi):
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return m


def sphere(shape, centre_mm, radius_mm, spacing_mm):
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing_mm, strict=True)], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre_mm, strict=True)) <= radius_mm**2


def brute_surface(mask):
    """Surface by explicit neighbour test (independent of scipy's erosion)."""
    padded = np.pad(mask, 1)
    interior = padded.copy()
    for axis in range(mask.ndim):
        for step in (-1, 1):
            interior &= np.roll(padded, step, axis=axis)
    return (padded & ~interior)[tuple(slice(1, -1) for _ in range(mask.ndim))]


def brute_directed(src, dst, spacing):
    a = np.argwhere(brute_surface(src)) * np.asarray(spacing)
    b = np.argwhere(brute_surface(dst)) * np.asarray(spacing)
    return np.sort(cKDTree(b).query(a)[0])


@pytest.mark.parametrize("axis,voxels", [(0, 1), (0, 4), (1, 2), (2, 1), (2, 2)])
def test_shifted_box_hausdorff_is_shift_in_mm(axis, voxels):
    lo, hi = [6, 6, 2], [26, 22, 8]
    ref = box((40, 40, 14), lo, hi)
    lo[axis] += voxels
    hi[axis] += voxels
    pred = box((40, 40, 14), lo, hi)
    expected = voxels * ANISO_MM[axis]
    assert hd_mm(pred, ref, ANISO_MM) == pytest.approx(expected, abs=1e-9)
    assert 0 < assd_mm(pred, ref, ANISO_MM) < expected


def test_nested_boxes_have_known_distances():
    """Inner box 6/6/1 voxels inside the outer one at 0.5x0.5x3 mm: every inner surface voxel is 3 mm
    from the outer surface; the outer corners are sqrt(3)*3 mm from the inner corners."""
    outer = box((40, 40, 12), (4, 4, 2), (30, 28, 10))
    inner = box((40, 40, 12), (10, 10, 3), (24, 22, 9))
    d = surface_distances(inner, outer, ANISO_MM)
    np.testing.assert_allclose(d.pred_to_ref_mm, 3.0, atol=1e-9)
    assert d.ref_to_pred_mm.max() == pytest.approx(3.0 * math.sqrt(3.0), abs=1e-9)
    assert d.ref_to_pred_mm.min() == pytest.approx(3.0, abs=1e-9)
    m = surface_metrics(inner, outer, ANISO_MM)
    assert m.hd_mm == pytest.approx(3 * math.sqrt(3), abs=1e-9)
    assert m.assd_mm == pytest.approx(0.5 * (3.0 + d.ref_to_pred_mm.mean()), abs=1e-12)


@pytest.mark.parametrize("offset_vox,axis", [(4, 0), (12, 1), (1, 2), (2, 2)])
def test_offset_spheres_hausdorff_is_offset(offset_vox, axis):
    """Continuous spheres of equal radius d apart have Hausdorff distance exactly d; the voxelised
    copies (one is the other shifted by whole voxels) can only be closer, by less than a slice."""
    shape = (110, 110, 24)
    centre = np.array([27.5, 27.5, 33.0])
    moved = centre.copy()
    offset_mm = offset_vox * ANISO_MM[axis]
    moved[axis] += offset_mm
    ref = sphere(shape, centre, 15.0, ANISO_MM)
    pred = sphere(shape, moved, 15.0, ANISO_MM)
    hd = hd_mm(pred, ref, ANISO_MM)
    assert hd <= offset_mm + 1e-9
    assert hd >= offset_mm - 1.5
    assert hd95_mm(pred, ref, ANISO_MM) <= hd + 1e-12


def test_concentric_spheres_distance_is_radius_difference():
    shape = (120, 120, 30)
    c = (30.0, 30.0, 45.0)
    outer = sphere(shape, c, 24.0, ANISO_MM)
    inner = sphere(shape, c, 18.0, ANISO_MM)
    # 6 mm apart everywhere in the continuum; voxelisation at 3 mm slices adds up to ~1.5 mm
    assert assd_mm(inner, outer, ANISO_MM) == pytest.approx(6.0, abs=1.0)
    assert hd95_mm(inner, outer, ANISO_MM) == pytest.approx(6.0, abs=1.6)


def test_matches_brute_force_kdtree_on_random_blobs():
    from scipy import ndimage

    rng = np.random.default_rng(42)
    spacing = (0.7, 1.1, 3.3)
    for _ in range(3):
        a = ndimage.binary_opening(ndimage.gaussian_filter(rng.random((30, 26, 9)), 2) > 0.5)
        b = ndimage.binary_opening(ndimage.gaussian_filter(rng.random((30, 26, 9)), 2) > 0.5)
        assert a.any() and b.any()
        np.testing.assert_array_equal(surface(a), brute_surface(a))
        d = surface_distances(a, b, spacing)
        np.testing.assert_allclose(np.sort(d.pred_to_ref_mm), brute_directed(a, b, spacing), atol=1e-9)
        np.testing.assert_allclose(np.sort(d.ref_to_pred_mm), brute_directed(b, a, spacing), atol=1e-9)
        pooled = np.concatenate([brute_directed(a, b, spacing), brute_directed(b, a, spacing)])
        assert hd95_mm(a, b, spacing) == pytest.approx(np.percentile(pooled, 95), abs=1e-9)
        assert hd_mm(a, b, spacing) == pytest.approx(pooled.max(), abs=1e-9)


def test_spacing_scales_distances():
    a = box((20, 20, 8), (2, 2, 1), (12, 10, 5))
    b = box((20, 20, 8), (4, 3, 2), (15, 10, 6))
    one = surface_metrics(a, b, (1.0, 1.0, 1.0))
    two = surface_metrics(a, b, (2.0, 2.0, 2.0))
    assert two.assd_mm == pytest.approx(2 * one.assd_mm)
    assert two.hd_mm == pytest.approx(2 * one.hd_mm)
    # anisotropy matters: a one-slice shift is 3 mm through-plane, 0.5 mm in-plane
    shifted_z = box((20, 20, 8), (2, 2, 2), (12, 10, 6))
    shifted_x = box((20, 20, 8), (3, 2, 1), (13, 10, 5))
    assert hd_mm(shifted_z, a, ANISO_MM) == pytest.approx(3.0)
    assert hd_mm(shifted_x, a, ANISO_MM) == pytest.approx(0.5)


def test_identical_masks_and_border_touching():
    full = np.ones((6, 7, 3), dtype=bool)  # touches every border: its border voxels are its surface
    assert surface(full).sum() == full.size - (4 * 5 * 1)
    m = surface_metrics(full, full, ANISO_MM)
    assert (m.assd_mm, m.hd95_mm, m.hd_mm) == (0.0, 0.0, 0.0)


def test_crop_does_not_change_result():
    """Distances are computed in the bounding box; embedding the pair in a larger array changes nothing."""
    a = box((20, 20, 8), (2, 2, 1), (12, 10, 5))
    b = box((20, 20, 8), (5, 3, 2), (15, 12, 8))
    big_a = np.zeros((60, 50, 20), bool)
    big_b = big_a.copy()
    big_a[10:30, 5:25, 3:11] = a
    big_b[10:30, 5:25, 3:11] = b
    assert surface_metrics(a, b, ANISO_MM) == surface_metrics(big_a, big_b, ANISO_MM)


def test_spacing_is_required_and_checked():
    a = box((5, 5, 5), (1, 1, 1), (3, 3, 3))
    with pytest.raises(TypeError):
        assd_mm(a, a)  # type: ignore[call-arg]
    for bad in [(1.0, 1.0), (0.0, 1.0, 1.0), (1.0, 1.0, -2.0), (1.0, math.inf, 1.0)]:
        with pytest.raises(ValueError, match="spacing"):
            hd95_mm(a, a, bad)
