"""Body count confidence on phantoms: a regular column is trusted, each kind of count error is flagged."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.slice2d.count_confidence import AREA_FACTOR, BASE, FLAG_BELOW, count_confidence
from neurospine.slice2d.instances import build_instances


def _column(heights: list[int], *, top: int = 20, gap: int = 10, discs: bool = True, p: float = 0.95):
    """Semantic labels and probabilities of stacked bodies (rows ``heights``) with discs between them."""
    labels = np.zeros((top + sum(heights) + gap * len(heights) + 20, 80), np.uint8)
    r = top
    for i, h in enumerate(heights):
        labels[r : r + h, 20:60] = 1
        r += h
        if discs and i < len(heights) - 1:
            labels[r : r + gap, 22:58] = 2
        r += gap
    probs = np.full((3, *labels.shape), (1 - p) / 2, np.float32)
    for c in range(3):
        probs[c][labels == c] = p
    return labels, probs


def _conf(labels, probs, mm: float = 1.0):
    inst = build_instances(labels, probs, (mm, mm))
    return inst, count_confidence(inst, probs, (mm, mm))


def test_regular_column_is_trusted() -> None:
    inst, cc = _conf(*_column([30] * 5))
    assert len(inst.bodies) == 5
    assert cc.confidence == pytest.approx(BASE) and not cc.flagged and cc.reasons == []


def test_missing_body_lowers_confidence_and_flags() -> None:
    labels, probs = _column([30] * 6)
    # drop the 4th body and its disc: a long gap in the column
    rows = np.flatnonzero((labels == 1).any(axis=1))
    start = rows[0] + 3 * 40
    labels[start : start + 40] = 0
    probs[:, start : start + 40] = np.array([0.95, 0.025, 0.025], np.float32)[:, None, None]
    # small pixels: the 50-pixel hole stays within the column's link distance, so all five bodies are kept
    inst, cc = _conf(labels, probs, 0.35)
    assert len(inst.bodies) == 5
    assert any("spacing" in r for r in cc.reasons)
    assert cc.confidence < FLAG_BELOW and cc.flagged


def test_merged_bodies_are_irregular() -> None:
    # one body over twice the height of the others (two fused, no disc between)
    inst, cc = _conf(*_column([30, 30, 70, 30, 30]))
    assert len(inst.bodies) == 5
    assert cc.reasons == ["irregular body sizes"] and cc.confidence == pytest.approx(BASE * AREA_FACTOR, abs=1e-3)


def test_border_cut_and_low_probability_lower_confidence() -> None:
    labels, probs = _column([30] * 5, top=0)
    _, cc = _conf(labels, probs)
    assert any("border" in r for r in cc.reasons) and cc.confidence < BASE
    _, low = _conf(*_column([30] * 5, p=0.6))
    assert any("probability" in r for r in low.reasons) and low.confidence < BASE


def test_few_or_no_bodies() -> None:
    _, cc = _conf(*_column([30] * 2))
    assert cc.confidence <= 0.3 and cc.flagged
    labels = np.zeros((100, 80), np.uint8)
    probs = np.zeros((3, 100, 80), np.float32)
    probs[0] = 1.0
    _, none = _conf(labels, probs)
    assert none.confidence == 0.0 and none.flagged
