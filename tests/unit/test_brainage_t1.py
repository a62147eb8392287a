"""Raw-T1 brain age: preprocessing invariance, ONNX MC dropout through the mask input, split."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from neurospine.brainage.t1_preprocess import CROP_SHAPE, crop_at, preprocess_t1
from neurospine.io import Volume, load_volume


def test_crop_at_pads_with_zeros():
    x = np.arange(27, dtype=np.float32).reshape(3, 3, 3) + 1
    out = crop_at(x, (1, 1, 1), (5, 5, 5))
    assert out.shape == (5, 5, 5) and out[0].sum() == 0 and out[1:4, 1:4, 1:4].sum() == x.sum()


def test_preprocess_is_orientation_invariant(shared_data):
    img = sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[0]
    vol = load_volume(img)
    a = preprocess_t1(vol)
    assert a.shape == CROP_SHAPE and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 3.0 and a.mean() > 0.1
    # the same image stored with permuted / flipped axes must give the same network input
    ornt = np.array([[2, -1], [0, 1], [1, -1]])
    data = nib.orientations.apply_orientation(vol.data, ornt)
    aff = vol.affine @ nib.orientations.inv_ornt_aff(ornt, vol.shape)
    b = preprocess_t1(Volume(np.ascontiguousarray(data), aff))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_split_is_subject_disjoint_and_stratified():
    from neurospine.brainage.training_t1 import split_subjects

    ages = np.random.default_rng(0).uniform(20, 80, 121)
    s = split_subjects(ages, 0)
    allidx = np.concatenate([s["train"], s["val"], s["test"]])
    assert len(allidx) == 121 and len(set(allidx.tolist())) == 121
    assert 23 <= len(s["test"]) <= 25
    assert abs(ages[s["test"]].mean() - ages.mean()) < 5


@pytest.mark.slow
def test_onnx_mc_dropout_passes_differ(tmp_path):
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from neurospine.brainage.training_t1 import DROPOUT_P, HIDDEN, build_model

    torch.manual_seed(0)
    model = build_model(2).eval()
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, *CROP_SHAPE), torch.ones(3, 2 * HIDDEN)),
        str(path),
        input_names=["image", "mask"],
        output_names=["quantiles"],
        dynamic_axes={"mask": {0: "passes"}, "quantiles": {0: "passes"}},
        opset_version=17,
        dynamo=False,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    image = rng.random((1, 1, *CROP_SHAPE), dtype=np.float32)
    masks = (rng.random((6, 2 * HIDDEN)) >= DROPOUT_P).astype(np.float32)
    (q,) = sess.run(None, {"image": image, "mask": masks})
    assert q.shape[0] == 6
    assert np.ptp(q[:, q.shape[1] // 2]) > 1e-4  # MC passes differ
    assert (np.diff(q, axis=1) > 0).all()  # monotone quantiles
    (q2,) = sess.run(None, {"image": image, "mask": masks[:2]})
    np.testing.assert_allclose(q2, q[:2], rtol=1e-4, atol=1e-5)  # same mask -> same output
    with torch.no_grad():
        ref = model(torch.from_numpy(image), torch.from_numpy(masks)).numpy()
    np.testing.assert_allclose(q, ref, rtol=1e-3, atol=1e-4)


def test_shipped_onnx_mc_passes_differ(shared_data):
    from neurospine.models.registry import shipped_dir

    if not (shipped_dir() / "brainage_t1.json").is_file():
        pytest.skip("brainage_t1 not shipped in this checkout")
    from neurospine.brainage.t1_model import T1BrainAge

    model = T1BrainAge.shipped(threads=1)
    img = sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[3]
    x = preprocess_t1(load_volume(img))
    q = model.passes(x, 8, np.random.default_rng(0))
    assert q.shape == (8 * model.members, len(model.card.inputs["tau_grid"]))
    assert np.ptp(q[:, q.shape[1] // 2]) > 0.01  # dropout active in onnxruntime: passes differ
    # quantiles never cross; adjacent ones may be equal in float32 when a softplus increment is below one ulp
    assert (np.diff(q, axis=1) >= 0).all() and (q[:, -1] - q[:, 0] > 1.0).all()
    again = model.passes(x, 8, np.random.default_rng(0))
    np.testing.assert_allclose(q, again, rtol=1e-5)  # same masks -> same output


def test_training_crop_centre_matches_runtime_crop(shared_data):
    """Training crops shifts from a padded crop; its centre must be exactly the runtime network input."""
    from neurospine.brainage.training_t1 import CACHE_SHAPE, centre

    vol = load_volume(sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[5])
    np.testing.assert_array_equal(centre(preprocess_t1(vol, CACHE_SHAPE)), preprocess_t1(vol))


def test_lowres_training_input_matches_pooled_runtime_input(shared_data):
    """The lowres recipe trains on 4 mm volumes; its un-augmented input must equal 2x2x2 pooling of the
    2 mm runtime crop, which is what the exported network does internally."""
    from neurospine.brainage.t1_lowres import LOW_SHAPE, centre_low, downsample2
    from neurospine.brainage.training_t1 import CACHE_SHAPE

    vol = load_volume(sorted((shared_data / "ixi_t1_2mm" / "t1").glob("*.nii.gz"))[7])
    low = centre_low(downsample2(preprocess_t1(vol, CACHE_SHAPE)))
    assert low.shape == LOW_SHAPE
    np.testing.assert_allclose(low, downsample2(preprocess_t1(vol)), rtol=1e-6, atol=1e-6)


def test_lowres_augment_and_schedule():
    from neurospine.brainage.t1_lowres import LOW_SHAPE, SWA_LR_FRACTION, augment_lowres, lr_factor, swa_start_epoch

    rng = np.random.default_rng(0)
    x = np.zeros((LOW_SHAPE[0] + 4, LOW_SHAPE[1] + 4, LOW_SHAPE[2] + 4), dtype=np.float32)
    x[10:30, 10:40, 10:35] = 1.0
    a, b = augment_lowres(x, rng), augment_lowres(x, rng)
    assert a.shape == LOW_SHAPE and a.dtype == np.float32 and np.isfinite(a).all()
    assert not np.allclose(a, b)  # random transforms differ
    assert 0.5 < a.sum() / x.sum() < 1.6  # the object stays in view (rotation/scale/shift are small)
    start = swa_start_epoch(400)
    assert start == 300 and lr_factor(0, 400) < lr_factor(2, 400) == pytest.approx(1.0, abs=1e-3)
    assert lr_factor(start, 400) == lr_factor(399, 400) == SWA_LR_FRACTION
    assert lr_factor(start - 1, 400) > SWA_LR_FRACTION
