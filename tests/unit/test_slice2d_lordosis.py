"""Lordosis angle from anchored levels on rotated synthetic bodies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.slice2d.api import height_rows
from neurospine.slice2d.instances import Instance, Instances2D
from neurospine.slice2d.io2d import Plane2D


def _rotated_rect(shape, centre, half_h, half_w, deg):
    """Rectangle whose superior edge rises towards posterior (+cols) by ``deg`` degrees."""
    a = math.radians(deg)
    rr, cc = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    dr, dc = rr - centre[0], cc - centre[1]
    # axis along the edge: (row, col) = (-sin a, cos a); normal (towards inferior): (cos a, sin a)
    along = -dr * math.sin(a) + dc * math.cos(a)
    normal = dr * math.cos(a) + dc * math.sin(a)
    return (np.abs(along) <= half_w) & (np.abs(normal) <= half_h)


@pytest.mark.parametrize("s1_deg", [0.0, 30.0])
def test_lordosis_l1_to_s1(s1_deg: float) -> None:
    shape = (400, 200)
    names = ["L1", "L2", "L3", "L4", "L5", "S1"]
    ids = [20, 21, 22, 23, 24, 26]
    inst = Instances2D(np.zeros(shape, np.int16), naming="anchored")
    for i, (name, v) in enumerate(zip(names, ids, strict=True)):
        deg = s1_deg if name == "S1" else 0.0
        m = _rotated_rect(shape, (40 + 60 * i, 100), 20, 30, deg)
        inst.bodies.append(Instance(v, "body", name, m, (40.0 + 60 * i, 100.0)))
        inst.label_map[m] = v
    plane = Plane2D(np.zeros(shape, np.float32), (1.0, 1.0), True, True)
    rows, lordosis = height_rows(plane, inst)
    assert lordosis is not None
    assert lordosis == pytest.approx(s1_deg, abs=2.0)
    assert len([r for r in rows if r["kind"] == "body"]) == 6
