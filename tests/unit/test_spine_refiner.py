"""Body refiner: its log-odds are fused into the semantic body logits; its training targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurospine.spine import classes as C
from neurospine.spine import data as D
from neurospine.spine.semantic import BodyRefiner, network_logits, predict_classes, predict_classes_cropped


def _conv1x1(path: Path, slope: np.ndarray, bias: np.ndarray):
    from neurospine.inference.onnx import session_for_file
    from tests.unit.test_spine_support import save_conv1x1

    save_conv1x1(path, slope, bias)
    return session_for_file(path, threads=1)


def _semantic(folder: Path):
    """Corpus logit 10 x - 3 (corpus above 0.3), background 0, every other class -100."""
    slope = np.zeros((C.N_CLASSES, 3, 1, 1), dtype=np.float32)
    bias = np.full(C.N_CLASSES, -100.0, dtype=np.float32)
    bias[C.BG] = 0.0
    slope[C.CORPUS, 1, 0, 0], bias[C.CORPUS] = 10.0, -3.0
    return _conv1x1(folder / "semantic.onnx", slope, bias)


def _refiner(folder: Path, threshold: float):
    """Binary model whose body log-odds are 200 (x - threshold): body above ``threshold``."""
    slope = np.zeros((2, 3, 1, 1), dtype=np.float32)
    bias = np.zeros(2, dtype=np.float32)
    slope[1, 1, 0, 0], bias[1] = 200.0, -200.0 * threshold
    return _conv1x1(folder / "refiner.onnx", slope, bias)


def test_refiner_log_odds_are_added_to_the_body_classes_only(tmp_path):
    sem, ref = _semantic(tmp_path), _refiner(tmp_path, 0.6)
    x = np.linspace(0, 1, 3 * 4 * 8, dtype=np.float32).reshape(1, 3, 4, 8)
    plain = network_logits(sem, x)
    fused = network_logits(sem, x, BodyRefiner(ref, weight=0.5))
    margin = 200.0 * (x[:, 1] - 0.6)
    for c in range(C.N_CLASSES):
        expected = plain[:, c] + (0.5 * margin if c in (C.CORPUS, C.ENDPLATE) else 0.0)
        np.testing.assert_allclose(fused[:, c], expected, atol=1e-4)


def test_a_confident_refiner_moves_the_body_outline(tmp_path):
    sem, ref = _semantic(tmp_path), _refiner(tmp_path, 0.6)
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32)[None, :, None], (32, 1, 6))
    plain = predict_classes(sem, ramp, 3.0) == C.CORPUS
    fused = predict_classes(sem, ramp, 3.0, refiner=BodyRefiner(ref)) == C.CORPUS
    assert plain[:, ramp[0, :, 0] > 0.35].all() and not plain[:, ramp[0, :, 0] < 0.25].any()
    # the refiner says "not body" between 0.3 and 0.6: the fused outline follows it
    assert fused[:, ramp[0, :, 0] > 0.65].all() and not fused[:, ramp[0, :, 0] < 0.55].any()


def test_the_cropped_path_predicts_every_box_slice_with_the_refiner(tmp_path):
    from neurospine.spine.semantic import LOCATE_STRIDE_MM

    sem, ref = _semantic(tmp_path), _refiner(tmp_path, 0.6)
    img = np.zeros((80, 120, 30), dtype=np.float32)
    img[30:50, 20:100, 6:24] = np.linspace(0.35, 0.55, 20, dtype=np.float32)[:, None, None]  # body to sem only
    img[30:50, 20:100, 12:18] = 1.0  # body to both
    pass1 = set(range(int(LOCATE_STRIDE_MM) // 2, 30, int(LOCATE_STRIDE_MM)))
    semantic_only = {r for r in range(6, 24) if not 10 <= r <= 19}  # channels r-3, r, r+3 all below 0.6
    assert pass1 & semantic_only, "the phantom must put a semantic-only slice where pass 1 predicts"
    plain = predict_classes_cropped(sem, img, (1.0, 1.0, 1.0)) == C.CORPUS
    fused = predict_classes_cropped(sem, img, (1.0, 1.0, 1.0), refiner=BodyRefiner(ref)) == C.CORPUS
    assert plain[:, :, sorted(semantic_only)].any(axis=(0, 1)).all()
    assert not fused[:, :, sorted(semantic_only)].any()  # no pass-1 slice kept its refiner-free labels


def test_a_refiner_other_than_the_calibrated_one_is_refused():
    from neurospine.errors import WeightsIntegrityError
    from neurospine.models import load_card
    from neurospine.spine.api import body_refiner

    shipped = load_card("spine_body")
    assert body_refiner({"model": "spine_body", "sha256": shipped.sha256}, 1) is not None
    with pytest.raises(WeightsIntegrityError, match="calibrated together"):
        body_refiner({"model": "spine_body", "sha256": "0" * 64}, 1)


def test_binary_targets_of_real_and_synthetic_patches():
    from neurospine.spine.body_training import binary_target

    body = np.array([[0, 1, D.IGNORE]], dtype=np.uint8)  # group 0 = body, 1 = anything else
    assert binary_target(body, "body").tolist() == [[1, 0, D.IGNORE]]
    full = np.array([[C.CORPUS, C.ENDPLATE, C.DISC, C.BG, D.IGNORE]], dtype=np.uint8)
    assert binary_target(full, "full").tolist() == [[1, 1, 0, 0, D.IGNORE]]
    with pytest.raises(ValueError, match="no body target"):
        binary_target(body, "disc")


def test_the_lumbar_card_pins_the_shipped_refiner_and_its_own_semantic_network():
    from neurospine.models import list_cards, load_card

    if not any(c.name == "spine_semantic_lumbar" for c in list_cards()):
        pytest.skip("lumbar variant not shipped")
    lumbar, default, body = load_card("spine_semantic_lumbar"), load_card("spine_semantic"), load_card("spine_body")
    assert lumbar.inputs["body_refiner"]["sha256"] == body.sha256
    # the variant was measured on the 0.3.0 network: it keeps that file while the default moves on
    assert lumbar.file != default.file and lumbar.sha256 != default.sha256
    assert "body_refiner" not in default.inputs  # the default stays refiner-free (cervical bodies)
