"""Heights and wedge ratio on shapes with known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neurospine.slice2d.heights import (
    body_measures,
    disc_measures,
    endplate_angle_deg,
    frame_from_direction,
    principal_frame,
)


def _trapezoid(shape: tuple[int, int], top: int, col0: int, col1: int, h_ant: float, h_post: float) -> np.ndarray:
    """Top edge flat at ``top``; height varies linearly from ``h_ant`` (col0) to ``h_post`` (col1)."""
    m = np.zeros(shape, bool)
    for c in range(col0, col1):
        frac = (c + 0.5 - col0) / (col1 - col0)
        h = h_ant + frac * (h_post - h_ant)
        m[top : top + int(np.rint(h)), c] = True
    return m


def test_rectangle_heights_exact() -> None:
    m = np.zeros((100, 100), bool)
    m[20:50, 30:70] = True  # 30 rows x 40 cols
    out = body_measures(m, (1.0, 1.0), frame_from_direction((1.0, 0.0)))
    assert out["anterior_height_mm"] == pytest.approx(30.0)
    assert out["middle_height_mm"] == pytest.approx(30.0)
    assert out["posterior_height_mm"] == pytest.approx(30.0)
    assert out["wedge_ratio"] == pytest.approx(1.0)
    assert out["ap_width_mm"] == pytest.approx(40.0)
    assert out["area_mm2"] == pytest.approx(1200.0)


def test_rectangle_anisotropic_spacing() -> None:
    m = np.zeros((100, 100), bool)
    m[20:50, 30:70] = True
    out = body_measures(m, (0.5, 2.0), frame_from_direction((1.0, 0.0)))
    assert out["middle_height_mm"] == pytest.approx(15.0)
    assert out["ap_width_mm"] == pytest.approx(80.0)


def test_trapezoid_wedge() -> None:
    # anterior (left) 20 px, posterior (right) 40 px over 100 columns at 0.5 mm pixels
    m = _trapezoid((200, 200), 50, 50, 150, 20, 40)
    out = body_measures(m, (0.5, 0.5), frame_from_direction((1.0, 0.0)))
    # band centres at 10 %, 50 %, 90 % of the width: 22, 30, 38 px -> 11, 15, 19 mm
    assert out["anterior_height_mm"] == pytest.approx(11.0, abs=0.3)
    assert out["middle_height_mm"] == pytest.approx(15.0, abs=0.3)
    assert out["posterior_height_mm"] == pytest.approx(19.0, abs=0.3)
    assert out["wedge_ratio"] == pytest.approx(11.0 / 19.0, abs=0.02)


def test_rotated_rectangle_in_spine_frame() -> None:
    # a 20 x 40 px rectangle rotated by 20 degrees; the spine frame is rotated the same way
    ang = math.radians(20)
    rr, cc = np.mgrid[0:200, 0:200].astype(float)
    u = (rr - 100) * math.cos(ang) + (cc - 100) * math.sin(ang)
    v = -(rr - 100) * math.sin(ang) + (cc - 100) * math.cos(ang)
    m = (np.abs(u) < 10) & (np.abs(v) < 20)
    fr = frame_from_direction((math.cos(ang), math.sin(ang)))
    out = body_measures(m, (1.0, 1.0), fr)
    assert out["middle_height_mm"] == pytest.approx(20.0, abs=1.0)
    assert out["wedge_ratio"] == pytest.approx(1.0, abs=0.05)
    pf = principal_frame(m, (1.0, 1.0))
    assert abs(float(np.dot(pf.u, fr.u))) == pytest.approx(1.0, abs=0.01)


def test_disc_mean_height() -> None:
    m = np.zeros((60, 80), bool)
    m[20:28, 10:60] = True  # 8 x 50
    out = disc_measures(m, (1.0, 1.0), frame_from_direction((1.0, 0.0)))
    assert out["mean_height_mm"] == pytest.approx(8.0)
    assert out["centre_height_mm"] == pytest.approx(8.0)


def test_endplate_angle_sign() -> None:
    flat = np.zeros((100, 100), bool)
    flat[30:60, 20:80] = True
    fr = frame_from_direction((1.0, 0.0))
    assert endplate_angle_deg(flat, (1.0, 1.0), fr, "superior") == pytest.approx(0.0, abs=0.5)
    # top edge rising towards posterior (right): rows decrease with columns
    tilted = np.zeros((100, 100), bool)
    for c in range(20, 80):
        tilted[int(50 - 0.5 * (c - 20)) : 80, c] = True
    ang = endplate_angle_deg(tilted, (1.0, 1.0), fr, "superior")
    assert ang == pytest.approx(math.degrees(math.atan(0.5)), abs=2.0)
