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
