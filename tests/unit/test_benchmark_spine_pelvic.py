"""The decision rule of benchmarks/spine_pelvic.py (docs/decisions/spine-pelvic-spill.md) on made-up figures."""

from __future__ import annotations

from typing import Any

from benchmarks.spine_pelvic import decide


def _variant(fp: float, dice: float, names: list[str]) -> dict[str, Any]:
    return {"fp": {"fp_mm3": fp}, "body_dice": [dice, dice], "names": names}


def _case(a_fp: float = 5.0, b_dice: float = 0.8, b_names: list[str] | None = None) -> dict[str, Any]:
    names = ["L4", "L5", "S1"]
    return {
        "case": "vb2-x",
        "set": "vb2",
        "held_out": True,
        "committed": _variant(10.0, 0.8, names),
        "A": _variant(a_fp, 0.8, names),
        "B": _variant(1.0, b_dice, b_names or names),
    }


def _refs(b_extra: float = 0.0) -> list[dict[str, Any]]:
    return [{"reference": "panoptica", "extra_removed_A_mm3": 0.0, "extra_removed_B_mm3": b_extra}]


def _naming(b_right: bool = True) -> list[dict[str, Any]]:
    return [{"seed": 1, "committed": {"L5": [True, False]}, "A": {"L5": [True, False]}, "B": {"L5": [b_right, False]}}]


def test_b_is_preferred_when_both_pass():
    d = decide([_case()], None, _refs(), _naming())
    assert d["A"]["passes"] and d["B"]["passes"] and d["chosen"] == "B"


def test_each_condition_can_fail_a_candidate():
    assert decide([_case()], None, _refs(b_extra=48.0), _naming())["chosen"] == "A"  # 4: reference voxels removed
    assert decide([_case(b_dice=0.79)], None, _refs(), _naming())["chosen"] == "A"  # 1: Dice drop 0.01
    assert decide([_case()], None, _refs(), _naming(b_right=False))["chosen"] == "A"  # 5: a name turned wrong
    d = decide([_case(a_fp=11.0, b_dice=0.7)], None, _refs(), _naming())  # 2: A raises the FP volume
    assert not d["A"]["checks"]["2_fp_not_up"] and d["chosen"] == "committed"


def test_renamed_real_cases_are_listed():
    d = decide([_case(b_names=["L3", "L4", "L5"])], None, _refs(), _naming())
    assert d["B"]["renamed_cases"] == ["vb2-x"] and d["A"]["renamed_cases"] == []
