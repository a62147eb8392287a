"""Plausibility rules on synthetic inputs: verdicts, header/intensity evidence, per-tool rules."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from neurospine.errors import InputError
from neurospine.io import Volume
from neurospine.plausibility import Verdict, enforce
from neurospine.plausibility import brainage as pb
from neurospine.plausibility import cord as pc
from neurospine.plausibility import slice2d as ps
from neurospine.plausibility import spine as psp
from neurospine.plausibility.common import evidence, is_hounsfield
from tests.conftest import make_affine


def _head(top_air_mm: float = 20.0, width_mm: float = 150.0) -> Volume:
    """An ellipsoid 'head' (width x 185 x 200 mm) in a 2 mm RAS grid, its top ``top_air_mm`` below the edge."""
    shape = (100, 120, 120)  # 200 x 240 x 240 mm
    r, a, s = np.meshgrid(*[np.arange(n) * 2.0 for n in shape], indexing="ij")
    top = shape[2] * 2.0 - top_air_mm
    inside = ((r - 100) / (width_mm / 2)) ** 2 + ((a - 120) / 92.5) ** 2 + ((s - (top - 100)) / 100) ** 2 <= 1
    data = np.where(inside, 400.0, 2.0).astype(np.float32)
    return Volume(data, make_affine((2.0, 2.0, 2.0), "RAS"))


def _slab() -> Volume:
    """A sagittal spine-like slab: 40 mm left-right, tissue to the top and bottom edges."""
    data = np.full((40, 200, 300), 5.0, dtype=np.float32)
    data[:, 40:160, :] = 300.0
    return Volume(data, make_affine((1.0, 1.0, 1.0), "RAS"))


def test_verdict_statuses_and_texts() -> None:
    v = Verdict("spine", expects="a spine MRI")
    assert v.status == "ok" and v.field == "ok" and v.note is None
    v.flag("odd spacing")
    assert v.status == "flag" and v.field == "flag: odd spacing" and "odd spacing" in (v.note or "")
    v.refuse("a brain MRI", "head in view")
    assert v.status == "refuse" and v.looks_like == "a brain MRI"
    other = Verdict("spine")
    other.flag("x")
    assert Verdict("spine").merge(other).status == "flag"
    assert not Verdict("spine").merge(other).forced
    other.forced = True  # a refusal overridden with --force stays marked forced after a merge
    merged = Verdict("spine").merge(other)
    assert merged.forced and merged.field.startswith("forced: ")


def test_enforce_refuses_with_one_line_and_force_flags(tmp_path) -> None:
    v = Verdict("spine", expects="a sagittal spine MRI")
    v.refuse("a head (brain) MRI", "top of the skull in view")
    with pytest.raises(InputError) as e:
        enforce(v, tmp_path / "brain.nii.gz")
    msg = str(e.value)
    assert "brain.nii.gz" in msg and "a head (brain) MRI" in msg and "a sagittal spine MRI" in msg
    assert "--force" in msg and "\n" not in msg and e.value.exit_code == 2
    forced = enforce(v, "brain.nii.gz", force=True)
    assert forced.status == "flag" and forced.forced and forced.field.startswith("forced: ")


def test_evidence_head_slab_and_hounsfield() -> None:
    head = evidence(_head())
    assert head.head_in_view and not head.trunk_width and not head.hounsfield
    assert not evidence(_head(top_air_mm=0.0)).head_in_view  # the head runs out of the field: not a whole head
    assert not evidence(_head(width_mm=60.0)).head_in_view  # far narrower than any adult head
    slab = evidence(_slab())
    assert not slab.head_in_view and slab.fov_mm[0] == pytest.approx(40.0)
    ct = np.full((50, 50, 50), -1000.0, dtype=np.float32)
    ct[10:40, 10:40, :] = 40.0
    ct[20:30, 20:30, :] = 900.0
    assert is_hounsfield(ct)
    assert not is_hounsfield(np.abs(ct))


def test_axial_slab_and_trunk() -> None:
    data = np.zeros((120, 100, 20), dtype=np.float32)
    data[5:115, 10:90, :] = 200.0
    ev = evidence(Volume(data, make_affine((3.0, 3.0, 3.0), "RAS")))
    assert ev.axial_slab and ev.trunk_width


def test_brainage_check_needs_a_head() -> None:
    assert pb.check(_head()).status == "ok"
    v = pb.check(_slab())
    assert v.status == "refuse" and "narrow" in v.looks_like
    assert pb.check(_head(top_air_mm=0.0)).status == "refuse"


def test_cord_csa_estimate_of_a_cylinder() -> None:
    _z, y, x = np.meshgrid(np.arange(60), np.arange(40), np.arange(40), indexing="ij")
    cyl = ((y - 20) * 0.5) ** 2 + ((x - 20) * 0.5) ** 2 <= 4.0**2  # radius 4 mm at 0.5 mm in-plane
    csa = pc.mean_csa_mm2(cyl, (1.0, 0.5, 0.5))
    assert csa == pytest.approx(np.pi * 16, rel=0.1)
    v = pc.post_check(Verdict("cord"), cyl, (1.0, 0.5, 0.5))
    assert v.status == "ok"
    big = pc.post_check(Verdict("cord"), cyl, (1.0, 2.0, 2.0))  # the same voxels 4x wider: 800 mm2
    assert big.status == "flag" and "mm2" in big.reasons[0]


def test_cord_refuses_ct_before_the_model() -> None:
    ct = np.full((60, 60, 60), -1000.0, dtype=np.float32)
    ct[10:50, 10:50, :] = 40.0
    ct[25:35, 20:30, :] = 1000.0
    v = pc.pre_check(Volume(ct, make_affine((1.0, 1.0, 1.0), "RAS")))
    assert v.status == "refuse" and "CT" in v.looks_like


def test_cord_drops_sacrum_notes_only_for_a_cervical_column() -> None:
    notes = [
        "levels estimated",
        "spine naming: a sacrum was found but too small",
        "the naming used no anchor (C2 or the sacrum)",
    ]
    cervical = pc.drop_sacrum_notes(notes, 14.0)
    assert not any("sacrum" in n for n in cervical) and cervical[0] == "levels estimated"
    assert any("positional" in n for n in cervical)
    assert pc.drop_sacrum_notes(notes, 33.0) == notes
    assert pc.drop_sacrum_notes(notes, None) == notes


def _body(r0: int, c0: int, h: int, w: int, shape=(400, 300)) -> SimpleNamespace:
    m = np.zeros(shape, dtype=bool)
    m[r0 : r0 + h, c0 : c0 + w] = True
    return SimpleNamespace(mask=m, centroid_rc=(r0 + h / 2, c0 + w / 2))


def test_slice2d_ap_shaped_radiograph_bodies_refused_lateral_not() -> None:
    ap = SimpleNamespace(bodies=[_body(20 + 60 * k, 100, 45, 90) for k in range(5)])  # twice as wide as tall
    v = ps.post_check(Verdict("slice2d"), ap, (0.5, 0.5), modality="xray", spacing_known=False)
    assert v.status == "refuse" and "AP" in v.looks_like
    lat = SimpleNamespace(bodies=[_body(20 + 60 * k, 100 + 3 * k, 45, 55) for k in range(5)])
    assert ps.post_check(Verdict("slice2d"), lat, (0.5, 0.5), modality="xray", spacing_known=False).status == "ok"
    # MR/CT bodies may be wide (thin crops, unknown pixel aspect): no AP refusal there
    assert ps.post_check(Verdict("slice2d"), ap, (0.5, 0.5), modality="mr", spacing_known=False).status != "refuse"


def test_slice2d_wide_bodies_of_an_uncertain_radiograph_are_flagged_not_refused() -> None:
    ap = SimpleNamespace(bodies=[_body(20 + 60 * k, 100, 45, 90) for k in range(5)])
    v = ps.post_check(Verdict("slice2d"), ap, (0.5, 0.5), modality="xray", spacing_known=False, modality_certain=False)
    assert v.status == "flag" and "wide" in v.reasons[0]


def test_slice2d_two_doubts_flagged_one_not() -> None:
    lat = SimpleNamespace(bodies=[_body(20 + 60 * k, 100 + 3 * k, 45, 55) for k in range(5)])

    def check(certain: bool, prob: float) -> str:
        v = Verdict("slice2d")
        ps.post_check(
            v, lat, (0.5, 0.5), modality="mr", spacing_known=False, modality_certain=certain, body_probability=prob
        )
        return v.status

    assert check(False, 0.7) == "flag"
    assert check(False, 0.95) == "ok" and check(True, 0.7) == "ok"


def test_slice2d_scattered_bodies_flagged() -> None:
    scattered = SimpleNamespace(bodies=[_body(20 + 60 * k, [20, 200, 40, 220, 30][k], 45, 50) for k in range(5)])
    v = ps.post_check(Verdict("slice2d"), scattered, (0.5, 0.5), modality="mr", spacing_known=True)
    assert v.status == "flag" and any("smooth column" in r for r in v.reasons)
    none = ps.post_check(Verdict("slice2d"), SimpleNamespace(bodies=[]), (0.5, 0.5), modality="mr", spacing_known=True)
    assert none.status == "flag"


def test_mirror_symmetry_separates_symmetric_from_one_sided() -> None:
    rng = np.random.default_rng(0)
    half = rng.random((64, 32)).astype(np.float32)
    sym = np.concatenate([half, half[:, ::-1]], axis=1)
    assert ps.mirror_symmetry(sym) > 0.95
    one_sided = np.zeros((64, 64), dtype=np.float32)
    one_sided[:, 40:56] = 1.0 + rng.random((64, 16))
    assert ps.mirror_symmetry(one_sided) < ps.MIRROR_SYMMETRIC


def test_spine_column_checks() -> None:
    good = {
        "n_bodies": 5.0,
        "median_depth_mm": 34.0,
        "median_height_mm": 27.0,
        "median_gap_mm": 36.0,
        "min_gap_ratio": 0.9,
        "max_gap_ratio": 1.1,
        "tilt_deg": 10.0,
        "canal_share": 0.9,
    }
    v = Verdict("spine")
    psp.column_checks(good, v)
    assert v.status == "ok"
    bad = dict(good, max_gap_ratio=4.0, tilt_deg=80.0, canal_share=0.1, median_depth_mm=120.0)
    v = Verdict("spine")
    psp.column_checks(bad, v)
    assert v.status == "flag" and len(v.reasons) == 4
    v = Verdict("spine")
    psp.column_checks({"n_bodies": 0.0}, v)
    assert v.reasons == ["no vertebral body found"]


def test_spine_refuses_a_head_whose_column_is_short() -> None:
    grid = SimpleNamespace(spacing_mm=(1.0, 1.0, 2.0))
    seg = SimpleNamespace(grid=grid, instances=SimpleNamespace(vertebrae=[]), classes=np.zeros((10, 240, 10), np.uint8))
    v = psp.check(_head(), seg)
    assert v.status == "refuse" and "head" in v.looks_like
    assert psp.check(_slab(), seg).status == "flag"  # no body found, but no head either


def test_anatomical_pixel_size_and_warning() -> None:
    from neurospine.plausibility import scale as sc

    rows = [{"kind": "body", "ap_width_mm": d} for d in (30.0, 33.0, 36.0)] + [{"kind": "disc", "ap_width_mm": 90.0}]
    assert sc.anatomical_pixel_mm(rows, 0.3) == pytest.approx(0.3)
    assert sc.anatomical_pixel_mm(rows[:1], 0.3) is None  # one body is not enough
    assert sc.scale_warning(0.25, 0.27, given=True) is None  # 8 % off
    warn = sc.scale_warning(0.25, 0.35, given=True)
    assert warn is not None and "+40 %" in warn and "--pixel-mm" in warn
    assert "try 0.250" in (sc.scale_warning(0.25, 0.15, given=False) or "")


def test_self_consistent_pixel_size_ignores_the_trial_scale() -> None:
    """A model that finds bodies of its expected size at any trial scale (depth in pixels grows as the trial pixel
    shrinks) only agrees with itself at the true scale; the estimate does not depend on what was given."""
    from neurospine.plausibility import scale as sc

    true_px, depth_px = 0.27, 33.0 / 0.27

    def rows_at(trial_px: float) -> list[dict[str, object]]:
        # the model's size prior pulls the measured depth halfway toward 33 mm
        measured = 0.5 * depth_px * trial_px + 0.5 * 33.0
        return [{"kind": "body", "ap_width_mm": measured * f} for f in (0.95, 1.0, 1.05)]

    est = sc.self_consistent_pixel_mm(rows_at)
    assert est == pytest.approx(true_px, rel=0.15)
    assert sc.self_consistent_pixel_mm(lambda px: []) is None


def test_bright_bone_lift_separates_ct_like_from_mri_like() -> None:
    """Rescaled CT: bone is the brightest tissue; MRI: cortical bone dark, fat/fluid brightest."""
    from neurospine.spine import classes as C

    rng = np.random.default_rng(0)
    classes = np.zeros((40, 60, 20), np.uint8)
    classes[10:20, 10:50, 5:15] = C.CORPUS
    classes[25:28, 10:50, 5:15] = C.CANAL
    soft = 100.0 + rng.normal(0.0, 5.0, classes.shape)
    ct = np.where(classes == C.CORPUS, 200.0 + rng.normal(0.0, 20.0, classes.shape), soft)
    mri = np.where(classes == C.CORPUS, 60.0, soft)
    mri[:, :, 18:] = 250.0  # subcutaneous fat, the brightest on MRI
    grid_mm = (1.5, 1.5, 1.5)  # 4,000 bone voxels: 13,500 mm3, more than MIN_BONE_MM3
    for img, expect_ct in ((ct, True), (mri, False)):
        seg = SimpleNamespace(classes=classes, grid=SimpleNamespace(image=img.astype(np.float32), spacing_mm=grid_mm))
        assert psp.bone_mm3(seg) == pytest.approx(13_500.0)
        assert (psp.bright_bone_lift(seg) >= psp.BRIGHT_BONE_LIFT) is expect_ct
    empty = SimpleNamespace(
        classes=np.zeros_like(classes), grid=SimpleNamespace(image=ct.astype(np.float32), spacing_mm=grid_mm)
    )
    assert psp.bright_bone_lift(empty) == 0.0
    # the same CT with a few cm3 of "bone" (a head MRI's neck, IXI443: 3.8 cm3): no evidence either way
    small = SimpleNamespace(classes=classes, grid=SimpleNamespace(image=ct.astype(np.float32), spacing_mm=(1, 1, 1)))
    assert psp.bone_mm3(small) < psp.MIN_BONE_MM3 and psp.bright_bone_lift(small) == 0.0


def test_cord_flag_quotes_the_reported_mean_csa():
    """With the outputs' mean CSA given, the flag uses (and quotes) it rather than the mask's volume / length."""
    cyl = np.zeros((40, 40, 40), dtype=np.uint8)
    cyl[:, 18:22, 18:22] = 1  # 4 x 4 voxels of 0.5 mm: 4 mm2 by volume / length
    v = pc.post_check(Verdict("cord"), cyl, (1.0, 0.5, 0.5), csa_mm2=13.52)
    assert v.status == "flag" and "14 mm2" in v.note
    assert pc.post_check(Verdict("cord"), cyl, (1.0, 0.5, 0.5), csa_mm2=70.0).status == "ok"


def test_label_map_given_as_the_image_is_refused_by_every_tool() -> None:
    from neurospine.plausibility.common import label_map_reason

    labels = np.zeros((60, 80, 40), dtype=np.uint8)
    labels[20:40, 10:30, 10:30] = 1
    labels[20:40, 35:55, 10:30] = 2
    labels[42:50, 10:55, 15:25] = 61
    vol = Volume(labels, make_affine((1.0, 1.0, 1.0), "RAS"))
    reason = label_map_reason(labels)
    assert reason is not None and reason.startswith("4 distinct integer values")
    for verdict in (pc.pre_check(vol), pb.check(vol), ps.pre_check(None, is_2d=False, ev=evidence(vol))):
        assert verdict.status == "refuse" and "label map" in verdict.looks_like
    assert psp.pre_check(evidence(vol)).status == "refuse"
    assert ps.pre_check(labels[:, :, 20].T, is_2d=True).status == "refuse"  # a 2D mask too
    # a float 0/1 mask (fslmaths writes float32) is a label map as well
    assert label_map_reason((labels > 0).astype(np.float32)) is not None


def test_images_are_not_label_maps() -> None:
    from neurospine.plausibility.common import label_map_reason

    rng = np.random.default_rng(0)
    img = rng.normal(300.0, 40.0, (60, 80, 40)).astype(np.float32)
    img[:, :, :10] = 0.0
    assert label_map_reason(img) is None  # noise: thousands of values
    assert label_map_reason(np.round(img).clip(0, 255).astype(np.uint8)) is None  # 8-bit, still > 128 values
    phantom = np.full((60, 80, 40), 114.0, dtype=np.float32)  # piecewise constant, but not on a zero background
    phantom[20:40, 20:60, :] = 200.0
    assert label_map_reason(phantom) is None
    few = np.zeros((60, 80, 40), dtype=np.float32)
    few[10:50, 10:70, 5:35] = 1.5  # non-integer values
    assert label_map_reason(few) is None
    half = np.zeros((60, 80, 40), dtype=np.uint8)
    half[:, :50, :] = 3  # zero on under half of the voxels
    assert label_map_reason(half) is None
    # a smooth image quantised to 100 grey levels on a zero background: few integer values and mostly zero, but
    # each grey level is scattered over many small regions
    smooth = rng.normal(0.0, 1.0, (60, 80, 40))
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(smooth, 1.0)
    body = np.zeros(smooth.shape, dtype=bool)
    body[15:45, 20:60, 10:30] = True
    quantised = np.where(body, np.round((smooth - smooth.min()) / np.ptp(smooth) * 99) + 1, 0.0)
    assert (quantised == 0).mean() > 0.5 and np.unique(quantised).size <= 101
    assert label_map_reason(quantised) is None
