"""Groups and calibrated values of the cord's estimated-level confidence (neurospine.cord.levelconfidence)."""

from __future__ import annotations

import pytest

from neurospine.cord import levelconfidence as lc


@pytest.mark.parametrize(
    ("source", "anchor", "raw", "from_discs", "method", "group"),
    [
        ("estimated", "S1", 0.95, False, "", "anchored"),
        ("estimated", "C2", 0.85, False, "", "anchored"),
        ("estimated", "S1+C2", 0.95, False, "", "anchored"),
        ("estimated", "last-disc", 0.85, False, "", "anchored"),
        ("estimated", "last-disc+C2", 0.99, False, "", "anchored"),
        ("estimated", "S1", 0.5, False, "", "anchored-doubt"),
        ("estimated", "positional", 0.2, False, "top-c2", "positional-top-c2"),
        ("estimated", "positional", 0.2, False, "top-c2-lumbar", "positional-top-c2-lumbar"),
        ("estimated", "positional", 0.25, False, "depth-profile", "positional-depth-profile"),
        ("estimated", "positional", 0.3, False, "lowest-l5", "positional-lowest-l5"),
        ("estimated", "positional", 0.2, True, "", "disc-fallback"),
        ("mask", "", None, False, "", "none"),
        ("none", "", None, False, "", "none"),
    ],
)
def test_level_group(source: str, anchor: str, raw: float | None, from_discs: bool, method: str, group: str) -> None:
    assert lc.level_group(source, anchor, raw, from_discs, method) == group
    assert group == "none" or group in lc.GROUPS


def test_calibrated_confidence_uses_the_table_or_caps_the_raw_value(monkeypatch) -> None:
    monkeypatch.setattr(lc, "CALIBRATED", {"anchored": 0.8})
    assert lc.calibrated_confidence("anchored", 0.95) == 0.8
    assert lc.calibrated_confidence("anchored-doubt", 0.7) == lc.UNCALIBRATED_CAP
    assert lc.calibrated_confidence("positional-top-c2", 0.2) == 0.2
    assert lc.calibrated_confidence("none", None) is None


def test_shipped_table_is_probabilities_for_known_groups() -> None:
    assert set(lc.CALIBRATED) <= set(lc.GROUPS)
    assert all(0.0 <= v <= 1.0 for v in lc.CALIBRATED.values())


def test_shipped_table_is_the_committed_calibration() -> None:
    """The values printed are the ones the committed benchmark record measured on its calibration half."""
    import json
    from pathlib import Path

    record = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "cord_levels.json"
    calibration = json.loads(record.read_text(encoding="utf-8"))["calibration"]
    measured = {g: c["calibrated"] for g, c in calibration.items() if c["calibrated"] is not None}
    assert measured == lc.CALIBRATED


def test_describe_says_whether_the_value_was_measured(monkeypatch) -> None:
    monkeypatch.setattr(lc, "CALIBRATED", {"anchored": 0.9})
    assert "named right on calibration scans" in lc.describe("anchored", 0.9)
    assert "too few calibration scans" in lc.describe("disc-fallback", 0.2)
