"""Painted real label maps, the training pack and the worker/device training path of `neurospine train spine`."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.io import Volume
from neurospine.spine import classes as C
from neurospine.spine import data as D


def _toy_semantic() -> Volume:
    """A small PIR SPINEPS map: two bodies with a disc between, arch, spinous process, canal and cord."""
    sem = np.zeros((40, 60, 12), dtype=np.uint8)  # P, I, R
    sem[5:20, 5:20, 2:10] = 49
    sem[5:20, 20:25, 2:10] = 100
    sem[5:20, 25:40, 2:10] = 49
    sem[20:26, 5:40, 4:8] = 61
    sem[21:25, 5:40, 5:7] = 60
    sem[26:30, 5:40, 3:9] = 41
    sem[30:38, 8:16, 5:7] = 42
    aff = np.diag([-1.0, -1.0, 2.0, 1.0])  # P, I, R axes
    return Volume(sem, aff)


def test_labelmap_case_paints_every_labelled_class_on_the_model_grid() -> None:
    from neurospine.spine.train_sources import LabelMapSource, labelmap_case

    src = LabelMapSource("toy", _toy_semantic())
    case = labelmap_case(src, 3, np.random.default_rng(0))
    assert case.kind == "full" and case.image.dtype == np.uint8 and case.image.shape == case.target.shape
    assert case.spacing_mm[:2] == (1.0, 1.0) and 2.0 <= case.spacing_mm[2] <= 4.0
    present = set(np.unique(case.target).tolist())
    assert {C.CORPUS, C.DISC, C.CANAL, C.ARCUS} <= present and D.IGNORE not in present
    # the image is drawn from the labels: bone and disc differ in mean intensity
    body = case.image[case.target == C.CORPUS].mean()
    disc = case.image[case.target == C.DISC].mean()
    assert abs(float(body) - float(disc)) > 1.0


def _toy_ct(sem: Volume) -> Volume:
    """A CT-like image of the toy map: bone 300 HU, disc 90, canal 10, soft tissue 40, with noise."""
    hu = np.full(sem.shape, 40.0, dtype=np.float32)
    data = np.asarray(sem.data)
    hu[np.isin(data, (41, 42, 49))] = 300.0
    hu[data == 100] = 90.0
    hu[np.isin(data, (60, 61))] = 10.0
    hu += np.random.default_rng(2).normal(0, 15, sem.shape).astype(np.float32)
    return sem.with_data(hu)


def test_ct_lut_maps_hounsfield_units_into_unit_range() -> None:
    from neurospine.spine.train_sources import CT_LUT_HU, ct_lut

    hu = np.linspace(-1200, 2000, 500, dtype=np.float32)
    for seed in range(5):
        out = ct_lut(hu, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.min() >= 0.0 and out.max() <= 1.0
        assert np.all(out[hu <= CT_LUT_HU[0]] == out[0]) and np.all(out[hu >= CT_LUT_HU[-1]] == out[-1])


def test_ct_image_case_leaves_cord_and_canal_unsupervised() -> None:
    from neurospine.spine import train_sources as T

    sem = _toy_semantic()
    src = T.LabelMapSource("toy-image", sem, _toy_ct(sem))
    rng = np.random.default_rng(0)
    kinds = set()
    for seed in range(12):
        case = T.labelmap_case(src, seed, rng)
        present = set(np.unique(case.target).tolist())
        assert {C.CORPUS, C.DISC, C.ARCUS} <= present
        kinds.add(D.IGNORE in present)  # image cases ignore cord/canal, painted ones label them
        if D.IGNORE in present:
            assert C.CANAL not in present and C.CORD not in present
    assert kinds == {True, False}


def _two_arches(gap_vox: int) -> tuple[np.ndarray, np.ndarray]:
    """Two arcus blocks one above the other (PIR axis 1) with ``gap_vox`` voxels of soft tissue (50 HU) between;
    fat (-100 HU) beside the gap, air elsewhere."""
    sem = np.zeros((20, 40, 10), dtype=np.uint8)
    hu = np.full(sem.shape, -1000.0, dtype=np.float32)
    top = 10
    sem[5:10, top - 6 : top, 2:8] = 41
    sem[5:10, top + gap_vox : top + gap_vox + 6, 2:8] = 41
    hu[sem > 0] = 700.0
    hu[5:10, top : top + gap_vox, 2:6] = 50.0
    hu[5:10, top : top + gap_vox, 6:8] = -100.0
    return hu, sem


def test_ligament_mask_takes_soft_tissue_between_two_posterior_elements() -> None:
    from neurospine.spine.train_sources import ligament_mask

    hu, sem = _two_arches(4)
    mask = ligament_mask(hu, sem, (1.0, 1.0, 1.0))
    assert mask[5:10, 10:14, 2:6].all()  # the soft-tissue gap
    assert not mask[5:10, 10:14, 6:8].any()  # fat in the gap stays as it is
    assert not mask[sem > 0].any()  # never a labelled voxel
    assert mask.sum() == 5 * 4 * 4
    # a 16 mm gap: no voxel has an element within 6 mm on both sides
    hu, sem = _two_arches(16)
    assert not ligament_mask(hu, sem, (1.0, 1.0, 1.0)).any()
    # the reach is in mm: at 2 mm rows (reach 3 rows) only the middle two rows of the 4-row gap reach both sides
    hu, sem = _two_arches(4)
    rows = ligament_mask(hu, sem, (1.0, 2.0, 1.0))[5:10, 10:14, 2:6].all(axis=(0, 2))
    assert rows.tolist() == [False, True, True, False]


def test_dark_ligaments_paint_the_gap_dark_in_ct_image_cases() -> None:
    from neurospine.spine import train_sources as T

    hu, sem = _two_arches(4)
    dark = T.ligament_mask(hu, sem, (1.0, 1.0, 1.0))
    bright_without = 0
    for seed in range(6):
        plain = T._mr_like(hu, (1.0, 1.0, 1.0), np.random.default_rng(seed))
        painted = T._mr_like(hu, (1.0, 1.0, 1.0), np.random.default_rng(seed), dark)
        assert painted[dark].mean() < 0.25 * float(painted.max())
        bright_without += int(plain[dark].mean() >= 0.25 * float(plain.max()))
    assert bright_without > 0  # the random look-up table alone does not make them dark


def test_pack_round_trip_keeps_cases_and_sources(tmp_path) -> None:
    from neurospine.spine.train_sources import LabelMapSource, crop_case, read_pack, write_pack

    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (20, 30, 40), dtype=np.uint8)  # R, P, I
    target = np.full((20, 30, 40), D.IGNORE, dtype=np.uint8)
    target[:, :, 10:30] = 1
    target[8:12, 10:20, 15:25] = 0
    case = D.TrainCase("vb3-01", "body", image, target, (1.0, 1.0, 1.0))
    src = LabelMapSource("toy", _toy_semantic())
    path = write_pack(tmp_path / "pack.xz", [case], [src])
    real, sources = read_pack(path)
    want = crop_case(case)
    assert real[0].name == "vb3-01" and real[0].kind == "body" and real[0].spacing_mm == (1.0, 1.0, 2.0)
    assert np.array_equal(real[0].image, want.image) and np.array_equal(real[0].target, want.target)
    # every labelled voxel survives the crop (every other sagittal slice: slices 8 and 10 of 8-11)
    assert (real[0].target == 0).sum() == (target[[8, 10]] == 0).sum()
    assert sources[0].name == "toy" and np.array_equal(sources[0].semantic.data, src.semantic.data)
    assert np.allclose(sources[0].semantic.affine, src.semantic.affine)
    assert sources[0].image is None


def test_pack_keeps_the_image_of_a_ct_source(tmp_path) -> None:
    from neurospine.spine.train_sources import LabelMapSource, read_pack, write_pack

    sem = _toy_semantic()
    src = LabelMapSource("toy-image", sem, _toy_ct(sem))
    _, sources = read_pack(write_pack(tmp_path / "pack.xz", [], [src]))
    assert sources[0].image is not None and np.array_equal(sources[0].image.data, np.asarray(src.image.data))


def test_fast_path_trains_and_exports(tmp_path, monkeypatch) -> None:
    """``--workers``/``--device`` path: two steps from a pack, on the CPU, export and card notes."""
    pytest.importorskip("torch")
    import json

    from neurospine.spine import training as T
    from neurospine.spine.train_sources import LabelMapSource, write_pack

    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (12, 64, 64), dtype=np.uint8)
    target = np.ones((12, 64, 64), dtype=np.uint8)
    target[4:8, 20:40, 20:40] = 0
    pack = write_pack(
        tmp_path / "pack.xz",
        [D.TrainCase("vb3-01", "body", image, target, (1.0, 1.0, 1.0))],
        [LabelMapSource("toy", _toy_semantic())],
    )
    out = tmp_path / "run"
    argv = ["--pack", str(pack), "--out", str(out), "--steps", "2", "--batch", "2", "--patch", "32"]
    argv += ["--synth-fraction", "0", "--labelmap-fraction", "0.5", "--labelmap-pool", "1", "--no-calibrate"]
    argv += ["--unet-base", "8", "--device", "cpu"]
    assert T.main(argv) == 0
    card = json.loads((out / "spine_semantic.json").read_text())
    notes = json.loads(card["notes"])
    assert notes["steps"] == 2 and notes["unet"]["base"] == 8 and notes["labelmap_fraction"] == 0.5
    assert "--unet-base 8" in card["train_command"] and "--labelmap-fraction 0.5" in card["train_command"]
    assert (out / "spine_semantic.onnx").stat().st_size > 0


def test_real_ct_sources_carry_their_image_and_discs(shared_data) -> None:
    from neurospine.spine.train_sources import load_labelmap_sources

    ct = {s.name: s for s in load_labelmap_sources(shared_data) if s.image is not None}
    assert set(ct) == {"tpt-ct-image", "verse014-image"}
    for src in ct.values():
        assert src.image is not None and src.image.same_grid(src.semantic)
        values = set(np.unique(np.asarray(src.semantic.data)).tolist())
        assert {42, 49, 100} <= values  # spinous processes, bodies, and discs (derived where the map has none)
        bone = np.isin(np.asarray(src.semantic.data), (41, 42, 49))
        assert float(np.median(np.asarray(src.image.data)[bone])) > 100.0  # labels sit on bone (HU)


def test_dark_ligaments_reach_the_rendering_of_ct_image_cases(monkeypatch) -> None:
    """``labelmap_case`` (and the pool that draws it) passes the ligament mask to the MR-like rendering only when
    asked, and only for cases rendered from the CT image."""
    from neurospine.spine import train_sources as T

    hu, sem = _two_arches(4)
    aff = np.diag([-1.0, -1.0, 1.0, 1.0])
    src = T.LabelMapSource("arches-image", Volume(sem, aff), Volume(hu, aff))
    seen: list[object] = []
    real = T._mr_like

    def spy(hu_, spacing, rng, dark=None):  # type: ignore[no-untyped-def]
        seen.append(dark)
        return real(hu_, spacing, rng, dark)

    monkeypatch.setattr(T, "_mr_like", spy)
    monkeypatch.setattr(T, "CT_IMAGE_PROBABILITY", 1.0)
    T.labelmap_case(src, 1, np.random.default_rng(0))
    T.PaintPool([src], 7, [], 1.0).fill(1, np.random.default_rng(0))
    assert seen[0] is None
    assert isinstance(seen[1], np.ndarray) and seen[1].any()
