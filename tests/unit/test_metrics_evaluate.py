"""evaluate_volumes / evaluate_arrays rows, mode detection, grid checks and CSV output."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from neurospine.errors import GeometryError, InputError
from neurospine.io import Volume, save_volume
from neurospine.metrics import COLUMNS, detect_mode, evaluate_arrays, evaluate_files, evaluate_volumes, write_csv

SP = (0.5, 0.5, 3.0)


def make_affine(spacing_mm, axcodes="RAS", origin=(0.0, 0.0, 0.0)):
    """Affine whose voxel axes point along ``axcodes`` with the given spacing."""
    import nibabel as nib

    aff = np.eye(4)
    aff[:3, :3] = 0
    for vox_axis, (world_axis, flip) in enumerate(nib.orientations.axcodes2ornt(tuple(axcodes))):
        aff[int(world_axis), vox_axis] = flip * spacing_mm[vox_axis]
    aff[:3, 3] = origin
    return aff


def semantic_pair():
    ref = np.zeros((40, 30, 8), dtype=np.uint8)
    ref[5:25, 5:20, 2:6] = 49  # the vertebral body as neurospine writes it
    ref[25:30, 5:20, 2:6] = 100
    pred = ref.copy()
    pred[5:7] = 0  # corpus loses 2 of 20 rows
    pred[30:32, 5:20, 2:6] = 100  # disc gains 2 rows
    return pred, ref


def test_semantic_rows():
    pred, ref = semantic_pair()
    rows = evaluate_arrays(pred, ref, SP, mode="semantic")
    assert [r["label"] for r in rows] == [49, 100]
    assert all(tuple(r) == COLUMNS for r in rows)
    corpus, disc = rows
    assert corpus["name"] == "vertebra_corpus" and disc["name"] == "intervertebral_disc"
    assert corpus["dice"] == pytest.approx(2 * 18 / 38)
    assert corpus["recall"] == pytest.approx(18 / 20) and corpus["precision"] == 1.0
    assert disc["dice"] == pytest.approx(2 * 5 / 12)
    assert disc["hd_mm"] == pytest.approx(1.0)  # two in-plane rows of 0.5 mm
    assert corpus["volume_ref_mm3"] == pytest.approx(20 * 15 * 4 * 0.75)
    assert corpus["volume_pred_mm3"] == pytest.approx(18 * 15 * 4 * 0.75)
    assert corpus["pq"] is None and corpus["mode"] == "semantic"


def test_requested_absent_label_follows_policy():
    pred, ref = semantic_pair()
    rows = evaluate_arrays(pred, ref, SP, mode="semantic", labels=[49, 60])
    cord = rows[1]
    assert cord["label"] == 60 and cord["name"] == "spinal_cord"
    assert math.isnan(cord["dice"]) and math.isnan(cord["hd95_mm"])
    perfect = evaluate_arrays(pred, ref, SP, mode="semantic", labels=[60], empty="perfect")[0]
    assert perfect["dice"] == 1.0 and perfect["assd_mm"] == 0.0


def test_unknown_label_gets_a_generic_name():
    ref = np.zeros((6, 6, 3), np.uint8)
    ref[1:3] = 7
    row = evaluate_arrays(ref, ref, SP, mode="semantic")[0]
    assert row["name"] == "label_7" and row["dice"] == 1.0


@pytest.mark.parametrize(
    "values,expected",
    [
        ((41, 50, 100), "semantic"),
        ((26,), "semantic"),
        ((20, 21, 120), "instance"),
        ((1, 2), "instance"),
        ((26, 220), "instance"),
        ((), "semantic"),
    ],
)
def test_detect_mode(values, expected):
    arr = np.zeros((len(values) + 1, 2, 2), np.int32)
    for i, v in enumerate(values):
        arr[i] = v
    assert detect_mode(arr) == expected


def test_instance_rows_and_group_summaries():
    ref = np.zeros((60, 20, 6), np.int16)
    ref[0:10] = 20  # L1
    ref[10:13] = 120  # disc L1-L2
    ref[13:23] = 21  # L2
    ref[30:40] = 22  # L3, missed
    pred = ref.copy()
    pred[30:40] = 0
    pred[45:55] = 23  # hallucinated L4
    rows = evaluate_arrays(pred, ref, SP)  # auto -> instance
    summary = {r["group"]: r for r in rows if r["level"] == "summary"}
    assert (summary["vertebra"]["tp"], summary["vertebra"]["fp"], summary["vertebra"]["fn"]) == (2, 1, 1)
    assert (summary["disc"]["tp"], summary["disc"]["pq"]) == (1, 1.0)
    assert summary["all"]["rq"] == pytest.approx(3 / (3 + 0.5 + 0.5))
    inst = {(r["label"], r["pred_label"]): r for r in rows if r["level"] == "instance"}
    assert inst[(22, None)]["status"] == "fn" and inst[(22, None)]["name"] == "L3"
    assert inst[(None, 23)]["status"] == "fp" and inst[(None, 23)]["hd95_mm"] == math.inf
    assert inst[(120, 120)]["name"] == "disc_L1" and inst[(120, 120)]["dice"] == 1.0
    only_discs = evaluate_arrays(pred, ref, SP, mode="instance", labels=range(100, 200))
    assert {r["group"] for r in only_discs} == {"disc", "all"}


def test_instance_mode_on_empty_maps():
    z = np.zeros((4, 4, 4), np.uint8)
    rows = evaluate_arrays(z, z, SP, mode="instance")
    assert len(rows) == 1 and rows[0]["group"] == "all" and math.isnan(rows[0]["pq"])


def test_bad_arguments():
    pred, ref = semantic_pair()
    with pytest.raises(ValueError, match="mode"):
        evaluate_arrays(pred, ref, SP, mode="panoptic")
    with pytest.raises(ValueError, match="shape"):
        evaluate_arrays(pred[:-1], ref, SP)
    with pytest.raises(ValueError, match="spacing"):
        evaluate_arrays(pred, ref, (1.0, 1.0))


def test_grid_mismatch_names_both_files_and_the_fix():
    pred, ref = semantic_pair()
    ref_vol = Volume(ref, make_affine(SP), "/data/ref.nii.gz")
    pred_vol = Volume(pred, make_affine((0.5, 0.5, 3.0), origin=(1.0, 0.0, 0.0)), "/data/pred.nii.gz")
    with pytest.raises(GeometryError) as err:
        evaluate_volumes(pred_vol, ref_vol)
    msg = str(err.value)
    assert "/data/pred.nii.gz" in msg and "/data/ref.nii.gz" in msg and "--resample" in msg
    assert err.value.path == "/data/pred.nii.gz"


def test_resample_brings_prediction_onto_the_reference_grid():
    ref = np.zeros((20, 20, 6), np.uint8)
    ref[4:10, 5:15, 1:5] = 50
    ref_vol = Volume(ref, make_affine((1.0, 1.0, 3.0)), "ref")
    fine = np.zeros((40, 40, 6), np.uint8)  # 0.5 mm in-plane, voxel 2i sits on ref voxel i
    fine[8:20, 10:30, 1:5] = 50
    pred_vol = Volume(fine, make_affine((0.5, 0.5, 3.0)), "pred")
    with pytest.raises(GeometryError):
        evaluate_volumes(pred_vol, ref_vol)
    rows = evaluate_volumes(pred_vol, ref_vol, resample=True)
    assert rows[0]["dice"] == 1.0 and rows[0]["hd_mm"] == 0.0


def test_non_label_volume_is_an_input_error():
    ref = np.zeros((6, 6, 3), np.float32)
    ref[1:3] = 1
    prob = ref * 0.7
    with pytest.raises(InputError, match="probability map"):
        evaluate_volumes(Volume(prob, make_affine(SP), "p.nii.gz"), Volume(ref, make_affine(SP), "r.nii.gz"))


def test_image_passed_as_label_map_is_an_input_error():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 4000, size=(30, 30, 10)).astype(np.int16)  # an MRI stored as int16
    ref = np.zeros_like(image)
    with pytest.raises(InputError, match="looks like an image"):
        evaluate_volumes(Volume(image, make_affine(SP), "t2.nii.gz"), Volume(ref, make_affine(SP), "r.nii.gz"))


def test_uint64_and_bool_maps():
    ref = np.zeros((10, 10, 4), np.uint64)
    ref[2:6] = 2**40  # large ids are fine
    rows = evaluate_arrays(ref, ref, SP, mode="instance")
    assert rows[-1]["pq"] == 1.0
    b = ref > 0
    assert evaluate_arrays(b, b, SP, mode="semantic")[0]["dice"] == 1.0


def test_csv_round_trip(tmp_path):
    ref = np.zeros((30, 20, 6), np.int16)
    ref[0:10] = 20
    ref[12:20] = 21
    pred = ref.copy()
    pred[12:20] = 0
    rows = evaluate_arrays(pred, ref, SP)
    out = write_csv(rows, tmp_path / "sub" / "eval.csv")
    assert [p.name for p in out.parent.iterdir()] == ["eval.csv"]  # no temp file left behind
    with out.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        back = list(reader)
    assert len(back) == len(rows)
    missed = next(r for r in back if r["label"] == "21")
    assert missed["status"] == "fn" and missed["assd_mm"] == "inf" and missed["pred_label"] == ""
    hit = next(r for r in back if r["label"] == "20")
    assert float(hit["dice"]) == 1.0 and float(hit["volume_ref_mm3"]) == pytest.approx(10 * 20 * 6 * 0.75)
    z = np.zeros((4, 4, 4), np.uint8)
    write_csv(evaluate_arrays(z, z, SP, mode="instance"), tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text().splitlines()[1].split(",")[COLUMNS.index("pq")] == "nan"


def test_evaluate_files(tmp_path):
    pred, ref = semantic_pair()
    save_volume(Volume(pred, make_affine(SP, "PIR")), tmp_path / "pred.nii.gz", is_label=True)
    save_volume(Volume(ref, make_affine(SP, "PIR")), tmp_path / "ref.nii.gz", is_label=True)
    rows = evaluate_files(tmp_path / "pred.nii.gz", tmp_path / "ref.nii.gz", tmp_path / "e.csv")
    assert (tmp_path / "e.csv").is_file() and rows[0]["dice"] == pytest.approx(2 * 18 / 38)
    with pytest.raises(InputError, match="not found"):
        evaluate_files(tmp_path / "missing.nii.gz", tmp_path / "ref.nii.gz", tmp_path / "f.csv")
    assert not (tmp_path / "f.csv").exists()


def test_two_dimensional_maps():
    """The array API is n-dimensional: 2D slices (e.g. from slice2d) work with a 2-value spacing."""
    ref = np.zeros((30, 20), np.uint8)
    ref[5:15, 5:15] = 50
    pred = np.zeros_like(ref)
    pred[7:15, 5:15] = 50
    row = evaluate_arrays(pred, ref, (0.5, 0.8), mode="semantic")[0]
    assert row["dice"] == pytest.approx(2 * 80 / 180)
    assert row["hd_mm"] == pytest.approx(1.0)
    assert row["volume_ref_mm3"] == pytest.approx(100 * 0.4)  # an area in mm² for 2D input
    inst = evaluate_arrays(pred, ref, (0.5, 0.8), mode="instance")
    assert inst[-1]["tp"] == 1
