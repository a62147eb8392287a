"""QC pictures read without the manual: label placement, naming sentence, legend, captions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurospine.drawing import spread_labels
from neurospine.spine import outputs as O


def test_spread_labels_never_overlap_and_keep_order():
    wanted = [100.0, 103.0, 104.0, 106.0, 300.0, 5.0]
    ys = spread_labels(wanted, 12.0, 0.0, 400.0)
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    placed = [ys[i] for i in order]
    assert all(b - a >= 12.0 - 1e-9 for a, b in itertools.pairwise(placed))
    assert ys[4] == 300.0 and ys[5] == 5.0  # labels with room stay where they were wanted
    assert min(ys) >= 0.0 and max(ys) <= 400.0 - 12.0


def test_spread_labels_stay_inside_when_crowded_at_the_bottom():
    ys = spread_labels([95.0, 96.0, 97.0], 10.0, 0.0, 100.0)
    assert max(ys) <= 90.0 and sorted(ys) == [70.0, 80.0, 90.0]


@pytest.mark.parametrize(
    ("anchor", "words"),
    [
        ("S1", "counted up from the sacrum, five lumbar vertebrae assumed (no C2 found to check the count); conf"),
        ("C2", "counted down from C2"),
        ("positional", "No sacrum or C2 visible: levels are a guess"),
        ("none", "No vertebra found, so nothing is named"),
    ],
)
def test_naming_sentence_in_plain_words(anchor, words):
    assert words in O.naming_sentence(anchor, 0.95)


def test_naming_sentence_asks_for_a_check_below_the_confident_line():
    sure = O.naming_sentence("S1", 0.95, "one sign of a transitional segment")
    assert sure.startswith("Levels counted up from the sacrum, five lumbar") and not O.needs_checking(sure)
    assert sure.endswith("; confidence 0.95.")
    doubt = O.naming_sentence("S1", 0.5, "the top body looks like C2 but the count misses it")
    assert "names marked ? may be one or more levels off" in doubt and "looks like C2" in doubt
    assert O.needs_checking(doubt) and O.needs_checking(O.naming_sentence("positional", 0.3))
    assert O.needs_checking(O.naming_sentence("S1+C2", 0.75))
    assert O.needs_checking(O.naming_sentence("none", 0.0, "no vertebra found"))
    l6 = O.naming_sentence("S1+C2", 0.85, "L6 or T13", uncertain=True)  # a confident count with uncertain levels
    assert O.needs_checking(l6) and "names marked ? are uncertain (L6 or T13)" in l6


def test_the_doubt_quoted_is_the_uncertain_note_or_the_latest_flag():
    from neurospine.spine.api import naming_doubt
    from neurospine.spine.naming import Naming

    flags = ["one sign of a transitional segment; names kept", "the count from the sacrum misses C2"]
    assert naming_doubt(Naming([20], "S1", 0.5, list(flags))) == flags[-1]
    assert naming_doubt(Naming([20], "S1", 0.85, list(flags), [20], "L6 or T13")) == "L6 or T13"


def test_snapshot_names_mark_uncertain_levels():
    from types import SimpleNamespace

    from neurospine.spine.api import snapshot_names
    from neurospine.spine.naming import Naming

    names = {20: "L1", 21: "L2", 24: "L5", 26: "S1"}
    sure = Naming([20, 21, 24], "S1", 0.95, uncertain_levels=[24])
    assert snapshot_names(SimpleNamespace(naming=sure, names=names)) == {20: "L1", 21: "L2", 24: "L5?", 26: "S1"}
    doubt = Naming([20, 21, 24], "S1", 0.5)
    assert all(v.endswith("?") for v in snapshot_names(SimpleNamespace(naming=doubt, names=names)).values())


def test_level_names_sit_on_the_body_not_the_leftmost_pixel():
    lab = np.zeros((60, 80), dtype=np.int32)
    lab[10:30, 10:30] = 20  # body of L1 (anterior = left)
    lab[18:22, 30:70] = 20  # its posterior elements, far to the right
    lab[2, 2] = 20  # a stray voxel at the top left
    body = np.zeros_like(lab, dtype=bool)
    body[10:30, 10:30] = True
    ((name, x, y, on_slice),) = O._label_anchors(lab, body, {20: "L1"}, {})
    assert name == "L1" and on_slice and abs(x - 19.5) < 0.01 and abs(y - 19.5) < 0.01
    ((_n, x2, _y2, _on),) = O._label_anchors(lab, None, {20: "L1"}, {})  # without a body map: largest piece
    assert x2 > 20  # the stray voxel does not pull the name away


def test_snapshot_has_header_legend_and_square_panels(tmp_path):
    from PIL import Image

    img = np.zeros((40, 120, 20), dtype=np.float32)  # PIR
    inst = np.zeros(img.shape, dtype=np.int16)
    for n, level in enumerate((20, 21, 22)):
        inst[5:25, 10 + 30 * n : 30 + 30 * n, 5:15] = level
        inst[5:25, 31 + 30 * n : 39 + 30 * n, 5:15] = 100 + level
        img[inst > 0] = 1.0
    path = O.write_snapshot(
        tmp_path / "s.png",
        img,
        inst,
        (1.0, 1.0, 1.0),
        {20: "L1", 21: "L2", 22: "L3"},
        "case",
        naming_line=O.naming_sentence("positional", 0.3),
    )
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    assert rgb.shape[0] > O.SNAPSHOT_MIN_PX + 60  # header and legend around the 640 px panels
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 180) & (rgb[..., 2] < 120)
    assert yellow[:40].any()  # the 'levels are a guess' line is drawn in yellow at the top


def test_cord_tile_captions_name_slice_and_level():
    from neurospine.cord.qc import _tile_captions
    from neurospine.io import Volume

    ras = Volume(np.zeros((4, 4, 10), dtype=np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    caps = _tile_captions(ras, [(3, (0.0, 0.0)), (9, (0.0, 0.0))], [(6.0, 7, "C3"), (8.0, 6, "")])
    assert caps == ["sl 7 C3", "z +18 mm"]  # slice 3 is 6 mm up (row found); 18 mm has no measured slice


def test_cord_tile_captions_on_an_oblique_slab_use_the_cord_centre():
    from neurospine.cord.qc import _axial_tiles, _tile_captions
    from neurospine.io import Volume

    aff = np.diag([0.5, 0.5, 3.0, 1.0])
    aff[2, 1] = 0.06  # gmc-9418-like tilt: a slice's height grows 0.06 mm per voxel along j
    ras = Volume(np.zeros((40, 200, 6), dtype=np.float32), aff)
    cord = np.zeros((40, 200, 6), bool)
    cord[18:22, 148:152] = True  # the cord far from the corner: its slices lie 9 mm above their corners
    labels = [(float((aff @ [19.5, 149.5, k, 1.0])[2]), k, "") for k in range(6)]
    tiles = _axial_tiles(np.asarray(ras.data), cord, np.zeros_like(cord), ras.spacing_mm)
    captions = _tile_captions(ras, [(k, centre) for k, _t, centre in tiles], labels)[::-1]  # tiles: superior first
    assert captions == [f"sl {k}" for k in range(6)]
