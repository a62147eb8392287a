"""Level names of discs: no disc below the sacrum; the disc below the lowest body is named."""

from __future__ import annotations

import numpy as np

from neurospine.slice2d.instances import build_instances


def _column(n_bodies: int, disc_below: bool) -> tuple[np.ndarray, np.ndarray]:
    """Semantic labels (1 body, 2 disc) of ``n_bodies`` stacked bodies with discs between them."""
    labels = np.zeros((40 + 40 * n_bodies, 80), np.uint8)
    r = 20
    for i in range(n_bodies):
        labels[r : r + 30, 20:60] = 1
        r += 30
        if i < n_bodies - 1 or disc_below:
            labels[r : r + 10, 22:58] = 2
        r += 10
    probs = np.zeros((3, *labels.shape), np.float32)
    for c in range(3):
        probs[c][labels == c] = 0.9
    return labels, probs


def test_no_disc_below_s1() -> None:
    labels, probs = _column(3, disc_below=True)
    inst = build_instances(labels, probs, (1.0, 1.0), lowest_level="S1")
    assert [b.name for b in inst.bodies] == ["L4", "L5", "S1"]
    assert [(d.value, d.name) for d in inst.discs] == [(123, "L4-L5"), (124, "L5-S1")]
    assert 126 not in np.unique(inst.label_map)
    assert not any("?" in d.name for d in inst.discs)


def test_disc_below_lowest_lumbar_body_is_named() -> None:
    labels, probs = _column(3, disc_below=True)
    inst = build_instances(labels, probs, (1.0, 1.0), lowest_level="L5")
    assert [(d.value, d.name) for d in inst.discs] == [(122, "L3-L4"), (123, "L4-L5"), (124, "L5-S1")]


def test_positional_ids_keep_the_disc_below() -> None:
    labels, probs = _column(3, disc_below=True)
    inst = build_instances(labels, probs, (1.0, 1.0))
    assert inst.naming == "positional" and len(inst.discs) == 3
