"""Real data (``../shared/data``): loaders on held-out files, and the shipped model on held-out slices."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurospine.slice2d.io2d import load_input


def test_vesal_2d_nifti_is_canonical(shared_data) -> None:
    f = shared_data / "vesal_mri2d" / "vesal-15_img.nii.gz"
    if not f.exists():
        pytest.skip("vesal-15 not staged")
    loaded = load_input(f)
    assert loaded.kind == "image2d" and loaded.plane is not None and loaded.plane.orientation_known
    raw = np.asarray(nib.load(str(f)).dataobj)[:, :, 0]
    np.testing.assert_array_equal(loaded.plane.pixels, raw.astype(np.float32))  # stored IPL = canonical


def test_tptbox_ct_slice_geometry(shared_data) -> None:
    f = shared_data / "tptbox_samples" / "tpt-ct_img.nii.gz"
    if not f.exists():
        pytest.skip("tptbox CT not staged")
    loaded = load_input(f)
    assert loaded.kind == "volume" and loaded.canonical is not None
    assert loaded.canonical.axcodes == ("I", "P", "L")
    plane = loaded.slice_plane(loaded.n_slices() // 2)
    assert plane.spacing_mm == pytest.approx((1.5, 1.5))
    assert float(np.min(loaded.canonical.data)) < -500  # HU kept, not rescaled


@pytest.mark.slow
def test_shipped_model_on_heldout_vesal(shared_data, tmp_path) -> None:
    from neurospine.metrics.overlap import dice
    from neurospine.models import registry
    from neurospine.slice2d.api import run_file

    if not (registry.shipped_dir() / "slice2d_unet.json").is_file():
        pytest.skip("slice2d model not shipped")
    f = shared_data / "vesal_mri2d" / "vesal-18_img.nii.gz"
    res = run_file(f, tmp_path, threads=1, modality="mr")
    pred = np.asarray(nib.load(str(res.outputs["mask"])).dataobj)[:, :, 0]
    ref = np.asarray(nib.load(str(shared_data / "vesal_mri2d" / "vesal-18_discvert.nii.gz")).dataobj)[:, :, 0]
    rows = np.flatnonzero((ref > 0).any(axis=1))
    sl = slice(rows[0], rows[-1] + 1)
    body = (pred > 0) & (pred < 100)
    assert dice(body[sl], (ref == 2)[sl]) > 0.8
    assert dice((pred >= 100)[sl], (ref == 1)[sl]) > 0.6
    assert res.measures["n_bodies"] >= 5
