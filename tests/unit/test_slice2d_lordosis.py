"""Lordosis angle from anchored levels on rotated synthetic bodies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.slice2d.api import _csv, height_rows
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


def _column(names: list[str], ids: list[int], s1_deg: float = 20.0, naming: str = "anchored") -> Instances2D:
    shape = (60 * len(names) + 40, 200)
    inst = Instances2D(np.zeros(shape, np.int16), naming=naming)
    for i, (name, v) in enumerate(zip(names, ids, strict=True)):
        m = _rotated_rect(shape, (40 + 60 * i, 100), 20, 30, s1_deg if name == "S1" else 0.0)
        inst.bodies.append(Instance(v, "body", name, m, (40.0 + 60 * i, 100.0)))
        inst.label_map[m] = v
    return inst


def test_lordosis_row_in_heights_csv() -> None:
    inst = _column(["L1", "L2", "L3", "L4", "L5", "S1"], [20, 21, 22, 23, 24, 26])
    plane = Plane2D(np.zeros(inst.label_map.shape, np.float32), (1.0, 1.0), True, True)
    rows, lordosis = height_rows(plane, inst)
    angle = [r for r in rows if r["kind"] == "angle"]
    assert len(angle) == 1 and angle[0]["name"] == "lumbar_lordosis_L1_S1"
    assert angle[0]["lordosis_deg"] == pytest.approx(lordosis, abs=1e-4)
    assert angle[0]["lordosis_deg"] == pytest.approx(20.0, abs=2.0)
    assert "S1 superior endplate" in angle[0]["lordosis_definition"]
    text = _csv(rows)
    header = text.splitlines()[0].split(",")
    assert "lordosis_deg" in header and "lordosis_definition" in header
    assert "lumbar_lordosis_L1_S1" in text


def test_lordosis_row_falls_back_to_l5_and_is_absent_without_levels() -> None:
    inst = _column(["L1", "L2", "L3", "L4", "L5"], [20, 21, 22, 23, 24])
    plane = Plane2D(np.zeros(inst.label_map.shape, np.float32), (1.0, 1.0), True, True)
    rows, lordosis = height_rows(plane, inst)
    assert lordosis == pytest.approx(0.0, abs=2.0)
    assert [r["name"] for r in rows if r["kind"] == "angle"] == ["lumbar_lordosis_L1_L5"]
    positional = _column(["body1", "body2", "body3"], [1, 2, 3], naming="positional")
    rows, lordosis = height_rows(
        Plane2D(np.zeros(positional.label_map.shape, np.float32), (1.0, 1.0), True, True), positional
    )
    assert lordosis is None and not [r for r in rows if r["kind"] == "angle"]
