"""Outline calibration (per-group logit offsets) with the tiny threshold model on a blurred phantom."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from neurospine.io import Volume
from neurospine.spine import calibration as K
from neurospine.spine import classes as C
from neurospine.spine.data import EvalCase
from neurospine.spine.semantic import logit_bias_vector, predict_classes
from tests.unit.test_spine_support import save_conv1x1


def _body_model(folder):
    """1x1 conv: corpus logit 10 x - 3 (corpus where the normalised intensity > 0.3), background 0."""
    from neurospine.inference.onnx import session_for_file

    slope = np.zeros((C.N_CLASSES, 3, 1, 1), dtype=np.float32)
    bias = np.full(C.N_CLASSES, -100.0, dtype=np.float32)
    bias[C.BG] = 0.0
    slope[C.CORPUS, 1, 0, 0], bias[C.CORPUS] = 10.0, -3.0
    save_conv1x1(folder / "m.onnx", slope, bias)
    return session_for_file(folder / "m.onnx", threads=1)


def _blurred_case() -> EvalCase:
    """Five bodies with soft edges on a dark background; the reference is the sharp body, whose edge lies at
    half the body intensity, so a model that calls everything above 0.3 of it corpus draws bodies too large."""
    data = np.zeros((60, 200, 12), dtype=np.float32)
    for k in range(5):
        data[15:45, 20 + 35 * k : 45 + 35 * k, 2:10] = 1.0
    ref = data > 0.5
    blurred = ndimage.gaussian_filter(data, sigma=(2.0, 2.0, 0.0)).astype(np.float32)
    affine = np.array([[0, 0, 3.0, 0], [-1.0, 0, 0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1]])
    return EvalCase("phantom", "test", Volume(blurred, affine), Volume(ref.astype(np.uint8), affine), None, [])


def test_logit_bias_vector_maps_names_and_rejects_unknown_classes():
    v = logit_bias_vector({"corpus": -1.0, "disc": -0.5})
    assert v is not None and v[C.CORPUS] == -1.0 and v[C.DISC] == -0.5 and v[C.BG] == 0.0
    assert logit_bias_vector(None) is None and logit_bias_vector({}) is None
    with pytest.raises(ValueError, match="unknown classes"):
        logit_bias_vector({"vertebra": 1.0})


def test_a_negative_corpus_offset_shrinks_the_corpus(tmp_path):
    sess = _body_model(tmp_path)
    img = np.asarray(_blurred_case().image.data)
    plain = predict_classes(sess, img, 3.0)
    shrunk = predict_classes(sess, img, 3.0, logit_bias=logit_bias_vector({"corpus": -2.0}))
    assert (plain == C.CORPUS).any()
    assert (shrunk == C.CORPUS).sum() < (plain == C.CORPUS).sum()
    assert not ((shrunk == C.CORPUS) & (plain != C.CORPUS)).any()


def test_labelled_region_and_tie_break():
    ref = np.zeros((10, 10, 10), bool)
    ref[4:6, 3:5, 5] = True
    region = K.labelled_region(ref, margin_vox=2)
    assert region[2:8, 1:7, 3:8].all() and region.sum() == 6 * 6 * 5
    assert not K.labelled_region(np.zeros((3, 3, 3), bool)).any()
    assert K.choose_offset({0.0: 0.80, -1.0: 0.85, -2.0: 0.85}) == -1.0
    assert K.choose_offset({0.0: 0.90, -1.0: 0.85}) == 0.0


def test_calibration_finds_the_offset_that_matches_a_tighter_reference(tmp_path):
    sess = _body_model(tmp_path)
    res = K.calibrate(sess, {"body": [_blurred_case()]}, offsets=(0.0, -1.0, -2.0, -3.0))
    table = {float(k): v for k, v in res["mean_dice_by_offset"]["body"].items()}
    chosen = res["logit_bias"]["corpus"]
    assert chosen < 0 and res["logit_bias"]["endplate"] == chosen
    assert table[chosen] > table[0.0] + 0.02
    # written into a card and read back by the pipeline's helper
    card = tmp_path / "spine_semantic.json"
    card.write_text(json.dumps({"name": "spine_semantic", "inputs": {"inplane_mm": 1.0}, "notes": "{}"}))
    K.write_into_card(card, res)
    got = json.loads(card.read_text())
    assert got["inputs"]["logit_bias"] == res["logit_bias"]
    assert "outline_calibration" in json.loads(got["notes"])
