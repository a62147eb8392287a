"""The documented empty-mask policy, case by case, for every metric family."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.metrics import (
    EmptyPolicy,
    assd_mm,
    dice,
    evaluate_instances,
    hd95_mm,
    hd_mm,
    jaccard,
    precision,
    recall,
    soft_dice,
    surface_distances,
)

SP = (0.5, 0.5, 3.0)
EMPTY = np.zeros((8, 8, 4), dtype=np.uint8)
FULL = EMPTY.copy()
FULL[2:5, 2:5, 1:3] = 1

OVERLAP = (dice, jaccard)
DISTANCES = (assd_mm, hd95_mm, hd_mm)


def test_default_is_nan():
    assert EmptyPolicy.NAN.overlap != EmptyPolicy.NAN.overlap  # nan
    for f in OVERLAP:
        assert math.isnan(f(EMPTY, EMPTY))
    for g in DISTANCES:
        assert math.isnan(g(EMPTY, EMPTY, SP))
    assert math.isnan(soft_dice(EMPTY.astype(float), EMPTY))
    assert math.isnan(precision(EMPTY, EMPTY)) and math.isnan(recall(EMPTY, EMPTY))


@pytest.mark.parametrize("policy", [EmptyPolicy.PERFECT, "perfect", "one"])
def test_both_empty_perfect(policy):
    for f in (dice, jaccard, precision, recall):
        assert f(EMPTY, EMPTY, empty=policy) == 1.0
    for g in DISTANCES:
        assert g(EMPTY, EMPTY, SP, empty=policy) == 0.0


@pytest.mark.parametrize("policy", list(EmptyPolicy))
def test_reference_empty_prediction_not(policy):
    assert dice(FULL, EMPTY, empty=policy) == 0.0
    assert jaccard(FULL, EMPTY, empty=policy) == 0.0
    assert precision(FULL, EMPTY, empty=policy) == 0.0
    assert math.isnan(recall(FULL, EMPTY, empty=policy))
    for g in DISTANCES:
        assert g(FULL, EMPTY, SP, empty=policy) == math.inf


@pytest.mark.parametrize("policy", list(EmptyPolicy))
def test_prediction_empty_reference_not(policy):
    assert dice(EMPTY, FULL, empty=policy) == 0.0
    assert recall(EMPTY, FULL, empty=policy) == 0.0
    assert math.isnan(precision(EMPTY, FULL, empty=policy))
    for g in DISTANCES:
        assert g(EMPTY, FULL, SP, empty=policy) == math.inf


def test_surface_distances_of_empty_sides():
    d = surface_distances(EMPTY, FULL, SP)
    assert d.pred_to_ref_mm.size == 0
    assert d.ref_to_pred_mm.size > 0 and np.all(np.isinf(d.ref_to_pred_mm))
    d0 = surface_distances(EMPTY, EMPTY, SP)
    assert d0.pred_to_ref_mm.size == 0 and d0.ref_to_pred_mm.size == 0


def test_instances_follow_policy():
    both = evaluate_instances(EMPTY, EMPTY, SP)
    assert math.isnan(both.quality.pq) and math.isnan(both.quality.rq) and math.isnan(both.quality.sq)
    assert evaluate_instances(EMPTY, EMPTY, SP, empty="perfect").quality.pq == 1.0
    # instances present but no true positive: zeros, not nan (panoptica's default)
    missed = evaluate_instances(EMPTY, FULL, SP).quality
    assert (missed.tp, missed.fp, missed.fn, missed.rq, missed.sq, missed.pq) == (0, 0, 1, 0.0, 0.0, 0.0)
    halluc = evaluate_instances(FULL, EMPTY, SP, empty="perfect").quality
    assert (halluc.tp, halluc.fp, halluc.fn, halluc.pq) == (0, 1, 0, 0.0)


def test_parse_rejects_unknown():
    with pytest.raises(ValueError, match="policy"):
        EmptyPolicy.parse("zero")
    assert EmptyPolicy.parse("NAN") is EmptyPolicy.NAN
