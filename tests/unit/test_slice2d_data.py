"""Training-target construction (pseudo-discs, posterior split, ignore rows) and the marginal loss."""

from __future__ import annotations

import numpy as np
import pytest

from neurospine.slice2d import data as d


def _two_bodies() -> np.ndarray:
    lab = np.zeros((120, 80), np.uint8)
    lab[20:50, 20:60] = 1
    lab[60:90, 22:62] = 2
    return lab


def test_pseudo_disc_between_bodies() -> None:
    t = d.pseudo_disc_target(_two_bodies(), 1.0)
    assert (t[20:50, 20:60] == d.BODY).all() and (t[60:90, 22:62] == d.BODY).all()
    # the gap rows 50..59 inside both bodies' columns are disc (minus a one-pixel band)
    assert (t[52:58, 25:58] == d.DISC).all()
    # far from the spine but within the labelled rows: definite background
    assert t[40, 79] in (d.BG, d.BG_OR_DISC)
    assert t[40, 0] == d.BG
    # rows above the top body / below the bottom body are ignored (unlabelled vertebrae there)
    assert (t[:15] == d.IGNORE).all() and (t[95:] == d.IGNORE).all()


def test_full_target_codes() -> None:
    lab = np.zeros((50, 20), np.uint8)
    lab[10:20, 5:15] = 2  # body
    lab[20:24, 5:15] = 1  # disc
    t = d.full_target(lab)
    assert (t[10:20, 5:15] == d.BODY).all() and (t[20:24, 5:15] == d.DISC).all()
    assert t[15, 0] == d.BG and (t[:8] == d.IGNORE).all() and (t[27:] == d.IGNORE).all()


def test_split_posterior_keeps_anterior_column() -> None:
    m = np.zeros((100, 100), bool)
    for r0 in (10, 40, 70):
        m[r0 : r0 + 20, 10:40] = True  # bodies (anterior = low columns)
        m[r0 + 5 : r0 + 15, 60:75] = True  # spinous processes behind them
    bodies, posterior = d.split_posterior(m)
    assert bodies[:, :50].sum() == m[:, :50].sum() and not bodies[:, 50:].any()
    assert posterior[:, 50:].sum() == m[:, 50:].sum()
    assert d.plausible_bodies(bodies)
    assert not d.plausible_bodies(m[:, :50] & (np.arange(100)[:, None] < 30))  # one body only


def test_marginal_loss_prefers_bg_or_disc() -> None:
    torch = pytest.importorskip("torch")
    from neurospine.slice2d.training import loss_fn

    target = torch.full((1, 4, 4), d.BG_OR_DISC, dtype=torch.long)
    ok = torch.tensor([False])

    def logits_for(cls: int) -> object:
        x = torch.zeros(1, 3, 4, 4)
        x[:, cls] = 10.0
        return x

    # predicting disc or background where only "bg or disc" is known costs the same; body costs more
    l_bg, l_disc, l_body = (float(loss_fn(logits_for(c), target, ok)) for c in (0, 2, 1))
    assert l_bg == pytest.approx(l_disc, abs=1e-4)
    assert l_body > l_bg + 1.0
    ignore = torch.full((1, 4, 4), d.IGNORE, dtype=torch.long)
    assert float(loss_fn(logits_for(1), ignore, ok)) == pytest.approx(float(loss_fn(logits_for(0), ignore, ok)))


def test_synthetic_outline_band_is_ignored() -> None:
    pytest.importorskip("torch")
    from neurospine.slice2d.training import ignore_outline_band

    t = np.zeros((12, 8), np.uint8)
    t[2:6, 2:6] = d.BODY
    t[6:8, 2:6] = d.DISC
    out = ignore_outline_band(t, 1)
    # interior pixels keep their labels, pixels one step inside or outside an outline are ignored
    assert (out[3:5, 3:5] == d.BODY).all() and (out[2, 2:6] == d.IGNORE).all()  # 4x4 body: 2x2 core kept
    assert out[3, 0] == d.BG and out[11, 7] == d.BG  # two pixels away from any outline
    assert out[1, 3] == d.IGNORE and out[8, 3] == d.IGNORE  # just outside body / disc
    assert (out[6:8, 2:6] == d.IGNORE).all()  # a 2-pixel disc is all outline
    wide = np.zeros((12, 12), np.uint8)
    wide[2:10, 2:10] = d.BODY
    band = ignore_outline_band(wide, 1)
    assert band[5, 5] == d.BODY and band[2, 5] == d.IGNORE and band[1, 5] == d.IGNORE and band[0, 5] == d.BG
    assert ignore_outline_band(t, 0) is t


def test_keep_modalities_filters_and_rejects_unknown_names() -> None:
    from neurospine.slice2d.training import keep_modalities, parse_args

    px = np.zeros((4, 4), np.float32)
    tgt = np.zeros((4, 4), np.uint8)
    samples = [d.Sample(px, tgt, f"s{i}", "src", m, False) for i, m in enumerate(("mr", "ct", "xray", "mr"))]
    assert [s.subject for s in keep_modalities(samples, "mr")] == ["s0", "s3"]
    assert [s.subject for s in keep_modalities(samples, " CT, xray ")] == ["s1", "s2"]
    assert len(keep_modalities(samples, "mr,ct,xray")) == 4
    with pytest.raises(ValueError, match="pet"):
        keep_modalities(samples, "mr,pet")
    with pytest.raises(SystemExit):
        parse_args(["--modalities", ""])
    assert parse_args(["--modalities", "mr"]).modalities == "mr"


def test_group_weight_overrides_and_errors() -> None:
    from neurospine.slice2d.training import GROUP_WEIGHTS, parse_args, sampling_weights

    args = parse_args(["--group-weight", "vesal_mri2d=0.5", "--group-weight", "fewshot_ct_sag=0"])
    names = ["fcs_vb2_chu_lumbar_t2", "fewshot_ct_sag", "synth", "vesal_mri2d"]
    w = sampling_weights(names, args)
    raw = np.array([GROUP_WEIGHTS["fcs_vb2_chu_lumbar_t2"], 0.0, GROUP_WEIGHTS["synth"], 0.5])
    assert w == pytest.approx(raw / raw.sum())
    default = sampling_weights(names, parse_args([]))
    assert default[3] < w[3] and default[1] > 0
    for bad in ("vesal_mri2d", "nosuchset=0.3", "vesal_mri2d=abc", "vesal_mri2d=-1", "vesal_mri2d=nan"):
        with pytest.raises(SystemExit):
            parse_args(["--group-weight", bad])
    with pytest.raises(SystemExit):
        parse_args(["--disc-dice-weight", "-0.1"])


def test_disc_dice_weight_scales_only_the_disc_term() -> None:
    import torch

    from neurospine.slice2d.training import loss_fn

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 16, 16)
    target = torch.randint(0, 3, (2, 16, 16))
    ok = torch.tensor([True, True])
    base = loss_fn(logits, target, ok, 0.0)
    half = loss_fn(logits, target, ok, 0.5)
    one = loss_fn(logits, target, ok, 1.0)
    assert float(one - base) == pytest.approx(2 * float(half - base), rel=1e-5)
    assert float(half - base) > 0
    no_disc = torch.tensor([False, False])
    assert float(loss_fn(logits, target, no_disc, 1.0) - loss_fn(logits, target, no_disc, 0.0)) == pytest.approx(
        0.0, abs=1e-6
    )


def test_version_option_names_the_exported_card() -> None:
    from neurospine.slice2d.training import MODEL_VERSION, parse_args

    assert parse_args([]).version == MODEL_VERSION
    assert parse_args(["--version", "0.4.0"]).version == "0.4.0"
