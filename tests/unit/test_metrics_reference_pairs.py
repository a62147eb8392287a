"""Cross-check against panoptica on its own spine example pairs (../shared/data/label_only_refs).

The expected numbers below were produced by panoptica 2.1.7 (PyPI, Apache-2.0) in a separate
virtual environment, with ``voxelspacing`` = the NIfTI header zooms:

* semantic pair: ``Panoptica_Evaluator(expected_input=MATCHED_INSTANCE, instance_metrics=[DSC, IOU,
  ASSD, HD95, HD], segmentation_class_groups={f"l{v}": LabelGroup([v], single_instance=True)})``,
  one group per label -> per-structure Dice (``sq_dsc``), IoU (``sq``), ASSD, HD95, HD;
* matched_instance pair: ``expected_input=MATCHED_INSTANCE`` (ids correspond) -> our ``method="label"``;
* unmatched_instance pair: ``expected_input=UNMATCHED_INSTANCE`` with
  ``NaiveThresholdMatching(IOU, 0.5)`` -> our default matching.

panoptica is not a dependency of neurospine; ``test_live_panoptica`` re-runs it when it is importable.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurospine.io import load_volume
from neurospine.metrics import evaluate_arrays, evaluate_instances, evaluate_volumes

ZOOMS_MM = (0.5859400033950806, 0.5859400033950806, 3.299999952316284)

#: label -> (Dice, IoU, ASSD mm, HD95 mm, HD mm) from panoptica 2.1.7
SEMANTIC = {
    26: (0.9698239455931553, 0.941415733208399, 0.19092643537848208, 0.8286442995382602, 3.3516153378432474),
    41: (0.8836457411185097, 0.7915459936560474, 0.13138294258335365, 0.5859400033950806, 3.5641338976544077),
    42: (0.9115941298098744, 0.8375498100268742, 0.10292419077666551, 0.5859400033950806, 3.402447804220475),
    43: (0.8663967611336032, 0.7642857142857142, 0.5263529667249793, 0.5859400033950806, 26.204033566557154),
    44: (0.8649356316823041, 0.7620146097654749, 0.2612530718132215, 0.8286442995382602, 20.977299853855627),
    45: (0.9049142857142857, 0.8263410561469422, 0.08712884228719744, 0.5859400033950806, 3.299999952316284),
    46: (0.8938299055030573, 0.8080402010050252, 0.08610761901207611, 0.5859400033950806, 2.9877195111061385),
    47: (0.9027481999797181, 0.822735674676525, 0.09529849420507819, 0.5859400033950806, 3.402447804220475),
    48: (0.8782828282828283, 0.7829806393516434, 0.1153827702934495, 0.5859400033950806, 2.415892524272688),
    49: (0.9714093870291493, 0.944408178316399, 0.1353138162213662, 0.5859400033950806, 3.5156400203704834),
    60: (0.02015634084889205, 0.010180773999869478, 7.1717172801748905, 57.95103488210823, 86.47275324138388),
    61: (0.02706817091735658, 0.01371976999830881, 7.068530530162126, 57.106979245008425, 85.12858656073365),
    62: (0.6793787581594264, 0.5144387630874118, 0.22544237278800106, 0.5859400033950806, 3.7846078477265976),
    100: (0.9423566613429801, 0.8909966402658678, 0.18597034425563225, 0.5859400033950806, 3.5018998323198773),
}

#: case -> (tp, fp, fn, rq, sq, pq, sq_dice, pq_dice, mean ASSD, mean HD95, mean HD over TP) from panoptica
INSTANCE = {
    "matched_instance": (
        22,
        0,
        0,
        1.0,
        0.7831427226203406,
        0.7831427226203406,
        0.8644933992012848,
        0.8644933992012848,
        0.1774067997562888,
        0.6567016937572533,
        3.006405658989171,
    ),
    "unmatched_instance": (
        19,
        3,
        3,
        0.8636363636363636,
        0.8328184295330796,
        0.719252280051296,
        0.900292616009954,
        0.7775254410995057,
        0.1646148184279203,
        0.6370356446883815,
        3.075037453423768,
    ),
}


def _pair(shared_data, case):
    root = shared_data / "label_only_refs"
    ref = np.asarray(nib.load(root / f"panoptica-{case}_ref.nii.gz").dataobj)
    pred = np.asarray(nib.load(root / f"panoptica-{case}_pred.nii.gz").dataobj)
    return pred, ref


def test_semantic_pair_matches_panoptica(shared_data):
    pred, ref = _pair(shared_data, "semantic")
    rows = evaluate_arrays(pred, ref, ZOOMS_MM, mode="semantic")
    assert [r["label"] for r in rows] == sorted(SEMANTIC)
    for r in rows:
        expected = SEMANTIC[r["label"]]
        got = (r["dice"], r["iou"], r["assd_mm"], r["hd95_mm"], r["hd_mm"])
        np.testing.assert_allclose(got, expected, rtol=1e-9, err_msg=f"label {r['label']}")
    # the fixture's prediction swaps cord and canal: the metrics must see it
    by_label = {r["label"]: r for r in rows}
    assert by_label[60]["dice"] < 0.05 and by_label[61]["dice"] < 0.05 and by_label[60]["hd95_mm"] > 50


@pytest.mark.parametrize("case,method", [("matched_instance", "label"), ("unmatched_instance", "iou")])
def test_instance_pairs_match_panoptica(shared_data, case, method):
    pred, ref = _pair(shared_data, case)
    ev = evaluate_instances(pred, ref, ZOOMS_MM, method=method)
    q = ev.quality
    tp = [s for s in ev.instances if s.ref_id is not None and s.pred_id is not None]
    exp = INSTANCE[case]
    assert (q.tp, q.fp, q.fn) == exp[:3]
    got = (
        q.rq,
        q.sq,
        q.pq,
        q.sq_dice,
        q.pq_dice,
        np.mean([s.assd_mm for s in tp]),
        np.mean([s.hd95_mm for s in tp]),
        np.mean([s.hd_mm for s in tp]),
    )
    np.testing.assert_allclose(got, exp[3:], rtol=1e-9)


def test_unmatched_ids_need_overlap_matching(shared_data):
    """In the unmatched pair every predicted id is shifted by one level: label matching scores it as wrong."""
    pred, ref = _pair(shared_data, "unmatched_instance")
    by_label = evaluate_instances(pred, ref, ZOOMS_MM, method="label", distances=False).quality
    by_iou = evaluate_instances(pred, ref, ZOOMS_MM, distances=False).quality
    assert by_iou.pq > 0.7 > by_label.pq


def test_volume_level_and_groups(shared_data):
    root = shared_data / "label_only_refs"
    pred = load_volume(root / "panoptica-unmatched_instance_pred.nii.gz", check_intensity=False)
    ref = load_volume(root / "panoptica-unmatched_instance_ref.nii.gz", check_intensity=False)
    np.testing.assert_allclose(ref.spacing_mm, ZOOMS_MM, rtol=1e-6)
    rows = evaluate_volumes(pred, ref)  # auto -> instance
    assert {r["mode"] for r in rows} == {"instance"}
    summary = {r["group"]: r for r in rows if r["level"] == "summary"}
    assert set(summary) == {"vertebra", "disc", "endplate", "all"}
    assert (summary["all"]["tp"], summary["all"]["fp"], summary["all"]["fn"]) == (19, 3, 3)
    assert summary["all"]["pq"] == pytest.approx(INSTANCE["unmatched_instance"][5], rel=1e-9)
    assert sum(summary[g]["tp"] for g in ("vertebra", "disc", "endplate")) == 19
    inst = [r for r in rows if r["level"] == "instance"]
    assert len(inst) == 19 + 3 + 3
    assert {r["status"] for r in inst} == {"tp", "fp", "fn"}


def test_live_panoptica(shared_data):
    """Re-run panoptica itself when it is installed (it is not a neurospine dependency)."""
    panoptica = pytest.importorskip("panoptica")
    pred, ref = _pair(shared_data, "unmatched_instance")
    evaluator = panoptica.Panoptica_Evaluator(
        expected_input=panoptica.InputType.UNMATCHED_INSTANCE,
        instance_matcher=panoptica.NaiveThresholdMatching(matching_metric=panoptica.Metric.IOU, matching_threshold=0.5),
        instance_metrics=[panoptica.Metric.DSC, panoptica.Metric.IOU],
        global_metrics=[panoptica.Metric.DSC],
    )
    result = next(iter(evaluator.evaluate(pred.astype(np.int32), ref.astype(np.int32), verbose=False).values()))
    ours = evaluate_instances(pred, ref, ZOOMS_MM, distances=False).quality
    assert (ours.tp, ours.fp, ours.fn) == (result.tp, result.fp, result.fn)
    np.testing.assert_allclose((ours.rq, ours.sq, ours.pq), (result.rq, result.sq, result.pq), rtol=1e-9)
