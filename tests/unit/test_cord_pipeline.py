"""Cord pipeline orchestration: geometry on the input grid, ONNX models, the no-cord error path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from neurospine.cord.api import output_paths, run_file
from neurospine.cord.crop import block_mean, fine_factors, sample_window
from neurospine.errors import NoStructureFoundError
from neurospine.io import Volume, load_volume, save_volume
from tests.conftest import make_affine

RADIUS_MM = 4.0


def cylinder_image(
    axcodes: str, spacing_mm: tuple[float, float, float], shape: tuple[int, int, int], seed: int = 0
) -> tuple[Volume, np.ndarray]:
    """Bright vertical (superior-inferior) cylinder of radius 4 mm in noise; returns image and truth."""
    aff = make_affine(spacing_mm, axcodes)
    aff[:3, 3] = -(aff[:3, :3] @ (np.array(shape) / 2.0)) + np.array([3.0, -2.0, 0.0])
    world = np.indices(shape).reshape(3, -1).T @ aff[:3, :3].T + aff[:3, 3]
    r = np.hypot(world[:, 0] - 1.0, world[:, 1] - 0.0).reshape(shape)
    truth = r <= RADIUS_MM
    rng = np.random.default_rng(seed)
    img = 100.0 * truth + rng.normal(20.0, 3.0, shape)
    return Volume(img.astype(np.float32), aff, "phantom.nii.gz"), truth


def threshold_predictor(batch: np.ndarray) -> np.ndarray:
    """Stand-in network: bright = cord (channel 0) and canal (channel 1)."""
    p = 1.0 / (1.0 + np.exp(-(batch - 0.5) * 20.0))
    return np.concatenate([p, p], axis=1).astype(np.float32)


def _save(vol: Volume, tmp_path: Path, name: str) -> Path:
    return save_volume(vol, tmp_path / name)


@pytest.mark.parametrize(
    ("axcodes", "spacing", "shape"),
    [
        ("LAS", (0.5, 0.5, 5.0), (80, 70, 8)),
        ("PSR", (1.0, 1.0, 3.0), (40, 50, 12)),
        ("RAS", (0.9, 0.9, 0.9), (30, 30, 40)),
    ],
)
def test_outputs_on_input_grid_and_cord_found(tmp_path, axcodes, spacing, shape):
    vol, truth = cylinder_image(axcodes, spacing, shape)
    path = _save(vol, tmp_path, "img.nii.gz")
    res = run_file(path, tmp_path / "out", predictor=threshold_predictor)
    ref = load_volume(path)
    for key in ("cord_soft", "cord_mask", "canal_mask"):
        out = load_volume(res.outputs[key], check_intensity=False)
        assert out.same_grid(ref), key
    soft = load_volume(res.outputs["cord_soft"], check_intensity=False).data
    assert soft.dtype == np.float32 and soft.min() >= 0.0 and soft.max() <= 1.0
    mask = load_volume(res.outputs["cord_mask"], check_intensity=False).data > 0
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.85, dice
    rows = list(csv.DictReader(res.outputs["csa"].open()))
    assert rows and set(rows[0]) >= {
        "slice",
        "position_mm",
        "csa_mm2",
        "angle_deg",
        "ap_mm",
        "rl_mm",
        "eccentricity",
        "level",
    }
    csa = np.median([float(r["csa_mm2"]) for r in rows])
    assert csa == pytest.approx(math.pi * RADIUS_MM**2, rel=0.12)
    assert res.outputs["qc"].is_file() and res.outputs["qc"].stat().st_size > 1000


def test_levels_mask_gives_per_level_rows(tmp_path):
    vol, truth = cylinder_image("LAS", (0.5, 0.5, 3.0), (80, 70, 12))
    lev = np.zeros(vol.shape, np.uint8)
    lev[truth] = 3
    lev[:, :, 6:][truth[:, :, 6:]] = 2  # superior half = C2 (LAS: axis 2 is superior)
    img_p = _save(vol, tmp_path, "img.nii.gz")
    lev_p = save_volume(vol.with_data(lev), tmp_path / "levels.nii.gz", is_label=True)
    res = run_file(img_p, tmp_path / "out", levels=lev_p, predictor=threshold_predictor)
    per = list(csv.DictReader(res.outputs["csa_perlevel"].open()))
    assert [r["level"] for r in per] == ["C2", "C3", "all"]
    assert {r["levels_source"] for r in per} == {"mask"}
    assert "csa_mm2_C2" in res.measures and res.measures["levels_source"] == "mask"
    rows = list(csv.DictReader(res.outputs["csa"].open()))
    assert {r["below_conus_level"] for r in rows} == {"0"} and per[-1]["n_slices"] == str(len(rows))
    assert res.measures["n_slices_below_conus_level"] == 0 and not res.warnings


def test_lumbar_slices_below_the_conus_are_flagged_and_left_out(tmp_path):
    vol, truth = cylinder_image("LAS", (0.5, 0.5, 3.0), (80, 70, 12))
    lev = np.zeros(vol.shape, np.uint8)
    for k0, level_id in ((0, 23), (3, 22), (6, 21), (9, 20)):  # L4, L3, L2, L1 (LAS: axis 2 is superior)
        lev[:, :, k0 : k0 + 3][truth[:, :, k0 : k0 + 3]] = level_id
    img_p = _save(vol, tmp_path, "img.nii.gz")
    lev_p = save_volume(vol.with_data(lev), tmp_path / "levels.nii.gz", is_label=True)
    res = run_file(img_p, tmp_path / "out", levels=lev_p, predictor=threshold_predictor)
    rows = list(csv.DictReader(res.outputs["csa"].open()))
    assert {(r["level"], r["below_conus_level"]) for r in rows} == {("L1", "0"), ("L2", "0"), ("L3", "1"), ("L4", "1")}
    per = list(csv.DictReader(res.outputs["csa_perlevel"].open()))
    assert [r["level"] for r in per] == ["L1", "L2", "all"] and per[-1]["n_slices"] == "6"
    assert "csa_mm2_L3" not in res.measures and res.measures["n_slices_below_conus_level"] == 6
    kept = [float(r["csa_mm2"]) for r in rows if r["below_conus_level"] == "0"]
    assert res.measures["csa_mm2_mean"] == pytest.approx(np.mean(kept), abs=1e-3)
    conus = [w for w in res.warnings if "conus" in w]
    assert len(conus) == 1 and "6 of 12" in conus[0] and "L3/L4" in conus[0]
    assert str(img_p) in conus[0] and "img_csa.csv" in conus[0] and "QC image" in conus[0]


def test_segvert_levels_mask_is_projected_along_the_cord(tmp_path):
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 3.0), (80, 70, 12))
    world = np.indices(vol.shape).reshape(3, -1).T @ vol.affine[:3, :3].T + vol.affine[:3, 3]
    x, y = world[:, 0].reshape(vol.shape), world[:, 1].reshape(vol.shape)
    column = (y >= 8.0) & (y <= 15.0) & (np.abs(x - 1.0) <= 6.0)  # bodies in front of the cord (cord at y = 0)
    vert = np.zeros(vol.shape, np.int16)
    vert[:, :, 7:][column[:, :, 7:]] = 2  # C2 body: slices 7-11 (LAS: axis 2 is superior)
    vert[:, :, 5:7][column[:, :, 5:7]] = 102  # C2-C3 disc: slices 5-6
    vert[:, :, :5][column[:, :, :5]] = 3  # C3 body: slices 0-4
    img_p = _save(vol, tmp_path, "img.nii.gz")
    lev_p = save_volume(vol.with_data(vert), tmp_path / "seg-vert.nii.gz", is_label=True)
    res = run_file(img_p, tmp_path / "out", levels=lev_p, predictor=threshold_predictor)
    rows = list(csv.DictReader(res.outputs["csa"].open()))
    assert [r["level"] for r in rows] == ["C3"] * 6 + ["C2"] * 6  # mid-disc boundary between slices 5 and 6
    assert res.measures["levels_source"] == "mask" and res.extra["levels"]["spans_mm"]


def test_no_cord_raises_and_writes_qc(tmp_path):
    rng = np.random.default_rng(1)
    vol = Volume(rng.normal(10, 1, (40, 40, 6)).astype(np.float32), make_affine((0.5, 0.5, 5.0), "LAS"))
    path = _save(vol, tmp_path, "empty.nii.gz")

    def nothing(batch: np.ndarray) -> np.ndarray:
        return np.zeros((batch.shape[0], 2, *batch.shape[2:]), np.float32)

    with pytest.raises(NoStructureFoundError, match="no spinal cord found"):
        run_file(path, tmp_path / "out", predictor=nothing)
    paths = output_paths("empty", tmp_path / "out")
    assert paths["qc"].is_file()
    assert not paths["csa"].exists()


def test_fine_window_block_mean_round_trip():
    rng = np.random.default_rng(0)
    sl = rng.random((30, 20)).astype(np.float32)
    f = fine_factors((0.84, 1.5), 0.5)
    assert f == (2, 3)
    fine = sample_window(sl, (5, 4), (10, 8), f)
    assert fine.shape == (20, 24)
    back = block_mean(fine[None], f)[0]
    # linear upsampling then block averaging is a mild smoothing of the native window
    assert np.corrcoef(back.ravel(), sl[5:15, 4:12].ravel())[0, 1] > 0.9


def _write_onnx_model(folder: Path, *, random: bool, nothing: bool = False) -> None:
    """Tiny ONNX "network": random 3x3 conv, an intensity threshold, or (``nothing``) all background."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from neurospine.models.registry import sha256_of

    rng = np.random.default_rng(0)
    if random:
        w = rng.normal(0, 1, (2, 1, 3, 3)).astype(np.float32)
        b = rng.normal(0, 1, (2,)).astype(np.float32)
    else:  # logits = 20 * (x - 0.5) on both channels
        w = np.zeros((2, 1, 3, 3), np.float32)
        w[:, 0, 1, 1] = 0.0 if nothing else 20.0
        b = np.full(2, -10.0, np.float32)
    node = helper.make_node("Conv", ["input", "w", "b"], ["output"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 2, "h", "w"])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "cord_softseg.onnx"))
    card = {
        "name": "cord_softseg",
        "version": "0.0.1-test",
        "task": "cord",
        "file": "cord_softseg.onnx",
        "sha256": sha256_of(folder / "cord_softseg.onnx"),
        "inputs": {"fine_spacing_mm": 0.5, "coarse_spacing_mm": 1.0, "window_mm": 40.0, "threshold": 0.5},
    }
    (folder / "cord_softseg.json").write_text(json.dumps(card))


def test_onnx_model_through_the_registry(tmp_path, monkeypatch):
    models = tmp_path / "models"
    _write_onnx_model(models, random=False)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(models))
    vol, truth = cylinder_image("PSR", (1.0, 1.0, 3.0), (40, 50, 12))
    res = run_file(_save(vol, tmp_path, "img.nii.gz"), tmp_path / "out", threads=1, auto_levels=False)
    assert res.models == {"cord_softseg": "0.0.1-test"}
    mask = load_volume(res.outputs["cord_mask"], check_intensity=False).data > 0
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.85


def test_random_onnx_model_runs_or_reports_no_cord(tmp_path, monkeypatch):
    models = tmp_path / "models"
    _write_onnx_model(models, random=True)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(models))
    vol, _ = cylinder_image("LAS", (0.5, 0.5, 5.0), (80, 70, 6))
    try:
        res = run_file(_save(vol, tmp_path, "img.nii.gz"), tmp_path / "out", threads=1)
    except NoStructureFoundError:
        assert output_paths("img", tmp_path / "out")["qc"].is_file()
    else:
        assert load_volume(res.outputs["cord_soft"], check_intensity=False).shape == vol.shape


def test_no_crop_mode_matches_crop_mode(tmp_path):
    vol, truth = cylinder_image("LAS", (0.5, 0.5, 5.0), (80, 70, 6))
    path = _save(vol, tmp_path, "img.nii.gz")
    masks = []
    for window in (36.0, 0.0):
        res = run_file(path, tmp_path / f"out{window}", predictor=threshold_predictor, window_mm=window)
        masks.append(load_volume(res.outputs["cord_mask"], check_intensity=False).data > 0)
    assert (masks[0] == masks[1]).mean() > 0.999
    assert 2 * (masks[1] & truth).sum() / (masks[1].sum() + truth.sum()) > 0.85


def test_implausible_csa_flag_quotes_the_reported_mean(tmp_path, monkeypatch):
    """The CSA flag quotes the mean CSA the run reports (the phantom's 50 mm2 made implausible by a narrowed range)."""
    from neurospine.plausibility import cord as plaus

    monkeypatch.setattr(plaus, "CORD_CSA_MM2", (60.0, 180.0))
    vol, _ = cylinder_image("RAS", (0.9, 0.9, 0.9), (30, 30, 40))
    res = run_file(_save(vol, tmp_path, "img.nii.gz"), tmp_path / "out", predictor=threshold_predictor)
    mean = res.measures["csa_mm2_mean"]
    assert mean is not None and mean < 60.0
    assert f"is {mean:.0f} mm2 in cross-section" in str(res.measures["plausibility"])
