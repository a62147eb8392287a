"""Every value a tool writes appears in ``neurospine labels`` with the right name, in every export format.

The written values come from the tools: the spine, cord and slice2d CLIs run on phantoms with tiny models,
and the code paths that produce the masks (``spine.semantic.to_spineps_values`` on every network class on
both sides of the midline, ``spine.api.relabel`` on every level naming can give, ``slice2d.instances.
build_instances`` on a whole column). The right name of an instance value is the name the tool itself
reports for it (spine CSV/centroid JSON, slice2d heights CSV); that of a semantic value follows from the
network class that writes it (:data:`CLASS_MEANING`, the one oracle written here).
"""

from __future__ import annotations

import csv
import json
import re

import nibabel as nib
import numpy as np
import pytest

from neurospine.cli.main import main
from neurospine.labels import CRANIOCAUDAL_ORDER, ENDPLATE_OFFSET, VERTEBRA_IDS, instance_name
from neurospine.spine import classes as C

pytest.importorskip("onnx")

FORMATS = ("itksnap", "slicer", "json")

#: meaning of each network class (spine.classes.NET_CLASSES) -> the name its value must carry
CLASS_MEANING = {
    "arcus": "arcus_vertebrae",
    "spinous": "spinous_process",
    "costal": "costal_process",
    "sup_articular": "superior_articular",
    "inf_articular": "inferior_articular",
    "corpus": "vertebra_corpus",
    "cord": "spinal_cord",
    "canal": "spinal_canal",
    "endplate": "endplate",
    "disc": "intervertebral_disc",
    "sacrum": "sacrum",
}


def exported(fmt: str, kind: str, capsys) -> dict[int, str]:
    """``neurospine labels --format fmt --kind kind`` parsed back into {value: name} (background left out)."""
    assert main(["labels", "--format", fmt, "--kind", kind]) == 0
    text = capsys.readouterr().out
    if fmt == "json":
        return {int(r["value"]): str(r["name"]) for r in json.loads(text)["labels"]}
    rows: dict[int, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if fmt == "itksnap":
            m = re.fullmatch(r"\s*(\d+)(\s+\d+){6}\s+\"([^\"]*)\"", line)
            assert m, line
            value, name = int(m.group(1)), m.group(3)
        else:
            parts = line.split()
            assert len(parts) == 6, line
            value, name = int(parts[0]), parts[1]
        assert value not in rows, f"{fmt} {kind}: value {value} listed twice"
        rows[value] = name
    rows.pop(0, None)
    return rows


def assert_named(written: dict[int, str], kind: str, capsys) -> None:
    for fmt in FORMATS:
        table = exported(fmt, kind, capsys)
        missing = sorted(set(written) - set(table))
        assert not missing, f"{fmt} --kind {kind} lacks written values {missing}"
        wrong = {v: (table[v], n) for v, n in written.items() if table[v] != n}
        assert not wrong, f"{fmt} --kind {kind}: value: (table name, name of what is written) {wrong}"


# ---------------------------------------------------------------- spine semantic


def _class_map_both_sides() -> np.ndarray:
    """PIR class map: each network class in its own band of rows, across the whole R axis; a canal column at
    R = 10 (the midline) in the front P column."""
    n_r = 21
    cls = np.zeros((6, 3 * C.N_CLASSES, n_r), dtype=np.uint8)
    for k in range(C.N_CLASSES):
        cls[1:, 3 * k : 3 * k + 3, :] = k
    cls[0, :, n_r // 2] = C.CANAL
    return cls


def semantic_written() -> dict[int, str]:
    """Values ``to_spineps_values`` writes for every class and side, named by the class's meaning."""
    from neurospine.spine.semantic import to_spineps_values

    cls = _class_map_both_sides()
    values = to_spineps_values(cls)
    mid = cls.shape[2] // 2
    out: dict[int, str] = {}
    for k, (name, _) in enumerate(C.NET_CLASSES):
        if k == C.BG:
            continue
        band = values[1:, 3 * k : 3 * k + 3, :]
        sides = {"_left": band[:, :, :mid], "_right": band[:, :, mid + 1 :]} if k in C.LR_CLASSES else {"": band}
        for suffix, part in sides.items():
            got = set(np.unique(part).tolist())
            assert len(got) == 1, f"class {name}{suffix} written as several values {got}"
            value = got.pop()
            assert out.get(value, CLASS_MEANING[name] + suffix) == CLASS_MEANING[name] + suffix
            out[value] = CLASS_MEANING[name] + suffix
    return out


def test_every_semantic_value_is_named_by_its_class(capsys):
    written = semantic_written()
    assert len(written) == 14  # 11 classes, 3 of them split left/right
    assert written[49] == "vertebra_corpus"  # issue 18: ITK-SNAP/Slicer showed every body as "corpus border"
    assert_named(written, "semantic", capsys)


def test_labels_cli_out_file_matches_stdout(tmp_path, capsys):
    assert main(["labels", "--format", "slicer", "--out", str(tmp_path / "spine.ctbl")]) == 0
    assert main(["labels", "--format", "slicer"]) == 0
    assert (tmp_path / "spine.ctbl").read_text() == capsys.readouterr().out
    assert "49 vertebra_corpus " in (tmp_path / "spine.ctbl").read_text()


# ---------------------------------------------------------------- spine instances


def instance_written() -> dict[int, str]:
    """Values ``relabel`` writes for every level naming can give, named as the spine CSV names them."""
    from neurospine.io import Volume
    from neurospine.spine import outputs as O
    from neurospine.spine.api import relabel
    from neurospine.spine.instances import SACRUM_TMP, InstanceResult
    from neurospine.spine.naming import Naming

    levels = list(CRANIOCAUDAL_ORDER)
    n = len(levels)
    temp = [*range(1, n + 1), *(100 + k for k in range(0, n + 1)), *(200 + k for k in range(0, n + 1)), SACRUM_TMP]
    inst = np.zeros((len(temp), 2, 2), dtype=np.int16)
    for i, t in enumerate(temp):
        inst[i, 0, 0] = t
    result = InstanceResult(inst, np.zeros_like(inst), sacrum_voxels=1)
    result.vertebrae.extend([None] * n)  # type: ignore[list-item]  # relabel only counts them
    seg_vert, _ = relabel(result, Naming(levels, "S1", 1.0))
    ref = Volume(np.zeros(inst.shape, np.float32), np.eye(4))
    rows = O.structure_rows(seg_vert, np.zeros(inst.shape, np.uint8), ref)
    return {row.label: row.level for row in rows}


def test_every_instance_value_is_named_as_the_spine_tables_name_it(capsys):
    written = instance_written()
    assert {VERTEBRA_IDS["C1"], VERTEBRA_IDS["T13"], VERTEBRA_IDS["L6"], 26, 120, 228} <= set(written)
    assert_named(written, "instance", capsys)


@pytest.fixture
def spine_threshold_model(tmp_path, monkeypatch):
    from tests.unit.test_spine_support import write_threshold_model

    folder = tmp_path / "models"
    write_threshold_model(folder)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(folder))
    return folder


def test_spine_cli_masks_on_a_phantom_are_named(tmp_path, spine_threshold_model, capsys):
    from neurospine.io import save_volume
    from tests.unit.test_spine_support import lumbar_phantom

    img = save_volume(lumbar_phantom(), tmp_path / "sub-01_T2w.nii.gz")
    assert main(["spine", str(img), "--out", str(tmp_path / "o"), "--threads", "1", "--no-snapshot"]) == 0
    capsys.readouterr()
    sem = np.asarray(nib.load(str(tmp_path / "o" / "sub-01_T2w_seg-spine_msk.nii.gz")).dataobj)
    sem_values = set(np.unique(sem).tolist()) - {0}
    code_path = semantic_written()
    assert 49 in sem_values and sem_values <= set(code_path)
    assert_named({v: code_path[v] for v in sem_values}, "semantic", capsys)
    vert = np.asarray(nib.load(str(tmp_path / "o" / "sub-01_T2w_seg-vert_msk.nii.gz")).dataobj)
    vert_values = set(np.unique(vert).tolist()) - {0}
    with (tmp_path / "o" / "sub-01_T2w_spine.csv").open(newline="") as fh:
        named = {int(r["label"]): r["level"] for r in csv.DictReader(fh)}
    # the table lists vertebrae, the sacrum and discs; endplates (200+X) are in the mask only, named by level
    endplates = {v for v in vert_values if v >= ENDPLATE_OFFSET}
    assert endplates and vert_values - endplates == set(named)
    assert_named({v: instance_name(v) for v in endplates}, "instance", capsys)
    ctd = json.loads((tmp_path / "o" / "sub-01_T2w_seg-spine_ctd.json").read_text())
    assert all(named[e["label"]] == e["level"] for e in ctd[1:])
    assert_named(named, "instance", capsys)


# ---------------------------------------------------------------- cord


def test_cord_cli_masks_are_named(tmp_path, monkeypatch, capsys):
    from neurospine.io import save_volume
    from tests.unit.test_cord_pipeline import _write_onnx_model, cylinder_image

    _write_onnx_model(tmp_path / "models", random=False)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 4.0), (80, 70, 8))
    img = save_volume(vol, tmp_path / "sub-01_T2w.nii.gz")
    assert main(["cord", str(img), "--out", str(tmp_path / "o"), "--threads", "1", "--no-auto-levels"]) == 0
    capsys.readouterr()
    semantic = exported("json", "semantic", capsys)
    for suffix, kind, value in (("_seg-cord_msk", "cord", C.NET_CLASSES[C.CORD][1]), ("_seg-canal_msk", "canal", 61)):
        mask = np.asarray(nib.load(str(tmp_path / "o" / f"sub-01_T2w{suffix}.nii.gz")).dataobj)
        written = set(np.unique(mask).tolist()) - {0}
        assert written == {1}
        # a binary cord (canal) mask names its 1 as the semantic table names the cord (canal)
        assert_named(dict.fromkeys(written, semantic[value]), kind, capsys)


# ---------------------------------------------------------------- slice2d


@pytest.mark.parametrize("anchor", [None, "L5"])
def test_slice2d_cli_mask_is_named(tmp_path, monkeypatch, capsys, anchor):
    from PIL import Image

    from neurospine.slice2d.tiny_model import phantom_plane, write_tiny_model

    write_tiny_model(tmp_path / "models")
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(tmp_path / "models"))
    img, _ = phantom_plane()
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "ph.png")
    args = ["slice2d", str(tmp_path / "ph.png"), "--out", str(tmp_path / "o"), "--threads", "1", "--json"]
    assert main(args + (["--lowest-level", anchor] if anchor else [])) == 0
    naming = json.loads(capsys.readouterr().out)["measures"].get("naming")
    mask = np.asarray(nib.load(str(tmp_path / "o" / "ph_slice2d_msk.nii.gz")).dataobj)
    with (tmp_path / "o" / "ph_heights.csv").open(newline="") as fh:
        reported = {int(r["label"]): r["name"] for r in csv.DictReader(fh) if r["label"]}
    assert set(np.unique(mask).tolist()) - {0} == set(reported) and len(reported) >= 5
    kind = "instance" if anchor else "positional"
    if naming is not None:
        assert (naming == "anchored") == bool(anchor)
    assert_named(_as_table_names(reported, kind), kind, capsys)


def _as_table_names(reported: dict[int, str], kind: str) -> dict[int, str]:
    """slice2d names an anchored disc by both neighbours (``L4-L5``), the tables by the level above
    (``disc_L4``, as the spine tables do): the same disc."""
    out = {}
    for value, name in reported.items():
        if kind == "instance" and value > 100:
            upper = name.split("-")[0]
            assert VERTEBRA_IDS[upper] == value - 100, (value, name)
            name = f"disc_{upper}"
        out[value] = name
    return out


def _column(n_bodies: int) -> tuple[np.ndarray, np.ndarray]:
    """A straight column of ``n_bodies`` bodies (12 x 10 px) with a disc (4 px) above each: 0/1/2 labels."""
    h = 4 + n_bodies * 16 + 8
    labels = np.zeros((h, 40), dtype=np.uint8)
    row = 4
    for _ in range(n_bodies):
        labels[row : row + 4, 14:26] = 2
        labels[row + 4 : row + 16, 14:26] = 1
        row += 16
    probs = np.stack([(labels == k).astype(np.float32) for k in range(3)])
    return labels, probs


@pytest.mark.parametrize("lowest", [None, "S5", "L5"])
def test_slice2d_instances_of_a_whole_column_are_named(capsys, lowest):
    """The largest ids slice2d can write: 29 bodies (C1..S5 anchored at S5; positional ids 2..30 without an
    anchor, or with one that leaves too few levels above it, L5) with a disc above each."""
    from neurospine.slice2d.instances import build_instances

    labels, probs = _column(29)
    inst = build_instances(labels, probs, (1.0, 1.0), lowest_level=lowest)
    assert len(inst.bodies) == 29
    reported = {i.value: i.name for i in (*inst.bodies, *inst.discs)}
    assert set(np.unique(inst.label_map).tolist()) - {0} == set(reported)
    kind = "positional" if inst.naming == "positional" else "instance"
    assert (kind == "instance") == (lowest == "S5")
    assert_named(_as_table_names(reported, kind), kind, capsys)
