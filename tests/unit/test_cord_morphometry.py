"""CSA morphometry on analytic phantoms: elliptic cylinders at oblique angles, anisotropic voxels."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace

import numpy as np
import pytest

from neurospine.cord.centerline import fit_centerline
from neurospine.cord.levels import levels_per_slice, vertebra_ids
from neurospine.cord.morphometry import aggregate_levels, measure_cord
from neurospine.io import Volume
from tests.conftest import make_affine


def elliptic_cylinder(
    a_mm, b_mm, tilt_deg, spacing_mm, shape, axcodes="RAS", *, spin_deg=0.0, ss=3, centre_offset=(0.0, 0.0, 0.0)
):
    """Partial-volume phantom (supersampled ``ss``^3): cylinder with semi-axes a (~RL) and b (~AP)
    whose axis is tilted by ``tilt_deg`` from S towards R, cross-section rotated by ``spin_deg``."""
    aff = make_affine(spacing_mm, axcodes)
    aff[:3, 3] = -(aff[:3, :3] @ (np.array(shape) / 2.0)) + np.array(centre_offset)
    th = math.radians(tilt_deg)
    e1 = np.array([math.cos(th), 0.0, -math.sin(th)])
    e2 = np.array([0.0, 1.0, 0.0])
    r = math.radians(spin_deg)
    e1, e2 = math.cos(r) * e1 + math.sin(r) * e2, -math.sin(r) * e1 + math.cos(r) * e2
    offs = (np.arange(ss) + 0.5) / ss - 0.5
    idx = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    acc = np.zeros(len(idx))
    for ox in offs:
        for oy in offs:
            for oz in offs:
                p = (idx + np.array([ox, oy, oz])) @ aff[:3, :3].T + aff[:3, 3]
                acc += ((p @ e1) / a_mm) ** 2 + ((p @ e2) / b_mm) ** 2 <= 1.0
    return Volume((acc / ss**3).reshape(shape).astype(np.float32), aff)


def _interior(rows, margin=3):
    return rows[margin:-margin] if len(rows) > 2 * margin else rows


@pytest.mark.parametrize(
    ("tilt", "spacing", "shape", "axcodes", "spin", "ss"),
    [
        (0.0, (0.5, 0.5, 2.0), (60, 60, 12), "RAS", 0.0, 3),
        (30.0, (0.6, 0.4, 1.5), (60, 80, 16), "RAS", 20.0, 3),
        (25.0, (1.0, 0.5, 0.5), (30, 48, 60), "PSR", 0.0, 6),
        (40.0, (0.5, 0.5, 3.0), (90, 60, 10), "LAS", 45.0, 3),
    ],
)
def test_csa_within_one_percent_of_pi_ab(tilt, spacing, shape, axcodes, spin, ss):
    # ss: supersampling of the phantom's partial volume (coarse voxels need more samples to be exact)
    a, b = 6.0, 4.0
    vol = elliptic_cylinder(a, b, tilt, spacing, shape, axcodes, spin_deg=spin, ss=ss)
    morph = measure_cord(vol)
    rows = _interior(morph.slices)
    assert rows, "no slice measured"
    csa = np.array([r.csa_mm2 for r in rows])
    assert np.all(np.abs(csa / (math.pi * a * b) - 1.0) < 0.01), csa
    angles = np.array([r.angle_deg for r in rows])
    assert np.allclose(angles, tilt, atol=0.5)
    ecc = np.array([r.eccentricity for r in rows])
    assert np.allclose(ecc, math.sqrt(1 - (b / a) ** 2), atol=0.03)


def test_without_angle_correction_an_oblique_cord_is_overestimated():
    vol = elliptic_cylinder(5.0, 5.0, 35.0, (0.5, 0.5, 2.0), (80, 50, 12))
    rows = _interior(measure_cord(vol).slices)
    raw = np.array([r.csa_mm2 / math.cos(math.radians(r.angle_deg)) for r in rows])
    assert np.all(raw > 1.15 * math.pi * 25)  # 1/cos(35 deg) = 1.22


def test_diameters_and_orientation_of_an_upright_ellipse():
    vol = elliptic_cylinder(6.0, 4.0, 0.0, (0.4, 0.4, 2.0), (60, 60, 8), spin_deg=0.0)
    r = measure_cord(vol).slices[4]
    assert r.rl_mm == pytest.approx(12.0, rel=0.03)
    assert r.ap_mm == pytest.approx(8.0, rel=0.03)
    assert abs(r.orientation_deg) < 1.0
    rotated = measure_cord(elliptic_cylinder(6.0, 4.0, 0.0, (0.4, 0.4, 2.0), (60, 60, 8), spin_deg=30.0)).slices[4]
    assert rotated.orientation_deg == pytest.approx(30.0, abs=2.0)


def test_binary_mask_is_accepted_and_close():
    soft = elliptic_cylinder(6.0, 4.0, 20.0, (0.5, 0.5, 1.0), (70, 50, 30))
    binary = soft.with_data((np.asarray(soft.data) >= 0.5).astype(np.uint8))
    rows = _interior(measure_cord(binary).slices)
    csa = np.array([r.csa_mm2 for r in rows])
    assert np.all(np.abs(csa / (math.pi * 24) - 1) < 0.05)


def test_empty_mask_gives_no_rows():
    vol = Volume(np.zeros((10, 10, 5), np.float32), make_affine((1, 1, 1)))
    assert measure_cord(vol).slices == []


def test_slice_index_refers_to_the_input_axis():
    vol = elliptic_cylinder(4.0, 4.0, 0.0, (1.0, 0.5, 0.5), (20, 40, 40), "PSR")
    rows = measure_cord(vol).slices
    # PSR: superior is voxel axis 1, 40 slices along it
    assert len(rows) == 40
    assert sorted(r.slice for r in rows) == list(range(40))
    pos = [r.position_mm for r in sorted(rows, key=lambda r: r.slice)]
    assert np.all(np.diff(pos) > 0)


def test_centerline_recovers_a_tilted_line():
    s = np.arange(0.0, 50.0, 2.5)
    c = np.stack([0.3 * s + 1, -0.2 * s, s], axis=1)
    cl = fit_centerline(s, c, [0, 0, 1])
    expected = math.degrees(math.acos(1 / math.sqrt(1 + 0.09 + 0.04)))
    assert np.allclose(cl.angles_deg, expected, atol=1e-6)
    assert np.allclose(cl.points_mm, c, atol=1e-6)


def test_levels_from_cord_by_level_mask_and_from_vertebra_mask():
    shape = (20, 20, 30)
    cord = np.zeros(shape, bool)
    cord[8:12, 8:12, :] = True
    lev = np.zeros(shape, np.uint8)
    lev[cord] = 0
    for k in range(30):
        lev[8:12, 8:12, k] = 2 + k // 10  # cord-by-level: 2, 3, 4
    pos = np.arange(30, dtype=float)
    out = levels_per_slice(lev, cord, pos)
    assert list(out[:10]) == [2] * 10 and list(out[20:]) == [4] * 10
    # vertebra-body mask with discs (103) and endplates (203): bodies anterior to the cord
    vert = np.zeros(shape, np.int32)
    vert[0:6, 2:18, 0:8] = 3
    vert[0:6, 2:18, 8:10] = 103
    vert[0:6, 2:18, 10:12] = 204
    vert[0:6, 2:18, 12:20] = 4
    out = levels_per_slice(vert, cord, pos, max_gap_mm=5)
    assert list(out[:8]) == [3] * 8 and list(out[10:20]) == [4] * 10
    assert out[8] in (3, 4) and out[25] == 0  # disc filled from a neighbour, far slices unknown
    assert set(np.unique(vertebra_ids(vert))) == {0, 3, 4}


def test_per_level_aggregation():
    vol = elliptic_cylinder(5.0, 4.0, 0.0, (0.5, 0.5, 1.0), (40, 40, 20))
    lev = np.zeros(vol.shape, np.uint8)
    lev[:, :, :10] = 3
    lev[:, :, 10:] = 2
    morph = measure_cord(vol, levels=vol.with_data(lev))
    per = aggregate_levels(morph.slices)
    assert [p.level for p in per] == ["C2", "C3"]
    assert [p.n_slices for p in per] == [10, 10]
    assert per[0].csa_mm2_mean == pytest.approx(math.pi * 20, rel=0.01)
    text = morph.per_level_csv().splitlines()
    # the original columns stay first, in their order; new ones are appended
    assert text[0].startswith("level,n_slices,csa_mm2_mean,csa_mm2_sd,levels_source,levels_positional,")
    assert text[1].startswith("C2,10,") and ",none,0," in text[1]
    marked = replace(morph, levels_source="estimated", levels_positional=True)
    assert marked.per_level_csv(with_total=True).splitlines()[-1].startswith("all,20,")
    rows = list(csv.DictReader(io.StringIO(marked.csv())))
    assert list(rows[0])[:12] == [
        "slice",
        "position_mm",
        "csa_mm2",
        "angle_deg",
        "ap_mm",
        "rl_mm",
        "eccentricity",
        "orientation_deg",
        "level",
        "levels_source",
        "levels_positional",
        "below_conus_level",
    ]
    assert all(
        (r["levels_source"], r["levels_positional"], r["below_conus_level"]) == ("estimated", "1", "0") for r in rows
    )


def test_uncertainty_brackets_the_soft_area_and_canal_ratio():
    """A soft disc with a 1-voxel linear rim: the 0.25 and 0.75 areas bracket the soft area by about the rim."""
    vol = elliptic_cylinder(5.0, 4.0, 0.0, (0.5, 0.5, 1.0), (40, 40, 20))
    canal = vol.with_data(
        (elliptic_cylinder(7.0, 6.0, 0.0, (0.5, 0.5, 1.0), (40, 40, 20)).data >= 0.5).astype(np.uint8)
    )
    rows = _interior(measure_cord(vol, canal=canal).slices)
    for r in rows:
        assert r.csa_mm2_t75 < r.csa_mm2 < r.csa_mm2_t25
        assert r.csa_mm2_uncertainty == pytest.approx(0.5 * (r.csa_mm2_t25 - r.csa_mm2_t75))
        assert 0 < r.csa_mm2_uncertainty < 0.15 * r.csa_mm2
        assert r.canal_area_mm2 == pytest.approx(math.pi * 42, rel=0.05)
        assert r.cord_canal_ratio == pytest.approx(r.csa_mm2 / r.canal_area_mm2)
    assert all(math.isnan(r.canal_area_mm2) for r in measure_cord(vol).slices)  # no canal given: left empty


def test_inplane_area_is_the_uncorrected_csa_on_a_tilted_cord():
    tilted = elliptic_cylinder(5.0, 4.0, 30.0, (0.5, 0.5, 1.0), (60, 60, 20))
    for r in _interior(measure_cord(tilted).slices):
        assert r.csa_mm2 == pytest.approx(r.csa_inplane_mm2 * math.cos(math.radians(r.angle_deg)), rel=1e-6)
        assert r.csa_inplane_mm2 > 1.1 * r.csa_mm2  # cos 30 deg = 0.87


def test_below_conus_flag_by_level_name():
    from neurospine.cord.conus import below_conus, flag_text, flag_warning

    assert [flag_text(n) for n in ("C3", "T12", "L1", "L2", "L3", "L4", "L5", "L6", "S1", "")] == [
        *["0"] * 4,
        *["1"] * 5,
        "",
    ]
    assert below_conus("") is None and below_conus("L2") is False
    args = {"csv_name": "a_csa.csv", "perlevel_name": "a_csa_perlevel.csv", "qc": "a_qc-cord.png"}
    assert flag_warning("a.nii.gz", ["L1", "L2", ""], positional=False, **args) is None
    msg = flag_warning("a.nii.gz", ["L2", "L5", "L3", ""], positional=True, **args)
    assert msg is not None and msg.startswith("a.nii.gz: 2 of 4 cord slices lie at L3/L5") and "positional" in msg
