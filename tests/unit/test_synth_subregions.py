"""synth.subregions: SPINEPS sub-regions derived from whole-vertebra instance maps."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from neurospine.errors import InputError
from neurospine.io import Volume, load_volume
from neurospine.synth.subregions import derive_subregions
from tests.conftest import make_affine

CANAL_R_MM = 7.0
PITCH_MM = 34.0


def _phantom(ids: tuple[int, ...] = (20, 21, 22), pitch_mm: float = PITCH_MM) -> tuple[npt.NDArray[np.int16], float]:
    """Stacked lumbar-like vertebrae on a 1 mm RAS grid (x right, y anterior, z superior); canal axis at x = y = 35.

    Each vertebra: an elliptic body in front, a ring (pedicles + laminae) around a 7 mm canal, a spinous process
    behind, transverse processes to both sides, superior articular pillars above and inferior ones below the ring.
    The right transverse process is longer than the left one, so the two sides differ.
    """
    nz = int(len(ids) * pitch_mm + 24)
    x, y, z = np.meshgrid(np.arange(70.0), np.arange(70.0), np.arange(float(nz)), indexing="ij")
    cx = cy = 35.0
    dx, dy = x - cx, y - cy
    r = np.hypot(dx, dy)
    lab = np.zeros(x.shape, dtype=np.int16)
    for k, vid in enumerate(ids):
        zc = nz - 12 - pitch_mm / 2 - k * pitch_mm
        dz = z - zc
        body = ((dx / 16) ** 2 + ((dy - 20) / 12) ** 2 <= 1) & (np.abs(dz) <= 11)
        ring = (r > CANAL_R_MM) & (r <= 11) & (dy <= 9) & (np.abs(dz - 3) <= 6)
        spinous = (np.abs(dx) <= 2.5) & (dy >= -28) & (dy <= -10) & (dz >= -6) & (dz <= 4)
        transverse = (dx >= -24) & (dx <= 30) & (np.abs(dx) >= 11) & (np.abs(dy) <= 3) & (dz >= 1) & (dz <= 7)
        sup_art = (np.abs(dx) >= 7) & (np.abs(dx) <= 12) & (dy >= -8) & (dy <= -2) & (dz >= 9) & (dz <= 15)
        inf_art = (np.abs(dx) >= 4) & (np.abs(dx) <= 9) & (dy >= -12) & (dy <= -6) & (dz >= -11) & (dz <= -3)
        lab[body | ring | spinous | transverse | sup_art | inf_art] = vid
    return lab, cx


@pytest.fixture(scope="module")
def phantom_ras() -> tuple[Volume, npt.NDArray[np.uint8]]:
    lab, _ = _phantom()
    vol = Volume(lab, make_affine((1.0, 1.0, 1.0), "RAS"))
    return vol, np.asarray(derive_subregions(vol).data)


def _world(vol: Volume, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    return vol.world_coords(np.argwhere(mask))


def test_output_grid_values_and_ignored_ids() -> None:
    lab, _ = _phantom()
    lab[0, 0, 0] = 120  # a disc id and an endplate id are ignored
    lab[0, 0, 1] = 221
    vol = Volume(lab, make_affine((1.0, 1.0, 1.0), "RAS"))
    sem = derive_subregions(vol)
    out = np.asarray(sem.data)
    assert sem.same_grid(vol) and out.dtype == np.uint8
    assert out[0, 0, 0] == 0 and out[0, 0, 1] == 0
    assert set(np.unique(out).tolist()) <= {0, 26, 41, 42, 43, 44, 45, 46, 47, 48, 49, 60, 61, 100}
    # every vertebra voxel gets a bone sub-region, nothing else does
    bone = np.isin(out, (41, 42, 43, 44, 45, 46, 47, 48, 49))
    assert np.array_equal(bone, (lab > 0) & (lab < 100))
    for value in (41, 42, 43, 44, 45, 46, 47, 48, 49, 61, 100):
        assert (out == value).any(), value


def test_body_is_anterior_and_spinous_posterior(phantom_ras: tuple[Volume, npt.NDArray[np.uint8]]) -> None:
    vol, out = phantom_ras
    lab = np.asarray(vol.data)
    y_body = _world(vol, out == 49)[:, 1].mean()
    y_canal = _world(vol, out == 61)[:, 1].mean()
    y_spin = _world(vol, out == 42)[:, 1].mean()
    assert y_body > y_canal + 15 > y_spin + 15
    # the body is the elliptic block: nearly all of it and nothing behind the canal
    body_truth = (lab > 0) & (np.arange(70)[None, :, None] - 35 >= 8)
    dice = 2 * (body_truth & (out == 49)).sum() / (body_truth.sum() + (out == 49).sum())
    assert dice > 0.95
    assert not (out[:, :35, :] == 49).any()


def test_canal_fills_the_enclosed_hole_only(phantom_ras: tuple[Volume, npt.NDArray[np.uint8]]) -> None:
    vol, out = phantom_ras
    lab, cx = np.asarray(vol.data), 35.0
    ii, jj = np.meshgrid(np.arange(70.0), np.arange(70.0), indexing="ij")
    r = np.hypot(ii - cx, jj - cx)
    canal = np.isin(out, (60, 61))  # canal content, cord included
    assert (out == 61).any()
    # nowhere outside the foramen outline (raster tolerance 1.5 mm)
    assert r[np.nonzero(canal)[:2]].max() <= CANAL_R_MM + 1.5
    # at ring level of every vertebra the hole is (almost) all canal, and the canal runs through the discs
    nz = lab.shape[2]
    for k in range(3):
        zc = int(nz - 12 - PITCH_MM / 2 - k * PITCH_MM)
        hole = r < CANAL_R_MM - 1
        assert canal[:, :, zc + 3][hole].mean() > 0.9
    z_levels = np.nonzero(canal.any(axis=(0, 1)))[0]
    assert z_levels.max() - z_levels.min() + 1 == len(z_levels)  # one continuous tube


def test_cord_inside_the_canal_down_to_the_conus() -> None:
    lab, cx = _phantom((18, 19, 20, 21))  # T11, T12, L1, L2
    vol = Volume(lab, make_affine((1.0, 1.0, 1.0), "RAS"))
    out = np.asarray(derive_subregions(vol).data)
    cord = out == 60
    assert cord.any()
    ii, jj = np.nonzero(cord.any(axis=2))
    assert np.hypot(ii - cx, jj - cx).max() < CANAL_R_MM  # a smaller tube inside the canal
    # full width at T11, tapering through L1, gone at L2's level
    nz = lab.shape[2]
    z_of = {vid: int(nz - 12 - PITCH_MM / 2 - k * PITCH_MM) for k, vid in enumerate((18, 19, 20, 21))}
    area = {vid: int(cord[:, :, z_of[vid] + 3].sum()) for vid in z_of}
    assert area[18] > area[20] > 0 and area[21] == 0
    canal_t11 = int(np.isin(out[:, :, z_of[18] + 3], (60, 61)).sum())
    assert 0.15 * canal_t11 < area[18] < 0.6 * canal_t11


def test_discs_only_between_adjacent_present_bodies(phantom_ras: tuple[Volume, npt.NDArray[np.uint8]]) -> None:
    vol, out = phantom_ras
    disc_z = np.nonzero((out == 100).any(axis=(0, 1)))[0]
    assert len(disc_z) > 0
    # two discs, each inside a 12 mm body gap, in front of the canal
    runs = np.split(disc_z, np.nonzero(np.diff(disc_z) > 1)[0] + 1)
    assert len(runs) == 2 and all(len(run) <= 12 for run in runs)
    assert not (out[:, :40, :] == 100).any()
    # L1 and L3 are not neighbours (L2 missing): no disc across the missing level
    lab2, _ = _phantom((20, 21, 22))
    lab2[lab2 == 21] = 0
    out2 = np.asarray(derive_subregions(Volume(lab2, vol.affine)).data)
    assert not (out2 == 100).any()
    # too far apart (body gap 28 mm): no disc either
    lab3, _ = _phantom((20, 21), pitch_mm=50.0)
    out3 = np.asarray(derive_subregions(Volume(lab3, vol.affine)).data)
    assert not (out3 == 100).any()


def test_left_right_follow_the_affine(phantom_ras: tuple[Volume, npt.NDArray[np.uint8]]) -> None:
    ras, out_ras = phantom_ras
    lab, cx = np.asarray(ras.data), 35.0
    x_world = ras.world_coords(np.argwhere(np.isin(out_ras, (43, 45, 47))))[:, 0]
    assert (x_world < cx).all()  # RAS: x grows to the patient's right, so left values sit at low x
    x_world = ras.world_coords(np.argwhere(np.isin(out_ras, (44, 46, 48))))[:, 0]
    assert (x_world > cx).all()
    # the long transverse process is on the right: the right costal value (44) is the bigger one
    assert (out_ras == 44).sum() > (out_ras == 43).sum()

    # the same anatomy stored as LPS (x and y axes reversed in the array): same labels at the same world points
    lps_aff = make_affine((1.0, 1.0, 1.0), "LPS", origin=(69.0, 69.0, 0.0))
    lps = Volume(lab[::-1, ::-1, :].copy(), lps_aff)
    assert np.allclose(lps.world_coords([[0, 0, 0]]), ras.world_coords([[69, 69, 0]]))
    out_lps = np.asarray(derive_subregions(lps).data)[::-1, ::-1, :]
    posterior = np.isin(out_ras, (43, 44, 45, 46, 47, 48))
    assert (out_lps[posterior] == out_ras[posterior]).mean() > 0.98

    # the same array under a mirrored affine is the mirrored patient: left and right values swap
    mirror = ras.affine.copy()
    mirror[0, 0] = -1.0
    out_mirror = np.asarray(derive_subregions(Volume(lab, mirror)).data)
    paired = np.isin(out_ras, (43, 44, 45, 46, 47, 48)) & np.isin(out_mirror, (43, 44, 45, 46, 47, 48))
    assert paired.sum() > 0.8 * np.isin(out_ras, (43, 44, 45, 46, 47, 48)).sum()
    # odd values (43/45/47) are left, even ones right: every paired voxel changes side
    assert ((out_ras[paired] % 2) != (out_mirror[paired] % 2)).all()
    assert (out_mirror == 43).sum() > (out_mirror == 44).sum()


def test_sacrum_kept_whole_and_empty_input() -> None:
    lab, _ = _phantom((24, 26))
    out = np.asarray(derive_subregions(Volume(lab, make_affine((1.0, 1.0, 1.0), "RAS"))).data)
    assert np.array_equal(out == 26, lab == 26)
    empty = derive_subregions(Volume(np.zeros((8, 8, 8), dtype=np.int16), np.eye(4)))
    assert not np.asarray(empty.data).any()


def test_bodies_only_map_is_all_body_with_discs() -> None:
    """VB2-style maps (bodies, no arches): no canal to find, so every vertebra is body and the gaps are discs."""
    lab, _ = _phantom((20, 21, 22))
    lab[:, :43, :] = 0  # keep the elliptic bodies only
    out = np.asarray(derive_subregions(Volume(lab, make_affine((1.0, 1.0, 1.0), "RAS"))).data)
    assert np.array_equal(out == 49, lab > 0)
    assert (out == 100).any() and not np.isin(out, (41, 42, 43, 44, 45, 46, 47, 48, 60, 61)).any()


def test_non_integer_map_is_bad_input() -> None:
    lab, _ = _phantom((20,))
    image = lab.astype(np.float32) * 0.37
    with pytest.raises(InputError, match="integer ids"):
        derive_subregions(Volume(image, make_affine((1.0, 1.0, 1.0), "RAS"), source="ct.nii.gz"))
    # whole-number floats (a label map saved as float) are fine
    out = derive_subregions(Volume(lab.astype(np.float32), make_affine((1.0, 1.0, 1.0), "RAS")))
    assert (np.asarray(out.data) == 49).any()


def test_anisotropic_grid_matches_isotropic(phantom_ras: tuple[Volume, npt.NDArray[np.uint8]]) -> None:
    """2 mm slices along x: the sub-regions stay where the 1 mm result puts them (majority per structure)."""
    vol, iso = phantom_ras
    lab = np.asarray(vol.data)
    coarse = lab[::2]
    out = np.asarray(derive_subregions(Volume(coarse, make_affine((2.0, 1.0, 1.0), "RAS"))).data)
    ref = iso[::2]
    for value in (49, 61, 42, 43, 44):
        m = ref == value
        assert (out[m] == value).mean() > 0.8, value


def test_tptbox_ct_reference_dice(shared_data) -> None:  # type: ignore[no-untyped-def]
    """Derived sub-regions against the manual-style SPINEPS map of the TPTBox CT sample (same grid)."""
    folder = shared_data / "tptbox_samples"
    vert = load_volume(folder / "tpt-ct_vert.nii.gz", check_intensity=False)
    ref = np.asarray(load_volume(folder / "tpt-ct_subreg.nii.gz", check_intensity=False).data).astype(int)
    ref[ref == 50] = 49
    out = np.asarray(derive_subregions(vert.with_data(np.asarray(vert.data).astype(np.int16))).data)

    def dice(value: int) -> float:
        a, b = out == value, ref == value
        return float(2 * (a & b).sum() / (a.sum() + b.sum()))

    assert dice(49) >= 0.95
    assert np.mean([dice(v) for v in range(41, 49)]) >= 0.65


@pytest.mark.parametrize("name", ["label_only_refs/verse004_vert.nii.gz", "verse014_ct/verse014_vert.nii.gz"])
def test_verse_maps_get_every_structure(shared_data, name: str) -> None:  # type: ignore[no-untyped-def]
    vert = load_volume(shared_data / name, check_intensity=False)
    out = np.asarray(derive_subregions(vert.with_data(np.asarray(vert.data).astype(np.int16))).data)
    ids = [i for i in np.unique(np.asarray(vert.data)) if 0 < i < 100]
    for value in (41, 42, 43, 44, 45, 46, 47, 48, 49, 61, 100):
        assert (out == value).any(), value
    # one disc per pair of neighbouring vertebrae (all present ids are consecutive here)
    from scipy import ndimage

    _, n_discs = ndimage.label(out == 100)
    assert n_discs >= len(ids) - 1
