"""The spine CSV: body centroids as in the ctd JSON, and the naming flag on rows whose name is uncertain."""

from __future__ import annotations

import csv
from pathlib import Path

from neurospine.labels import VERTEBRA_IDS, vertebra_name
from neurospine.spine.api import uncertain_notes
from neurospine.spine.naming import EXTRA_VERTEBRA_FLAG, BodyInfo, name_levels
from neurospine.spine.outputs import StructureRow, write_table

C2 = BodyInfo(34.0, 15.0, 0.0, 7000.0)
CERVICAL = BodyInfo(14.0, 16.0, 0.0, 4000.0)
THORACIC = BodyInfo(22.0, 27.0, 0.0, 18000.0)
LUMBAR = BodyInfo(28.0, 35.0, 0.0, 30000.0)
COLUMN_24 = [C2] + [CERVICAL] * 5 + [THORACIC] * 12 + [LUMBAR] * 6


def _rows(levels: list[int]) -> list[StructureRow]:
    rows = []
    for k, lvl in enumerate(levels):
        whole = (0.0, -10.0 * k, 5.0)
        rows.append(
            StructureRow(lvl, vertebra_name(lvl), "vertebra", 1000.0, whole, (1.0, 2.0, 3.0), (9.0, -10.0 * k, 5.0))
        )
        rows.append(
            StructureRow(100 + lvl, f"disc_{vertebra_name(lvl)}", "disc", 300.0, (0.0, -10.0 * k - 5, 5.0), None)
        )
    rows.append(StructureRow(26, "S1", "sacrum", 40000.0, (0.0, -300.0, 0.0), (1.0, 1.0, 1.0), (0.0, -300.0, 0.0)))
    return rows


def _read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_24_vertebrae_csv_flags_the_levels_that_depend_on_l6_or_t13(tmp_path: Path) -> None:
    nm = name_levels(COLUMN_24, sacrum_mm3=40000, sacrum_below=True)
    path = write_table(tmp_path / "x_spine.csv", _rows(nm.levels), positional=False, notes=uncertain_notes(nm))
    rows = {r["level"]: r for r in _read(path)}
    lumbar = [f"L{i}" for i in range(1, 7)]
    for level in lumbar + [f"disc_{name}" for name in lumbar]:
        assert rows[level]["naming_flag"] == "1" and rows[level]["naming_note"] == EXTRA_VERTEBRA_FLAG
    for level in ("C2", "T12", "disc_T12", "S1"):
        assert rows[level]["naming_flag"] == "0" and rows[level]["naming_note"] == ""
    assert all(r["naming"] == "anchored" for r in rows.values())


def test_24_vertebrae_named_t13_by_the_user_are_not_flagged(tmp_path: Path) -> None:
    nm = name_levels(COLUMN_24, sacrum_mm3=40000, sacrum_below=True, extra_vertebra="t13")
    assert VERTEBRA_IDS["T13"] in nm.levels
    path = write_table(tmp_path / "x_spine.csv", _rows(nm.levels), positional=False, notes=uncertain_notes(nm))
    rows = _read(path)
    assert "T13" in [r["level"] for r in rows] and all(r["naming_flag"] == "0" for r in rows)


def test_csv_centroid_is_the_vertebral_body_as_in_the_ctd_json(tmp_path: Path) -> None:
    no_body = StructureRow(21, "L2", "vertebra", 900.0, (4.0, 5.0, 6.0), None)
    path = write_table(tmp_path / "x_spine.csv", [*_rows([20]), no_body], positional=True)
    rows = {r["level"]: r for r in _read(path)}
    assert (rows["L1"]["centroid_x_mm"], rows["L1"]["centroid_of"]) == ("9.00", "vertebral body")
    assert rows["disc_L1"]["centroid_of"] == "disc" and rows["S1"]["centroid_of"] == "sacrum"
    assert (rows["L2"]["centroid_x_mm"], rows["L2"]["centroid_of"]) == ("4.00", "whole vertebra")
    assert all(r["naming_flag"] == "1" and r["naming_note"].startswith("positional") for r in rows.values())


def test_structures_cut_by_the_field_of_view_name_the_sides_they_reach(tmp_path: Path) -> None:
    """A vertebra reaching the image's top layer is cut there (its volume is partial); its body may still lie
    inside. Side names follow the affine (here LPS: +i points left, +j posterior, +k superior)."""
    import numpy as np

    from neurospine.io import Volume
    from neurospine.spine.outputs import field_edges, structure_rows

    inst = np.zeros((20, 30, 40), dtype=np.int16)
    inst[5:15, 5:25, 30:40] = 20  # L1 reaches the last k layer: superior
    inst[0:20, 10:20, 10:20] = 21  # L2 spans i: both left and right
    inst[5:15, 5:25, 1:8] = 22  # L3 inside
    bodies = np.where(np.isin(inst, (20, 21, 22)), inst, 0).astype(np.int16)
    bodies[:, :, 36:] = 0  # L1's body stops short of the top
    bodies[:3] = 0
    bodies[17:] = 0  # L2's body lies inside too
    bodies[5:15, 5:25, 0] = 22  # L3's lower endplate (not its own id) reaches the bottom layer
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    ref = Volume(np.zeros(inst.shape, np.float32), affine)
    assert ref.axcodes == ("L", "P", "S")
    assert field_edges(inst, ref.axcodes) == {20: "superior", 21: "right;left"}
    semantic = np.where(inst > 0, 49, 0).astype(np.uint8)
    rows = {r.level: r for r in structure_rows(inst, semantic, ref, bodies)}
    assert (rows["L1"].field_edge, rows["L1"].body_field_edge) == ("superior", "")
    assert (rows["L2"].field_edge, rows["L2"].body_field_edge) == ("right;left", "")
    assert (rows["L3"].field_edge, rows["L3"].body_field_edge) == ("inferior", "inferior")
    out = _read(write_table(tmp_path / "t.csv", list(rows.values()), positional=False))
    assert [(r["level"], r["field_edge"], r["body_field_edge"]) for r in out] == [
        ("L1", "superior", ""),
        ("L2", "right;left", ""),
        ("L3", "inferior", "inferior"),
    ]
