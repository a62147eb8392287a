"""Endplates as the disc-facing layer of each body (neurospine.spine.endplates)."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.io import Volume
from neurospine.spine import classes as C
from neurospine.spine.endplates import ENDPLATE_GAP_MM, ENDPLATE_MM, endplate_thickness_mm, relabel_endplates
from neurospine.spine.instances import InstanceResult
from neurospine.spine.preprocess import to_model_grid

SP = (1.0, 1.0, 1.0)


def _column(rows: list[int]) -> np.ndarray:
    """A (3, len(rows), 2) PIR map whose every column holds ``rows`` (class per row, head to foot)."""
    col = np.asarray(rows, dtype=np.uint8)
    return np.broadcast_to(col[None, :, None], (3, col.size, 2)).copy()


def endplate_layer(
    cls: np.ndarray,
    spacing: tuple[float, float, float],
    thickness_mm: float = ENDPLATE_MM,
    gap_mm: float = ENDPLATE_GAP_MM,
) -> np.ndarray:
    """The class map after :func:`relabel_endplates` when one vertebra holds every body voxel (the input untouched)."""
    out = cls.copy()
    body = np.isin(out, (C.CORPUS, C.ENDPLATE)).astype(np.int16)
    relabel_endplates(out, InstanceResult(body.copy(), body), spacing, thickness_mm, gap_mm)
    return out


def _rows(cls: np.ndarray) -> list[int]:
    assert (cls == cls[:1, :, :1]).all()  # every column the same
    return [int(v) for v in cls[0, :, 0]]


B, D, E, G = C.CORPUS, C.DISC, C.ENDPLATE, C.BG


def test_body_faces_on_both_sides_of_a_disc_become_endplate() -> None:
    out = endplate_layer(_column([G, B, B, B, B, D, D, B, B, B, B, G]), SP)
    assert _rows(out) == [G, B, B, B, E, D, D, E, B, B, B, G]


def test_thickness_counts_rows_and_network_endplates_away_from_a_disc_become_corpus() -> None:
    out = endplate_layer(_column([E, B, B, B, B, B, D, B, B, B, B, B, E]), SP, thickness_mm=2.0)
    # the ends at the image edge face no disc: corpus; the disc-facing 2 rows: endplate
    assert _rows(out) == [B, B, B, B, E, E, D, E, E, B, B, B, B]


def test_a_gap_up_to_the_limit_still_faces_the_disc_but_a_wider_one_does_not() -> None:
    # 3 rows of background above the disc (the limit at 1 mm), 4 below it
    out = endplate_layer(_column([B, B, B, G, G, G, D, D, G, G, G, G, B, B, B]), SP, gap_mm=3.0)
    assert _rows(out) == [B, B, E, G, G, G, D, D, G, G, G, G, B, B, B]


def test_a_body_piece_in_the_gap_blocks_the_view_of_the_disc() -> None:
    out = endplate_layer(_column([B, B, B, B, G, B, B, B, B, D, G]), SP)
    assert _rows(out) == [B, B, B, B, G, B, B, B, E, D, G]


def test_layer_is_at_most_a_third_of_a_thin_run_and_columns_are_independent() -> None:
    cls = np.zeros((2, 14, 1), np.uint8)
    cls[0, :, 0] = [B] * 9 + [D, D] + [B, B, B]  # a 9-row body over a disc, a 3-row piece under it
    cls[1, :, 0] = [G] * 9 + [D, D] + [G] * 3  # a column with only the disc
    out = endplate_layer(cls, SP, thickness_mm=3.0)
    assert [int(v) for v in out[0, :, 0]] == [B] * 6 + [E] * 3 + [D, D] + [E, B, B]
    assert np.array_equal(out[1], cls[1])


def test_body_without_a_disc_has_no_endplate_and_other_classes_are_untouched() -> None:
    cls = _column([G, B, B, B, C.CANAL, C.ARCUS, B, B, G])
    assert _rows(endplate_layer(cls, SP)) == _rows(cls)


def test_body_voxels_are_unchanged_and_empty_maps_pass() -> None:
    rng = np.random.default_rng(4)
    cls = rng.choice([G, B, E, D, C.ARCUS], size=(6, 30, 5)).astype(np.uint8)
    out = endplate_layer(cls, (1.0, 0.5, 3.0))
    body = np.isin(cls, (B, E))
    assert np.array_equal(np.isin(out, (B, E)), body)
    assert np.array_equal(out[~body], cls[~body])
    assert (out == E).any() and (out == B).any()
    empty = np.zeros((4, 5, 6), np.uint8)
    assert np.array_equal(endplate_layer(empty, SP), empty)


def test_pipeline_layer_is_one_input_voxel_but_at_least_one_mm() -> None:
    assert endplate_thickness_mm(0.59) == 1.0
    assert endplate_thickness_mm(1.5) == 1.5


@pytest.mark.parametrize("spacing", [(0.5, 0.7, 3.3), (1.5, 1.5, 1.5)])
def test_model_grid_reports_the_input_spacing_in_pir_order(spacing: tuple[float, float, float]) -> None:
    # RAS input: axis 0 right-left (slices), 1 anterior-posterior, 2 inferior-superior
    data = np.random.default_rng(0).random((12, 40, 50)).astype(np.float32)
    affine = np.diag([spacing[2], spacing[0], spacing[1], 1.0])
    vol = Volume(data, affine, "x.nii.gz")
    grid = to_model_grid(vol)
    assert grid.input_spacing_mm == pytest.approx((spacing[0], spacing[1], spacing[2]))


def test_relabel_after_instances_keeps_bodies_and_ties_faces_to_the_disc_they_face() -> None:
    cls = _column([G, B, B, B, D, D, B, B, B, D, B, B, G])
    body = np.zeros(cls.shape, np.int16)
    body[:, 1:4] = 1
    body[:, 6:9] = 2
    body[:, 10:12] = 3
    inst_map = np.where(body > 0, body, 0).astype(np.int16)
    inst_map[:, 4:6] = 101
    inst_map[:, 9] = 102
    inst = InstanceResult(inst_map, body)
    relabel_endplates(cls, inst, SP)
    assert _rows(cls) == [G, B, B, E, D, D, E, B, E, D, E, B, G]
    assert [int(v) for v in inst.instances[0, :, 0]] == [0, 1, 1, 201, 101, 101, 201, 2, 202, 102, 202, 3, 0]


def test_relabel_gives_a_row_facing_discs_on_both_sides_the_lower_face_id() -> None:
    cls = _column([B, B, B, D, B, D, B, B, B])
    body = np.zeros(cls.shape, np.int16)
    body[:, 0:3], body[:, 4], body[:, 6:9] = 1, 2, 3
    inst = InstanceResult(np.where(body > 0, body, 0).astype(np.int16), body)
    relabel_endplates(cls, inst, SP)
    # the one-row body 2 is both faces; its lower face (id 202, the disc below it) wins
    assert [int(v) for v in inst.instances[0, :, 0]] == [1, 1, 201, 0, 202, 0, 202, 3, 3]


def test_relabel_leaves_body_voxels_no_vertebra_holds() -> None:
    cls = _column([B, B, D, B, B])
    inst = InstanceResult(np.zeros(cls.shape, np.int16), np.zeros(cls.shape, np.int16))
    relabel_endplates(cls, inst, SP)
    assert _rows(cls) == [B, B, D, B, B]
    assert not inst.instances.any()
