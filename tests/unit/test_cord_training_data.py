"""The challenge split (by person, two sites held out) and the trainer's data mix and fine-tuning start."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neurospine.cord.data import GMC_FOLDER, GMC_HELDOUT, GMC_TRAIN, load_gmchallenge


def test_split_is_by_person_and_holds_out_two_sites(shared_data):
    train_people = {p for _, p in GMC_TRAIN}
    held_people = {p for _, p in GMC_HELDOUT}
    assert not train_people & held_people
    manifest = [json.loads(line) for line in (shared_data / GMC_FOLDER / "manifest.jsonl").read_text().splitlines()]
    site = {m["case"]: m["site"] for m in manifest}
    assert set(site) == {c for c, _ in GMC_TRAIN + GMC_HELDOUT}  # every session has a side
    held_sites = {site[c] for c, _ in GMC_HELDOUT}
    assert len(held_sites) >= 2 and not held_sites & {site[c] for c, _ in GMC_TRAIN}
    for m in manifest:  # the manifest's person ids agree with the split's (sessions of one person together)
        person = "gmc-" + m["subject"].split()[0]
        assert person in (train_people if m["case"] in dict(GMC_TRAIN) else held_people)


def test_held_out_sessions_cannot_be_loaded_for_training(tmp_path):
    with pytest.raises(ValueError, match="held-out"):
        load_gmchallenge(tmp_path, GMC_HELDOUT[:1])


def test_mix_probabilities():
    from neurospine.cord.training import mix_probabilities

    p = mix_probabilities(48, 2, 5, 0.15, 0.3)
    assert p.size == 55 and p.sum() == pytest.approx(1.0)
    assert p[:48].sum() == pytest.approx(0.55) and p[48:50].sum() == pytest.approx(0.15)
    assert p[50:].sum() == pytest.approx(0.3)
    alone = mix_probabilities(48, 0, 0, 0.15, 0.3)  # missing groups give their share to the others
    assert alone.sum() == pytest.approx(1.0) and np.allclose(alone, 1 / 48)


def test_fine_tuning_starts_from_the_exported_weights(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from neurospine.cord.training import load_onnx_weights
    from neurospine.nn.export import export_onnx
    from neurospine.nn.unet import UNet

    torch.manual_seed(1)
    src = UNet(1, 2, base=4, depth=2, dims=2)
    with torch.no_grad():  # distinct values everywhere (the exporter merges identical initial norm weights)
        for prm in src.parameters():
            prm.add_(torch.randn_like(prm) * 0.1)
    path = tmp_path / "m.onnx"
    export_onnx(src, torch.rand(1, 1, 16, 16), path)
    dst = UNet(1, 2, base=4, depth=2, dims=2)
    load_onnx_weights(torch, dst, path)
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k])
    with pytest.raises(ValueError, match="architecture"):
        load_onnx_weights(torch, UNet(1, 2, base=8, depth=2, dims=2), path)


def _disc_volume(radius_mm: float, spacing_mm: float, n_slices: int, labelled: int):
    from neurospine.cord.data import TrainVolume

    n = 64
    g = (np.arange(n) - (n - 1) / 2) * spacing_mm
    disc = (g[:, None] ** 2 + g[None, :] ** 2) <= radius_mm**2
    cord = np.zeros((n, n, n_slices), np.float32)
    cord[:, :, :labelled] = disc[:, :, None]
    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, cord.shape).astype(np.float32) + 50 * cord
    return TrainVolume("t", "t", image, cord, None, (spacing_mm, spacing_mm, 3.0)), disc, g


def test_edge_band_leaves_only_the_rim_of_a_manual_mask_unsupervised():
    from neurospine.cord.data import edge_band_weight

    vol, _, g = _disc_volume(5.0, 0.5, 3, 3)
    w = edge_band_weight(vol.cord >= 0.5, (0.5, 0.5), 0.75)[:, :, 0]
    r = np.hypot(g[:, None], g[None, :])
    assert np.all(w[r < 3.5] == 1) and np.all(w[r > 6.5] == 1)  # deep inside and well outside: supervised
    rim = np.abs(r - 5.0) < 0.3
    assert rim.any() and np.all(w[rim] == 0)  # on the edge: not supervised
    ignored = (w == 0).sum() * 0.25 / (2 * np.pi * 5.0)  # band area over circumference ~ its width in mm
    assert 1.0 < ignored < 2.5
    assert np.all(edge_band_weight(vol.cord >= 0.5, (0.5, 0.5), 0.0) == 1)


def test_patches_carry_the_band_and_never_come_from_unlabelled_slices():
    import dataclasses

    from neurospine.cord.data import PatchConfig, sample_batch, sample_patch, with_edge_band

    vol, _, _ = _disc_volume(5.0, 0.5, 6, 4)
    banded = dataclasses.replace(with_edge_band(vol, 0.75), slice_range=(0, 3))
    # slices 4-5 hold an unlabelled cord: marked NaN, a patch from them would not be finite
    banded.image[:, :, 4:] = np.nan
    rng = np.random.default_rng(1)
    cfg = PatchConfig(size=32, p_negative=1.0)
    for _ in range(40):
        x, _, w = sample_patch(banded, rng, cfg)
        assert np.all(np.isfinite(x)) and w.shape == (2, 32, 32) and np.all(w[1] == 0)
    _, _, w = sample_batch([vol, banded], np.random.default_rng(2), 8, PatchConfig(size=32, p_negative=0.0))
    assert w.shape == (8, 2, 32, 32)  # one banded patch makes every patch's weights per pixel
    _, y0, w0 = sample_patch(banded, np.random.default_rng(3), PatchConfig(size=32, p_negative=0.0))
    edge = (y0[0] > 0.05) & (y0[0] < 0.95)
    assert edge.any() and np.all(w0[0][edge] == 0)  # the interpolated edge of the hard mask is not taught


def test_unsupervised_pixels_do_not_move_the_loss():
    torch = pytest.importorskip("torch")
    from neurospine.cord.training import _loss

    torch.manual_seed(0)
    logits, target = torch.randn(3, 2, 8, 8), torch.rand(3, 2, 8, 8)
    per_channel = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    per_pixel = per_channel[:, :, None, None].expand(3, 2, 8, 8).clone()

    def loss(t, w):
        return float(_loss(torch, logits, t, w))

    assert loss(target, per_channel) == pytest.approx(loss(target, per_pixel))
    per_pixel[0, 0, :2] = 0.0
    changed = target.clone()
    changed[0, 0, :2] = 1.0 - changed[0, 0, :2]
    assert loss(changed, per_pixel) == pytest.approx(loss(target, per_pixel))
    assert loss(changed, per_channel) != pytest.approx(loss(target, per_channel))


def test_challenge_sessions_are_sampled_on_their_labelled_slices_only(shared_data):
    vols = {v.name.split("/")[-1]: v for v in load_gmchallenge(shared_data, (("gmc-9604", "gmc-9604"),))}
    v = vols["gmc-9604"]
    assert v.slice_range == (0, 13) and v.image.shape[2] == 20  # its mask stops 6 slices before the image


def test_edge_band_on_non_square_pixels_follows_the_axis():
    from neurospine.cord.data import edge_band_weight

    mask = np.zeros((40, 20, 1), bool)
    mask[10:30, 5:15] = True  # a rectangle: 0.5 mm pixels along x, 1.0 mm along y
    w = edge_band_weight(mask, (0.5, 1.0), 0.75)[:, :, 0]
    # across y (1 mm pixels) the first pixel inside is 0.5 mm from the edge, the second 1.5 mm
    assert w[20, 5] == 0 and w[20, 6] == 1 and w[20, 4] == 0 and w[20, 3] == 1
    # across x (0.5 mm pixels): 0.25 and 0.75 mm from the edge; the band is < 0.75 mm
    assert w[10, 10] == 0 and w[11, 10] == 1 and w[9, 10] == 0 and w[8, 10] == 1


def test_per_pixel_weights_scale_the_loss_like_per_channel_ones():
    torch = pytest.importorskip("torch")
    from neurospine.cord.training import _loss

    torch.manual_seed(2)
    logits, target = torch.randn(2, 2, 8, 8), torch.rand(2, 2, 8, 8)
    ch = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert float(_loss(torch, logits, target, ch)) == pytest.approx(
        float(_loss(torch, logits, target, ch[:, :, None, None].expand(2, 2, 8, 8)))
    )


def test_cauda_patches_centre_on_the_canal_below_the_cord_and_teach_no_cord():
    import dataclasses

    from neurospine.cord.data import PatchConfig, TrainVolume, sample_patch

    shape = (48, 48, 10)
    ii, jj = np.meshgrid(np.arange(48), np.arange(48), indexing="ij")
    disc = (((ii - 30) ** 2 + (jj - 18) ** 2) < 36).astype(np.float32)
    canal = np.repeat(disc[:, :, None], 10, axis=2)
    cord = np.zeros(shape, dtype=np.float32)
    cord[:, :, 6:] = (((ii - 30) ** 2 + (jj - 18) ** 2) < 6)[:, :, None]  # the cord ends at slice 6
    image = np.random.default_rng(0).random(shape).astype(np.float32) + 2 * canal
    vol = TrainVolume("v", "v", image, cord, canal, (1.0, 1.0, 1.0))
    assert vol.cauda_slices.tolist() == [0, 1, 2, 3, 4, 5]  # caudal to the cord, never above it
    rng = np.random.default_rng(4)
    cfg = PatchConfig(
        size=16, p_cauda=1.0, fine_spacing_mm=(1.0, 1.0), p_coarse=0.0, fine_shift_mm=0.0, max_rotation_deg=0.0
    )
    for _ in range(10):
        _, y, _ = sample_patch(vol, rng, cfg)
        assert y[0].max() == 0.0 and y[1][8, 8] == 1.0  # no cord taught; the patch centre is in the canal
    no_canal = TrainVolume("w", "w", image, cord, None, (1.0, 1.0, 1.0))
    assert no_canal.cauda_slices.size == 0
    _, y, _ = sample_patch(no_canal, rng, dataclasses.replace(cfg, p_negative=0.0))
    assert y[0].max() > 0  # without a canal the draw falls back to a cord patch
