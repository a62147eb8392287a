import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurospine.nn import augment  # noqa: E402
from neurospine.nn.checkpoint import (  # noqa: E402
    average_weights_from_onnx,
    load_checkpoint,
    save_checkpoint,
)
from neurospine.nn.export import export_onnx  # noqa: E402
from neurospine.nn.unet import UNet  # noqa: E402


@pytest.mark.parametrize("dims,shape", [(2, (1, 2, 32, 48)), (3, (1, 1, 16, 16, 32))])
def test_unet_keeps_spatial_size(dims, shape):
    net = UNet(shape[1], 4, base=4, depth=3, dims=dims)
    assert net(torch.zeros(shape)).shape == (shape[0], 4, *shape[2:])


def test_onnx_export_matches_torch_on_other_sizes(tmp_path):
    import onnxruntime as ort

    net = UNet(1, 3, base=4, depth=3).eval()
    sha = export_onnx(net, torch.randn(1, 1, 32, 32), tmp_path / "m.onnx")
    assert len(sha) == 64
    x = torch.randn(2, 1, 48, 64)
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), atol=1e-3)


def test_checkpoint_round_trip_restores_weights_and_step(tmp_path):
    net = UNet(1, 2, base=4, depth=2)
    opt = torch.optim.Adam(net.parameters())
    save_checkpoint(tmp_path / "c.pt", net, opt, 17, {"best": 0.5})
    other = UNet(1, 2, base=4, depth=2)
    step, extra = load_checkpoint(tmp_path / "c.pt", other, torch.optim.Adam(other.parameters()))
    assert step == 17 and extra == {"best": 0.5}
    for a, b in zip(net.state_dict().values(), other.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert load_checkpoint(tmp_path / "missing.pt", other) == (0, {})


def test_contrast_randomize_stays_in_unit_range_and_is_seeded():
    img = np.linspace(0, 1, 4096, dtype=np.float32).reshape(64, 64)
    a = augment.contrast_randomize(img, np.random.default_rng(3))
    b = augment.contrast_randomize(img, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0 and a.dtype == np.float32
    np.testing.assert_allclose(augment.invert(img), 1 - img)


def test_weight_average_with_an_onnx_model(tmp_path):
    torch.manual_seed(0)
    a, b = UNet(1, 2, base=4, depth=2).eval(), UNet(1, 2, base=4, depth=2).eval()
    with torch.no_grad():  # trained-like weights: the exporter merges identical fresh norm tensors
        for prm in b.parameters():
            prm.add_(0.1 * torch.randn_like(prm))
    export_onnx(b, torch.randn(1, 1, 16, 16), tmp_path / "b.onnx")
    expected = {k: 0.75 * v + 0.25 * b.state_dict()[k] for k, v in a.state_dict().items()}
    n = average_weights_from_onnx(tmp_path / "b.onnx", a, 0.25)
    assert n == len(expected)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    with pytest.raises(ValueError, match="average weight"):
        average_weights_from_onnx(tmp_path / "b.onnx", a, 1.5)
