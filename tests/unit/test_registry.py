import json

import pytest

from neurospine.errors import ModelNotFoundError, WeightsIntegrityError
from neurospine.models import list_cards, load_card, weights_path
from neurospine.models.registry import ENV_MODELS_DIR, sha256_of


def _write_model(folder, name="tiny", payload=b"weights", sha=None):
    w = folder / f"{name}.onnx"
    w.write_bytes(payload)
    card = {"name": name, "version": "0.0.1", "task": "test", "file": w.name, "sha256": sha or sha256_of(w)}
    (folder / f"{name}.json").write_text(json.dumps(card))
    return w


def test_override_dir_card_is_found_and_verified(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    w = _write_model(tmp_path)
    card = load_card("tiny")
    assert weights_path(card) == w
    assert "tiny" in [c.name for c in list_cards()]


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    _write_model(tmp_path, sha="0" * 64)
    with pytest.raises(WeightsIntegrityError):
        weights_path(load_card("tiny"))


def test_unknown_model_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_MODELS_DIR, str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="neurospine train"):
        load_card("does-not-exist")


def test_every_shipped_card_matches_its_weights():
    for card in list_cards():
        assert weights_path(card).stat().st_size <= 10 * 1024 * 1024, card.name
        assert card.metrics, f"{card.name}: card must carry measured metrics"
        assert card.training_data, f"{card.name}: card must name its training data"
