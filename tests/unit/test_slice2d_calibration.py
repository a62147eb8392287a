"""slice2d outline calibration: the fit recovers a known offset; the card's offsets are applied at inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from neurospine.slice2d.calibration import (
    NOTE_MARKER,
    CalSlice,
    calibrate,
    fit_class,
    fit_offset,
    mean_dice_fn,
    write_into_card,
)
from neurospine.slice2d.segment import bias_vector, card_logit_bias, semantic_from_logits


def _disc_slice(name: str, modality: str, pred_radius: float, ref_radius: float, slope: float = 1.0) -> CalSlice:
    """A round 'body' whose logit is ``slope * (pred_radius - distance)``; the reference has ``ref_radius``.

    The argmax boundary moves to ``pred_radius + offset / slope``, so the best offset is
    ``slope * (ref_radius - pred_radius)``.
    """
    yy, xx = np.mgrid[0:64, 0:64]
    dist = np.hypot(yy - 31.5, xx - 31.5)
    logits = np.stack([np.zeros_like(dist), slope * (pred_radius - dist), np.full_like(dist, -50.0)]).astype(np.float32)
    ref = (dist < ref_radius).astype(np.uint8)
    return CalSlice(name, "test", modality, logits, ref, frozenset({"vertebral_body"}))


def test_fit_recovers_the_offset() -> None:
    slices = [_disc_slice(f"c{i}", "mr", 12.0, 10.0) for i in range(3)]
    chosen, table = fit_offset(mean_dice_fn(slices, "vertebral_body"))
    assert chosen == pytest.approx(-2.0)
    assert table[-2.0] == pytest.approx(1.0)
    assert table[0.0] < 0.95  # uncalibrated: two pixels too wide


def test_grid_is_extended_past_an_edge_optimum() -> None:
    slices = [_disc_slice("c", "mr", 14.0, 10.0)]
    chosen, table = fit_offset(mean_dice_fn(slices, "vertebral_body"), (-1.0, -0.5, 0.0), step=0.5)
    assert chosen == pytest.approx(-4.0)
    assert min(table) < -4.0  # went one step beyond to see the optimum is interior


def test_pooled_when_a_modality_has_few_cases_and_no_fit_for_xray() -> None:
    slices = [_disc_slice(f"m{i}", "mr", 12.0, 10.0) for i in range(5)]
    slices += [_disc_slice("ct0", "ct", 11.0, 10.0), _disc_slice("ct1", "ct", 11.0, 10.0)]
    fit = fit_class(slices, "vertebral_body")
    assert fit["pooled"] is True
    assert set(fit["offsets"]) == {"mr", "ct"} and fit["offsets"]["mr"] == fit["offsets"]["ct"]
    # enough cases in every modality: one fit each
    slices += [_disc_slice(f"ct{i}", "ct", 11.0, 10.0) for i in range(2, 5)]
    result = calibrate(slices)
    assert result["logit_bias"]["mr"]["vertebral_body"] == pytest.approx(-2.0)
    assert result["logit_bias"]["ct"]["vertebral_body"] == pytest.approx(-1.0)
    assert "xray" not in result["logit_bias"]
    assert "intervertebral_disc" not in result["logit_bias"]["mr"]  # no disc references: uncalibrated


def test_bias_moves_probabilities_and_labels_together() -> None:
    cs = _disc_slice("c", "mr", 12.0, 10.0)
    sem0 = semantic_from_logits(cs.logits, (64, 64))
    sem1 = semantic_from_logits(cs.logits, (64, 64), {"vertebral_body": -2.0})
    assert (sem1.labels == 1).sum() < (sem0.labels == 1).sum()
    assert np.array_equal(sem1.labels, np.argmax(sem1.probs, axis=0))
    assert np.allclose(sem1.probs.sum(axis=0), 1.0, atol=1e-5)


def test_card_bias_lookup() -> None:
    inputs = {"logit_bias": {"mr": {"vertebral_body": -0.25, "intervertebral_disc": -1.0}}}
    assert card_logit_bias(inputs, "mr") == {"vertebral_body": -0.25, "intervertebral_disc": -1.0}
    assert card_logit_bias(inputs, "xray") == {}
    assert card_logit_bias({}, "mr") == {}
    assert bias_vector({}) is None
    with pytest.raises(ValueError, match="unknown classes"):
        bias_vector({"corpus": -1.0})


def test_shipped_card_offsets_are_valid() -> None:
    from neurospine.models import load_card

    card = load_card("slice2d_unet")
    for modality in ("mr", "ct", "xray"):
        bias_vector(card_logit_bias(card.inputs, modality))  # raises on unknown class names


def test_write_into_card_replaces_the_previous_note(tmp_path) -> None:
    card_path = tmp_path / "m.json"
    card_path.write_text(json.dumps({"name": "m", "notes": "Trained somehow."}), encoding="utf-8")
    result = calibrate([_disc_slice(f"m{i}", "mr", 12.0, 10.0) for i in range(5)])
    write_into_card(card_path, result)
    write_into_card(card_path, result)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    assert card["inputs"]["logit_bias"]["mr"]["vertebral_body"] == pytest.approx(-2.0)
    assert card["notes"].startswith("Trained somehow. ") and card["notes"].count(NOTE_MARKER) == 1


def test_card_offset_applied_at_inference(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnx")
    from neurospine.slice2d.api import run_file
    from neurospine.slice2d.tiny_model import phantom_plane, write_tiny_model

    folder = tmp_path / "models"
    onnx_path = write_tiny_model(folder)
    monkeypatch.setenv("NEUROSPINE_MODELS_DIR", str(folder))
    img, _lab = phantom_plane()
    Image.fromarray((img * 255).astype(np.uint8)).save(tmp_path / "ph.png")  # run as X-ray (--modality xray)
    card_path = onnx_path.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))

    card["inputs"] = {"logit_bias": {"mr": {"vertebral_body": -30.0}}}  # another modality: no effect
    card_path.write_text(json.dumps(card), encoding="utf-8")
    assert run_file(tmp_path / "ph.png", tmp_path / "a", threads=1, modality="xray").measures["n_bodies"] == 4

    card["inputs"] = {"logit_bias": {"xray": {"vertebral_body": -30.0}}}  # bodies can no longer win
    card_path.write_text(json.dumps(card), encoding="utf-8")
    assert run_file(tmp_path / "ph.png", tmp_path / "b", threads=1, modality="xray").measures["n_bodies"] == 0
