"""The false-positive corridor of benchmarks/spine_cleanup.py (definition in docs/decisions/spine-cleanup.md)."""

from __future__ import annotations

import numpy as np
from benchmarks.spine_cleanup import ANTERIOR_MM, LATERAL_MM, POSTERIOR_MM, corridor


def test_corridor_follows_the_reference_column_and_extrapolates_it():
    ref = np.zeros((200, 200, 140), dtype=np.uint8)
    for k, row in enumerate((40, 80, 120)):  # three 30 mm deep bodies, each 10 mm further back
        ref[60 + 10 * k : 90 + 10 * k, row : row + 25, 55:85] = k + 1
    inside = corridor(ref, (1.0, 1.0, 1.0))
    assert inside[ref > 0].all()
    # at the middle body's centre row (axis P = 84.5, half depth 15): the front and back limits
    row = 92
    front, back = 84.5 - 15 - ANTERIOR_MM, 84.5 + 15 + POSTERIOR_MM
    assert not inside[int(np.floor(front)) - 1, row, 70] and inside[int(np.ceil(front)), row, 70]
    assert inside[int(np.floor(back)), row, 70] and (back + 1 >= 200 or not inside[int(back) + 1, row, 70])
    assert not inside[100, row, int(69.5 + LATERAL_MM) + 2] and inside[100, row, int(69.5 + LATERAL_MM) - 1]
    # below the last body the axis keeps moving back by 10 mm per 40 mm: 60 mm below it, 15 mm further back
    low = 132 + 60
    axis = 94.5 + 15.0
    assert not inside[int(axis - 15 - ANTERIOR_MM) - 2, low, 70] and inside[int(axis - 15 - ANTERIOR_MM) + 2, low, 70]
