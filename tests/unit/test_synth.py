"""Synthetic spine engine: API, determinism, anatomy invariants, contrast order, partial volume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neurospine.labels import SEMANTIC_OUTPUT_VALUES, VERTEBRA_IDS
from neurospine.synth import SynthConfig, generate_case, generate_slice2d
from neurospine.synth.checks import anatomy_problems

SMALL = SynthConfig(levels="L1-S1", fov_mm=(40.0, 140.0, None))


def test_api_shapes_dtypes_and_geometry() -> None:
    case = generate_case(3, SMALL)
    vols = [case.image, case.semantic, case.instance, case.cord_soft, case.canal_soft, case.tissue]
    for v in vols:
        assert v.shape == case.image.shape
        assert v.same_grid(case.image)
        assert v.axcodes == ("R", "A", "S")
    assert case.image.data.dtype == np.float32
    assert case.semantic.data.dtype == np.uint8
    assert case.instance.data.dtype == np.int16
    assert case.cord_soft.data.dtype == np.float32
    assert np.allclose(case.image.spacing_mm, (1.0, 1.0, 1.0))
    assert np.isfinite(case.image.data).all()
    for key in ("levels_present", "contrast", "seed", "spacing_mm", "orientation", "plane"):
        assert key in case.meta
    # L1..L5 and the sacrum are all there for levels="L1-S1"
    assert {"L1", "L2", "L3", "L4", "L5", "S1"} <= set(case.meta["levels_present"])


def test_deterministic_from_seed() -> None:
    a = generate_case(11, SMALL)
    b = generate_case(11, SMALL)
    c = generate_case(12, SMALL)
    assert np.array_equal(a.image.data, b.image.data)
    assert np.array_equal(a.instance.data, b.instance.data)
    assert np.array_equal(a.cord_soft.data, b.cord_soft.data)
    assert a.meta == b.meta
    assert not np.array_equal(a.semantic.data.shape, c.semantic.data.shape) or not np.array_equal(
        a.semantic.data, c.semantic.data
    )


@pytest.mark.parametrize("seed", range(8))
def test_anatomy_invariants_random_levels(seed: int) -> None:
    cfg = SynthConfig(
        levels="random",
        contrast="any",
        p_fracture=0.2,
        p_scoliosis=0.5,
        p_l6=0.2,
        p_t13=0.2,
        p_t11=0.2,
        fov_mm=(48.0, 150.0, None),
    )
    case = generate_case(seed, cfg)
    assert anatomy_problems(case) == []
    assert set(np.unique(case.semantic.data).tolist()) <= {0, *SEMANTIC_OUTPUT_VALUES}


def test_instance_scheme_and_level_names() -> None:
    """Disc 100+X and endplates 200+X sit below vertebra X and above the next vertebra (X = the one above)."""
    case = generate_case(5, SynthConfig(levels="T10-L3", fov_mm=(40.0, 140.0, None)))
    ins, sem = case.instance.data, case.semantic.data
    assert {"T11", "T12", "L1", "L2"} <= set(case.meta["levels_present"])
    order = [VERTEBRA_IDS[name] for name in case.meta["spine_levels"]]

    def height(mask: np.ndarray) -> float:  # mean superior coordinate (axis 2 is S in RAS)
        return float(np.nonzero(mask)[2].mean())

    corpus_z = {v: height((ins == v) & (sem == 49)) for v in order if ((ins == v) & (sem == 49)).any()}
    checked = 0
    for value in sorted(int(v) for v in np.unique(ins) if v > 100):
        above = value % 100
        below = order[order.index(above) + 1]
        assert (value > 200) == bool(np.all(sem[ins == value] == 62)), value
        if above in corpus_z and below in corpus_z:
            assert corpus_z[below] < height(ins == value) < corpus_z[above], f"{value} is not below vertebra {above}"
            checked += 1
    assert checked >= 6  # at least three discs and three endplate pairs between two whole bodies


def _tissue_mean(case, sem_value: int) -> float:  # type: ignore[no-untyped-def]
    from scipy import ndimage

    m = ndimage.binary_erosion(case.semantic.data == sem_value, iterations=1)
    return float(case.image.data[m].mean())


def _csf_mean(case) -> float:  # type: ignore[no-untyped-def]
    from neurospine.synth.tissues import Tissue

    m = case.tissue.data == Tissue.CSF
    return float(case.image.data[m].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrast_order_t2w_t1w(seed: int) -> None:
    cfg_t2 = SynthConfig(levels="T10-L2", contrast="t2w", fov_mm=(40.0, 140.0, None))
    cfg_t1 = SynthConfig(levels="T10-L2", contrast="t1w", fov_mm=(40.0, 140.0, None))
    t2 = generate_case(seed, cfg_t2)
    t1 = generate_case(seed, cfg_t1)
    assert _csf_mean(t2) > _tissue_mean(t2, 60) + 0.1  # CSF brighter than cord on T2w
    assert _csf_mean(t2) > _tissue_mean(t2, 49)  # and brighter than the vertebral bodies
    assert _csf_mean(t1) < _tissue_mean(t1, 60) - 0.05  # CSF darker than cord on T1w
    assert _csf_mean(t1) < _tissue_mean(t1, 49)


def test_ct_is_in_hounsfield_units() -> None:
    case = generate_case(4, SynthConfig(levels="L1-L4", contrast="ct", fov_mm=(40.0, 140.0, None)))
    img = case.image.data
    assert img.min() >= -1024 and img.max() <= 3071
    assert _tissue_mean(case, 49) > 150  # bone
    assert abs(_csf_mean(case)) < 60  # water-like CSF


def test_sagittal_thick_slices_geometry_and_partial_volume() -> None:
    cfg = SynthConfig(levels="C2-T2", plane="sagittal", spacing_mm=(0.8, 0.8, 4.0), fov_mm=(40.0, 120.0, None))
    case = generate_case(7, cfg)
    assert case.image.plane == "sagittal"
    assert np.allclose(case.image.spacing_mm, (4.0, 0.8, 0.8))
    assert case.meta["slice_subsamples"] >= 3
    soft = case.cord_soft.data
    partial = (soft > 0.05) & (soft < 0.95)
    assert partial.sum() > 0.2 * (soft >= 0.95).sum()  # thick slices make much partial volume


def test_soft_cord_volume_matches_finer_rasterisation() -> None:
    """Partial-volume cord volume at 1 mm equals the hard cord volume rendered at 0.5 mm (same seed)."""
    base = dict(levels="C3-T1", fov_mm=(32.0, 80.0, 100.0), pose_deg=0.0)
    coarse = generate_case(21, SynthConfig(spacing_mm=(1.0, 1.0, 1.0), **base))  # type: ignore[arg-type]
    fine = generate_case(21, SynthConfig(spacing_mm=(0.5, 0.5, 0.5), **base))  # type: ignore[arg-type]
    v_soft = float(coarse.cord_soft.data.sum()) * coarse.cord_soft.voxel_volume_mm3
    v_fine = float((fine.semantic.data == 60).sum()) * fine.semantic.voxel_volume_mm3
    v_hard = float((coarse.semantic.data == 60).sum()) * coarse.semantic.voxel_volume_mm3
    assert v_fine > 1000
    assert abs(v_soft - v_fine) / v_fine < 0.03
    assert abs(v_soft - v_fine) <= abs(v_hard - v_fine) + 0.01 * v_fine


def test_axial_plane_and_bad_config() -> None:
    case = generate_case(
        2,
        SynthConfig(
            levels="C4-C6", plane="axial", spacing_mm=(0.6, 0.6, 5.0), fov_mm=(90.0, 90.0, None), contrast="t2sw"
        ),
    )
    assert case.image.plane == "axial"
    assert (case.semantic.data == 60).any()
    with pytest.raises(ValueError):
        SynthConfig(plane="oblique")
    with pytest.raises(ValueError):
        generate_case(0, SynthConfig(levels="X9-L1"))
    with pytest.raises(ValueError):
        generate_case(0, SynthConfig(contrast="pd"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": "L1"}, "unknown levels"),
        ({"levels": "L1-S2"}, "unknown levels"),
        ({"levels": "C2-T3-L1"}, "unknown levels"),
        ({"contrast": "pd"}, "unknown contrast"),
        ({"fov_mm": (64.0, -1.0, None)}, "fov_mm"),
        ({"spacing_mm": (1.0, 0.0, 1.0)}, "spacing_mm"),
        ({"cauda": "braided"}, "unknown cauda"),
    ],
)
def test_config_rejects_bad_values_before_generating(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SynthConfig(**kwargs)  # type: ignore[arg-type]


def test_level_specs_accept_names_aliases_and_variants() -> None:
    from neurospine.synth.case import parse_levels

    assert parse_levels("random") is None
    assert parse_levels("lumbar") == ("T12", "S1")
    assert parse_levels(" l1-sacrum ") == ("L1", "S1")
    assert parse_levels("T13-L6") == ("T13", "L6")


def test_variants_change_the_level_list() -> None:
    l6 = generate_case(1, SynthConfig(levels="T12-S1", p_l6=1.0, p_t13=0.0, p_t11=0.0, fov_mm=(30.0, 120.0, None)))
    assert "L6" in l6.meta["levels_present"]
    t13 = generate_case(1, SynthConfig(levels="T11-L2", p_l6=0.0, p_t13=1.0, p_t11=0.0, fov_mm=(30.0, 120.0, None)))
    assert "T13" in t13.meta["levels_present"]
    t11 = generate_case(1, SynthConfig(levels="T10-L2", p_l6=0.0, p_t13=0.0, p_t11=1.0, fov_mm=(30.0, 120.0, None)))
    assert "T12" not in t11.meta["levels_present"] and "T11" in t11.meta["levels_present"]


@pytest.mark.parametrize(
    ("modality", "view"), [("mr", "lateral"), ("ct", "lateral"), ("xray", "lateral"), ("xray", "ap")]
)
def test_slice2d(modality: str, view: str) -> None:
    img, bodies, discs, spacing, meta = generate_slice2d(5, modality, view=view)
    assert img.ndim == 2 and img.shape == bodies.shape == discs.shape
    assert img.dtype == np.float32 and np.isfinite(img).all()
    body_ids = [int(v) for v in np.unique(bodies) if v]
    disc_ids = [int(v) for v in np.unique(discs) if v]
    assert len(body_ids) >= 3 and all(0 < v < 100 and v != 26 for v in body_ids)
    assert len(disc_ids) >= 2 and all(100 < v < 200 for v in disc_ids)
    assert not np.any((bodies > 0) & (discs > 0))
    assert min(spacing) > 0 and meta["modality2d"] == modality
    again = generate_slice2d(5, modality, view=view)
    assert np.array_equal(again[0], img)


def test_random_plane_draws_acquisitions() -> None:
    planes = set()
    for seed in range(6):
        case = generate_case(seed, SynthConfig(levels="C5-T1", plane="random", fov_mm=(60.0, 100.0, 60.0)))
        planes.add(case.meta["plane"])
        assert case.image.plane == case.meta["plane"]
        assert anatomy_problems(case) == []
    assert len(planes) >= 2


@pytest.mark.slow
def test_anatomy_invariants_many_seeds() -> None:
    failures = {}
    for seed in range(100, 160):
        cfg = SynthConfig(
            levels="random", contrast="any", p_fracture=0.15, p_scoliosis=0.4, deformity=float(seed % 3) / 2
        )
        probs = anatomy_problems(generate_case(seed, cfg))
        if probs:
            failures[seed] = probs
    assert failures == {}


def test_soft_cord_csa_matches_the_true_csa_in_meta() -> None:
    """Angle-corrected axial cord area from ``cord_soft`` equals the analytic CSA recorded in meta."""
    cfg = SynthConfig(
        levels="C3-C6", spacing_mm=(0.8, 0.8, 0.8), fov_mm=(40.0, 60.0, None), pose_deg=0.0, p_scoliosis=0.0
    )
    case = generate_case(8, cfg)
    soft = case.cord_soft.data
    sp = case.cord_soft.spacing_mm
    ins, sem = case.instance.data, case.semantic.data
    checked = 0
    for name, csa in case.meta["cord_csa_mm2"].items():
        vid = {"C3": 3, "C4": 4, "C5": 5, "C6": 6}.get(name)
        if vid is None:
            continue
        zs = np.nonzero(((ins == vid) & (sem == 49)).any(axis=(0, 1)))[0]
        z = int(zs.mean())
        cents = []
        for dz in (-6, 6):
            w = soft[:, :, z + dz]
            tot = w.sum()
            ii, jj = np.indices(w.shape)
            cents.append(((ii * w).sum() / tot * sp[0], (jj * w).sum() / tot * sp[1]))
        dx = (cents[1][0] - cents[0][0]) / (12 * sp[2])
        dy = (cents[1][1] - cents[0][1]) / (12 * sp[2])
        cos = 1.0 / np.sqrt(1.0 + dx * dx + dy * dy)
        area = float(soft[:, :, z].sum()) * sp[0] * sp[1] * cos
        assert abs(area - csa) / csa < 0.05, f"{name}: {area:.1f} vs {csa:.1f} mm2"
        checked += 1
    assert checked >= 3


def test_spine_model_is_the_geometry_of_the_case_and_levels_follow_mid_discs():
    from neurospine.synth import SynthConfig, generate_case
    from neurospine.synth.case import spine_model, vertebral_level_at

    cfg = SynthConfig(levels="T9-L2", plane="isotropic", spacing_mm=(2.0, 2.0, 2.0))
    model = spine_model(11, cfg)
    assert dict(model.angles_deg) == generate_case(11, cfg).meta["curvature_deg"]
    a, b = model.levels[3], model.levels[4]
    assert vertebral_level_at(model, (a.s_top + a.s_bot) / 2) == a.name
    assert vertebral_level_at(model, a.s_bot + a.disc_h / 2 - 0.01) == a.name  # upper half of the disc below
    assert vertebral_level_at(model, a.s_bot + a.disc_h / 2 + 0.01) == b.name  # lower half
    assert vertebral_level_at(model, model.levels[0].s_top - 50.0) == ""


def test_whole_spine_field_of_view_follows_the_curve():
    """A curved whole column (seed 97002: its centreline moves 90 mm front to back and 53 mm sideways) leaves the
    default 64 x 160 mm slab; with the R-L and A-P extents left to the engine every body stays inside the image
    and the bodies and discs keep clear of the side faces, every label of the front and back faces."""
    base = dict(levels="whole", plane="sagittal", spacing_mm=(2.0, 2.0, 4.0), contrast="t2w")
    fixed = generate_case(97002, SynthConfig(**base))  # type: ignore[arg-type]
    fitted = generate_case(97002, SynthConfig(**base, fov_mm=(None, None, None)))  # type: ignore[arg-type]
    assert fixed.image.data.shape[:2] == (16, 80)  # the default slab: 64 / 4 and 160 / 2 voxels

    def bodies(case: object) -> set[int]:
        sem, inst = np.asarray(case.semantic.data), np.asarray(case.instance.data)  # type: ignore[attr-defined]
        return {int(v) for v in np.unique(inst[(sem == 49) & (inst < 30)]) if v}

    assert len(bodies(fitted)) > len(bodies(fixed))
    assert bodies(fitted) >= set(range(2, 25))  # C2..L5 all present
    sem = np.asarray(fitted.semantic.data)
    for axis, mask in ((0, np.isin(sem, (49, 100))), (1, sem > 0)):  # R-L faces: bodies, discs; A-P faces: all
        assert not np.take(mask, 0, axis=axis).any() and not np.take(mask, -1, axis=axis).any()


def test_clumped_cauda_lies_dorsally_below_the_conus_and_keeps_the_canal_label() -> None:
    from neurospine.synth.tissues import Tissue

    cfg = SynthConfig(levels="L2-S1", spacing_mm=(0.8, 0.8, 4.0), plane="axial", cauda="clumped")
    case = generate_case(5002, cfg)
    tissue = np.asarray(case.tissue.data)
    nerve = tissue == Tissue.NERVE
    assert nerve.sum() > 50
    assert float(np.asarray(case.cord_soft.data)[nerve].max()) == 0.0  # the roots are never cord
    assert set(np.unique(np.asarray(case.semantic.data)[nerve]).tolist()) == {61}
    # dorsal: on each slice the roots sit behind the middle of the canal (RAS: axis 1 runs anteriorly)
    canal = np.asarray(case.canal_soft.data) > 0.5
    k = int(np.argmax(nerve.sum(axis=(0, 1))))
    assert np.nonzero(nerve[:, :, k])[1].mean() < np.nonzero(canal[:, :, k])[1].mean()
    roots = generate_case(5002, dataclasses.replace(cfg, cauda="roots"))
    assert int((np.asarray(roots.tissue.data) == Tissue.NERVE).sum()) != int(nerve.sum())
