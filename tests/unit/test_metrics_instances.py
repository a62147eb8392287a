"""Instance matching and PQ/SQ/RQ: edge cases of the matching and the published definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.metrics import MatchMethod, evaluate_instances, match_instances, panoptic_quality

SP = (0.5, 0.5, 3.0)


def blank(shape=(40, 20, 6)):
    return np.zeros(shape, dtype=np.int32)


def test_perfect_match_with_different_ids():
    ref = blank()
    ref[0:10] = 20
    ref[12:20] = 21
    ref[25:35] = 22
    pred = np.where(ref > 0, ref + 80, 0)  # ids 100-102: same shapes, other numbers
    ev = evaluate_instances(pred, ref, SP)
    q = ev.quality
    assert (q.tp, q.fp, q.fn, q.rq, q.sq, q.pq) == (3, 0, 0, 1.0, 1.0, 1.0)
    assert {(p.ref_id, p.pred_id) for p in ev.matching.pairs} == {(20, 100), (21, 101), (22, 102)}
    assert all(s.assd_mm == 0.0 and s.dice == 1.0 for s in ev.instances)
    # matching by label finds nothing in common
    by_label = match_instances(pred, ref, method=MatchMethod.LABEL)
    assert by_label.tp == 0 and by_label.fp == 3 and by_label.fn == 3


def test_merge_of_two_equal_instances_matches_neither():
    """A prediction covering two equal reference instances has IoU exactly 0.5 with each: not > 0.5."""
    ref = blank()
    ref[0:10] = 1
    ref[10:20] = 2
    pred = blank()
    pred[0:20] = 5
    q = evaluate_instances(pred, ref, SP).quality
    assert (q.tp, q.fp, q.fn) == (0, 1, 2)
    assert q.rq == 0.0 and q.pq == 0.0 and q.sq == 0.0


def test_split_instance_matches_larger_part():
    ref = blank()
    ref[0:20] = 1
    pred = blank()
    pred[0:12] = 1  # IoU 0.6
    pred[12:20] = 2  # IoU 0.4
    ev = evaluate_instances(pred, ref, SP)
    q = ev.quality
    assert (q.tp, q.fp, q.fn) == (1, 1, 0)
    assert q.rq == pytest.approx(1 / (1 + 0.5))
    assert q.sq == pytest.approx(0.6)
    assert q.pq == pytest.approx(0.6 * 2 / 3)
    assert q.sq_dice == pytest.approx(2 * 12 / 32)
    fp = [s for s in ev.instances if s.ref_id is None]
    assert len(fp) == 1 and fp[0].pred_id == 2 and fp[0].dice == 0.0 and fp[0].assd_mm == math.inf


def test_rq_sq_pq_definitions_hold():
    rng = np.random.default_rng(3)
    ref = blank((60, 20, 6))
    for i in range(6):
        ref[i * 10 : i * 10 + 8] = i + 1
    pred = blank((60, 20, 6))
    for i in range(6):
        lo = i * 10 + int(rng.integers(-2, 5))
        pred[max(lo, 0) : lo + 8] = i + 11
    m = match_instances(pred, ref)
    q = panoptic_quality(m)
    assert q.rq == pytest.approx(q.tp / (q.tp + q.fp / 2 + q.fn / 2))
    assert q.sq == pytest.approx(np.mean([p.iou for p in m.pairs]))
    assert q.pq == pytest.approx(q.sq * q.rq)
    assert q.pq_dice == pytest.approx(q.sq_dice * q.rq)
    assert all(p.iou > 0.5 for p in m.pairs)
    assert len({p.pred_id for p in m.pairs}) == len(m.pairs)  # one-to-one


def test_hungarian_matches_what_iou_threshold_rejects():
    """IoU 0.4 (< 0.5) but Dice 0.571 (> 0.5): only the Dice-based Hungarian matching pairs them."""
    ref = blank()
    ref[0:10] = 1
    pred = blank()
    pred[3:17] = 7  # intersection 7, |ref| 10, |pred| 14 -> IoU 7/17 = 0.41, Dice 14/24 = 0.58
    assert match_instances(pred, ref).tp == 0
    hung = match_instances(pred, ref, method="hungarian")
    assert hung.tp == 1 and hung.pairs[0].dice == pytest.approx(14 / 24)
    assert match_instances(pred, ref, method="hungarian", threshold=0.6).tp == 0


def test_hungarian_is_globally_optimal():
    """Greedy-by-best-pair gives ref 1 its best partner A and strands ref 2 (which only touches A);
    maximising the summed Dice pairs ref 1 with B and ref 2 with A instead (0.83 > 0.73)."""
    ref = blank((30, 10, 2))
    ref[0:10] = 1
    ref[10:14] = 2
    pred = blank((30, 10, 2))
    pred[0:2] = 5  # B
    pred[2:14] = 6  # A
    m = match_instances(pred, ref, method="hungarian", threshold=0.0)
    assert {(p.ref_id, p.pred_id) for p in m.pairs} == {(1, 5), (2, 6)}
    assert sum(p.dice for p in m.pairs) == pytest.approx(2 * 2 / 12 + 2 * 4 / 16)


def test_labels_restrict_the_evaluation():
    ref = blank()
    ref[0:10] = 20
    ref[12:20] = 101
    pred = ref.copy()
    pred[12:20] = 0  # the disc is missed
    assert evaluate_instances(pred, ref, SP).quality.fn == 1
    only_vertebra = evaluate_instances(pred, ref, SP, labels=[20]).quality
    assert (only_vertebra.tp, only_vertebra.fn, only_vertebra.pq) == (1, 0, 1.0)


def test_per_instance_scores_and_volumes():
    ref = blank()
    ref[0:10, 0:10, 0:4] = 3
    pred = blank()
    pred[1:11, 0:10, 0:4] = 3
    ev = evaluate_instances(pred, ref, SP)
    (s,) = ev.instances
    assert s.dice == pytest.approx(0.9)
    assert s.volume_ref_mm3 == pytest.approx(400 * 0.75)
    assert s.hd_mm == pytest.approx(0.5)
    no_dist = evaluate_instances(pred, ref, SP, distances=False).instances[0]
    assert math.isnan(no_dist.assd_mm) and no_dist.dice == s.dice


def test_rejects_non_label_maps():
    ref = blank()
    with pytest.raises(ValueError, match="probability"):
        match_instances(ref + 0.3, ref)
    with pytest.raises(ValueError, match="negative"):
        match_instances(ref - 1, ref)
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            match_instances(ref, ref, threshold=bad)
    with pytest.raises(ValueError, match="unknown match method"):
        match_instances(ref, ref, method="nearest")
    # float maps holding whole numbers are fine (NIfTI label maps are often stored as float)
    assert match_instances(ref.astype(np.float32), ref).tp == 0
