"""Grey matter: cord-centred patches map back onto the input grid, refusals, and the pipeline's GM outputs."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from neurospine.cord.api import run_file
from neurospine.cord.gm import PATCH, SPACING_MM, applicable, grey_matter, patch_coords
from neurospine.io import Volume, load_volume, save_volume
from tests.conftest import make_affine
from tests.unit.test_cord_pipeline import cylinder_image, threshold_predictor

CORE_MM = 2.0


def core_predictor(batch: np.ndarray) -> np.ndarray:
    """Stand-in GM network: probability 1 within CORE_MM of the patch centre."""
    g = (np.arange(PATCH) - (PATCH - 1) / 2.0) * SPACING_MM
    core = (np.hypot(g[:, None], g[None, :]) <= CORE_MM).astype(np.float32)
    return np.broadcast_to(core, (batch.shape[0], 1, PATCH, PATCH)).copy()


def test_patch_coords_centre_and_scale():
    ci, cj = patch_coords((10.0, 20.0), (0.5, 1.0))
    mid = (PATCH - 1) / 2.0
    assert ci.shape == (PATCH, PATCH)
    # one patch pixel (0.25 mm) is half a voxel along i (0.5 mm) and a quarter along j (1.0 mm)
    assert ci[1, 0] - ci[0, 0] == pytest.approx(0.5) and cj[0, 1] - cj[0, 0] == pytest.approx(0.25)
    assert np.interp(mid, np.arange(PATCH), ci[:, 0]) == pytest.approx(10.0)


@pytest.mark.parametrize(("axcodes", "spacing"), [("LAS", (0.5, 0.5, 4.0)), ("LPS", (0.6, 0.45, 3.0))])
def test_grey_matter_lands_on_the_input_grid_around_the_cord_centre(axcodes, spacing):
    vol, truth = cylinder_image(axcodes, spacing, (70, 80, 6))
    found = grey_matter(vol, truth, predictor=core_predictor)
    gm, note = found.mask, found.note
    assert note is None and gm is not None and gm.shape == vol.shape
    assert not (gm.astype(bool) & ~truth).any()  # only inside the cord
    world = np.indices(vol.shape).reshape(3, -1).T @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    r = np.hypot(world[:, 0] - 1.0, world[:, 1]).reshape(vol.shape)  # the phantom's axis is at x = 1, y = 0
    expected = r <= CORE_MM
    dice = 2 * (gm.astype(bool) & expected).sum() / (gm.sum() + expected.sum())
    assert dice > 0.85


def test_sagittal_or_coarse_images_get_no_grey_matter():
    sag = Volume(np.zeros((6, 80, 80), np.float32), make_affine((3.0, 0.5, 0.5), "RAS"), "sag.nii.gz")
    assert "axial" in (applicable(sag) or "")
    coarse = Volume(np.zeros((40, 40, 10), np.float32), make_affine((1.2, 1.2, 4.0), "RAS"), "coarse.nii.gz")
    assert "coarser" in (applicable(coarse) or "")
    found = grey_matter(sag, np.ones(sag.shape, bool), predictor=core_predictor)
    gm, note = found.mask, found.note
    assert gm is None and note is not None and note.startswith("no grey matter")


def test_pipeline_writes_the_gm_mask_and_areas(tmp_path):
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 4.0), (80, 70, 6))
    path = save_volume(vol, tmp_path / "img.nii.gz")
    res = run_file(
        path, tmp_path / "out", predictor=threshold_predictor, gm=True, gm_predictor=core_predictor, auto_levels=False
    )
    gm = load_volume(res.outputs["gm_mask"], check_intensity=False)
    assert gm.same_grid(load_volume(path))
    rows = list(csv.DictReader(res.outputs["csa"].open()))
    areas = [float(r["gm_area_mm2"]) for r in rows]
    assert all(a == pytest.approx(np.pi * CORE_MM**2, rel=0.2) for a in areas)
    assert res.measures["gm_area_mm2_mean"] == pytest.approx(np.mean(areas), rel=1e-3)
    # the phantom's cord is uniform: the "grey matter" is no brighter than the rest, so the contrast is questioned
    assert res.measures["gm_wm_intensity_ratio"] == pytest.approx(1.0, abs=0.02)
    assert any("not brighter than the white matter" in w for w in res.warnings)
    plain = run_file(path, tmp_path / "plain", predictor=threshold_predictor, auto_levels=False)
    assert "gm_mask" not in plain.outputs and "gm_area_mm2_mean" not in plain.measures
    assert all(r["gm_area_mm2"] == "" for r in csv.DictReader(plain.outputs["csa"].open()))


def test_shipped_gm_model_on_a_held_out_challenge_scan(shared_data, tmp_path):
    """The shipped models on an unseen person and site (Milan 1.5T): GM Dice over the manual GM's slices."""
    from neurospine.cord.data import GMC_HELDOUT, gmc_paths
    from neurospine.io import reorient

    case = "gmc-9709ses1"
    assert case in dict(GMC_HELDOUT)
    img, _ = gmc_paths(shared_data, case)
    res = run_file(img, tmp_path / "out", gm=True, auto_levels=False)
    ours = np.asarray(reorient(load_volume(res.outputs["gm_mask"], check_intensity=False), "RAS")[0].data) > 0
    manual_path = img.with_name(f"{case}_gmseg.nii.gz")
    manual = np.asarray(reorient(load_volume(manual_path, check_intensity=False), "RAS")[0].data) > 0
    ks = np.flatnonzero(manual.any(axis=(0, 1)))
    dice = 2 * (ours[:, :, ks] & manual[:, :, ks]).sum() / (ours[:, :, ks].sum() + manual[:, :, ks].sum())
    assert dice > 0.85  # benchmarks/results/cord_gm.md: 0.905


def test_gm_training_refuses_held_out_sessions(tmp_path):
    from neurospine.cord.data import GMC_HELDOUT
    from neurospine.cord.gm_training import load_sessions

    with pytest.raises(ValueError, match="held-out"):
        load_sessions(tmp_path, GMC_HELDOUT[:1])


def offset_predictor(batch: np.ndarray) -> np.ndarray:
    """Stand-in GM network: a 1.5 mm disc 2 mm along the patch's first axis (RAS +x, toward the patient's right)."""
    g = (np.arange(PATCH) - (PATCH - 1) / 2.0) * SPACING_MM
    disc = (np.hypot(g[:, None] - 2.0, g[None, :]) <= 1.5).astype(np.float32)
    return np.broadcast_to(disc, (batch.shape[0], 1, PATCH, PATCH)).copy()


@pytest.mark.parametrize(("axcodes", "spacing"), [("LAS", (0.5, 0.5, 4.0)), ("LPS", (0.6, 0.45, 3.0))])
def test_an_off_centre_patch_lands_on_the_same_side_in_the_world(axcodes, spacing):
    vol, truth = cylinder_image(axcodes, spacing, (70, 80, 6))
    gm = grey_matter(vol, truth, predictor=offset_predictor).mask
    assert gm is not None and gm.any()
    world = np.argwhere(gm > 0) @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    # patch axis 0 is RAS +x: the phantom's axis is at x = 1, so the disc's centre lies at x = 3, y = 0
    assert world[:, 0].mean() == pytest.approx(3.0, abs=0.3) and world[:, 1].mean() == pytest.approx(0.0, abs=0.3)


def test_gm_on_a_sagittal_image_warns_and_a_stale_mask_is_not_reported(tmp_path):
    vol, _ = cylinder_image("PSR", (1.0, 1.0, 3.0), (40, 50, 12))
    path = save_volume(vol, tmp_path / "img.nii.gz")
    res = run_file(
        path, tmp_path / "out", predictor=threshold_predictor, gm=True, gm_predictor=core_predictor, auto_levels=False
    )
    assert "gm_mask" not in res.outputs and res.measures.get("gm_area_mm2_mean") is None
    assert any(w.startswith("no grey matter: not an axial") for w in res.warnings)
    assert not (tmp_path / "out" / "img_seg-gm_msk.nii.gz").exists()


def test_a_brighter_grey_matter_raises_no_contrast_warning(tmp_path):
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 4.0), (80, 70, 6))
    world = np.indices(vol.shape).reshape(3, -1).T @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    core = (np.hypot(world[:, 0] - 1.0, world[:, 1]) <= CORE_MM).reshape(vol.shape)
    bright = vol.with_data(np.asarray(vol.data) + 15.0 * core)  # T2*w-like: grey matter 15 % brighter
    path = save_volume(bright, tmp_path / "img.nii.gz")
    res = run_file(
        path, tmp_path / "out", predictor=threshold_predictor, gm=True, gm_predictor=core_predictor, auto_levels=False
    )
    assert res.measures["gm_wm_intensity_ratio"] > 1.1
    assert not any("white matter" in w for w in res.warnings)


def test_slices_up_to_10_mm_are_read_thicker_ones_refused():
    seven = Volume(np.zeros((40, 40, 8), np.float32), make_affine((0.5, 0.5, 7.5), "LAS"), "t2s.nii.gz")
    assert applicable(seven) is None  # errsm_30's T2*w
    twelve = Volume(np.zeros((40, 40, 8), np.float32), make_affine((0.5, 0.5, 12.0), "LAS"), "thick.nii.gz")
    assert "not an axial 2D" in (applicable(twelve) or "")


def test_gm_wm_ratio_is_nan_without_white_matter():
    from neurospine.cord.gm import gm_wm_ratio

    cord = np.ones((4, 4, 1), bool)
    assert np.isnan(gm_wm_ratio(np.ones((4, 4, 1)), cord, cord))  # all grey: no white matter to compare
    gm = np.zeros_like(cord)
    gm[1:3, 1:3] = True
    image = np.where(gm, 1.2, 1.0)
    assert gm_wm_ratio(image, gm, cord) == pytest.approx(1.2)
