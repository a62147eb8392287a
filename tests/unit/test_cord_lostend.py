"""Slices just above a caudal end of the cord inside the image are flagged and left out of the summaries
(docs/decisions/cord-lost-end.md)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from neurospine.cord.lostend import FADE_MM, MAX_SLICE_MM, MIN_BELOW_MM, flag_warning, flagged_slices
from neurospine.cord.morphometry import measure_cord
from neurospine.io import Volume, reorient
from tests.conftest import make_affine


def test_only_an_end_with_image_below_it_flags_the_slices_above_it():
    assert flagged_slices([], 2.0) == set()
    assert flagged_slices(list(range(0, 30)), 2.0) == set()  # the cord runs off the field
    assert flagged_slices(list(range(1, 30)), 2.0) == set()  # 2 mm of image below: under MIN_BELOW_MM
    assert MIN_BELOW_MM <= 4.0 and FADE_MM == 20.0 and MAX_SLICE_MM >= 3.0
    assert flagged_slices(list(range(2, 30)), 2.0) == set(range(2, 12))  # 4 mm below; 20 mm above flagged
    assert flagged_slices([2, 3, 4, 15], 3.0) == {2, 3, 4}  # 15 is 39 mm up
    assert flagged_slices([1, 2, 3], 5.0) == set()  # thick slices (a 2D axial stack): never
    # a head MRI: the cord's lowest 20 mm are flagged even where it reaches the field's bottom (amendment 1)
    assert flagged_slices(list(range(0, 30)), 2.0, field_bottom_fades=True) == set(range(0, 10))
    assert flagged_slices([1, 2, 3], 5.0, field_bottom_fades=True) == set()


def _tube(axcodes: str, first_slice: int) -> Volume:
    """A round cord (radius 4 mm) in a 1 x 1 x 2 mm RAS grid of 40 slices, from ``first_slice`` to the top,
    stored in ``axcodes`` order."""
    shape = (30, 30, 40)
    ii, jj = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    disc = ((ii - 15) ** 2 + (jj - 15) ** 2 <= 16).astype(np.float32)
    data = np.zeros(shape, dtype=np.float32)
    data[:, :, first_slice:] = disc[:, :, None]
    data[:, :, first_slice : first_slice + 3] *= 0.6  # the fading end reads small
    ras = Volume(data, make_affine((1.0, 1.0, 2.0), "RAS"))
    return reorient(ras, axcodes)[0]


@pytest.mark.parametrize("axcodes", ["RAS", "LPI", "PIR"])
def test_the_flag_follows_the_caudal_end_in_any_voxel_order(axcodes):
    morph = measure_cord(_tube(axcodes, first_slice=6))
    flagged = sorted(r.position_mm for r in morph.slices if r.near_lost_end)
    kept = sorted(r.position_mm for r in morph.slices if not r.near_lost_end)
    assert len(flagged) == 10 and flagged[-1] < kept[0]  # the 20 mm above the end, the lowest slices
    rows = list(csv.DictReader(io.StringIO(morph.csv())))
    assert sum(r["near_lost_end"] == "1" for r in rows) == 10 and len(rows) == 34
    assert morph.mean_csa_mm2() == pytest.approx(np.mean([r.csa_mm2 for r in morph.cord_slices()]), abs=1e-3)
    assert len(morph.cord_slices()) == 24
    assert morph.mean_csa_mm2() > morph.mean_csa_mm2(all_slices=True)  # the small fading slices are left out
    all_row = [r for r in csv.DictReader(io.StringIO(morph.per_level_csv(with_total=True))) if r["level"] == "all"]
    assert all_row[0]["n_slices"] == "24"


def test_a_cord_that_runs_off_the_field_is_not_flagged_unless_on_a_head_mri():
    morph = measure_cord(_tube("LPI", first_slice=0))
    assert not any(r.near_lost_end for r in morph.slices) and len(morph.cord_slices()) == 40
    head = measure_cord(_tube("LPI", first_slice=0), field_bottom_fades=True)
    flagged = [r.position_mm for r in head.slices if r.near_lost_end]
    assert len(flagged) == 10 and max(flagged) < min(r.position_mm for r in head.cord_slices())


def test_one_warning_names_the_count_and_the_outputs():
    assert flag_warning("x.nii.gz", [False, False], csv_name="a", perlevel_name="b", qc="c") is None
    msg = flag_warning("x.nii.gz", [True, True, False], csv_name="x_csa.csv", perlevel_name="p.csv", qc="q.png")
    assert msg is not None and "2 of 3 cord slices" in msg and "near_lost_end=1 in x_csa.csv" in msg
    assert "p.csv" in msg and "q.png" in msg and "inside the image" in msg
    head = flag_warning("x.nii.gz", [True], csv_name="a", perlevel_name="b", qc="c", head=True)
    assert head is not None and "head coil" in head


def test_the_20_mm_are_measured_across_the_slices_on_a_sheared_grid():
    """A sheared grid (third column (1, 0, 2) mm): slices 2 mm apart along their normal, not 2.24."""
    data = np.zeros((30, 30, 40), dtype=np.float32)
    ii, jj = np.meshgrid(np.arange(30), np.arange(30), indexing="ij")
    data[:, :, 6:][((ii - 15) ** 2 + (jj - 15) ** 2 <= 16)] = 1.0
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    affine[0, 2] = 1.0
    morph = measure_cord(Volume(data, affine))
    assert sum(r.near_lost_end for r in morph.slices) == 10  # 9 if measured along the 2.24 mm column


def test_run_file_flags_warns_and_leaves_the_fading_slices_out(tmp_path):
    from neurospine.cord.api import run_file
    from neurospine.io import save_volume
    from tests.unit.test_cord_min_length import bright_is_cord

    shape = (64, 64, 60)  # RAS 1 mm: a tube from slice 10 to the top; 10 mm of image below its end
    ii, jj = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    img = np.zeros(shape, dtype=np.float32)
    img[:, :, 10:][((ii - 32) ** 2 + (jj - 32) ** 2) <= 25] = 100.0
    path = save_volume(Volume(img, make_affine((1.0, 1.0, 1.0), "RAS"), "tube.nii.gz"), tmp_path / "tube.nii.gz")
    res = run_file(path, tmp_path / "out", predictor=bright_is_cord, force=True, auto_levels=False)
    rows = list(csv.DictReader(io.StringIO(Path(res.outputs["csa"]).read_text())))
    flagged = sorted(int(r["slice"]) for r in rows if r["near_lost_end"] == "1")
    assert flagged == list(range(10, 30))
    assert res.measures["n_slices_near_lost_end"] == 20 and res.measures["n_slices"] == 50
    assert any("near_lost_end=1" in w and "20 of 50 cord slices" in w for w in res.warnings)
    total = [r for r in csv.DictReader(io.StringIO(Path(res.outputs["csa_perlevel"]).read_text()))]
    assert [r["n_slices"] for r in total if r["level"] == "all"] == ["30"]
