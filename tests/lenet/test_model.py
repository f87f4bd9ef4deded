"""The LeNet-5 family: shapes, parameter counts, variants, layers, pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.errors import UserError
from pipeline.lenet.model import VARIANTS, LeNet, LeNetConfig, build_model, count_macs, count_parameters


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_gives_n_logits(name: str) -> None:
    model = build_model(name, 7).eval()
    out = model(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 7)
    assert torch.isfinite(out).all()
    assert count_parameters(model) > 10_000
    assert count_macs(model) > 100_000


def test_lenet5_parameter_count_equals_the_hand_count() -> None:
    # conv1 6*(25+1) + conv2 16*(6*25+1) + fc1 120*(256+1) + fc2 84*(120+1) + fc3 10*(84+1)
    by_hand = 6 * 26 + 16 * 151 + 120 * 257 + 84 * 121 + 10 * 85
    assert by_hand == 44_426
    assert count_parameters(build_model("lenet5", 10)) == by_hand
    # zero_background: no conv biases, so 22 fewer.
    assert count_parameters(build_model("lenet5", 10, zero_background=True)) == by_hand - 22


@pytest.mark.parametrize("name", [n for n in VARIANTS if n not in ("lenet5-bn", "lenet5-sigmoid")])
def test_a_black_background_stays_exactly_zero_through_the_features(name: str) -> None:
    """Every feature cell whose receptive field is all background (0) is exactly 0, whatever the weights."""
    model = build_model(name, 7, mean=0.3, std=0.2, zero_background=True).eval()
    torch.nn.init.normal_(model.layer("conv1").weight)  # any weights: the property is by design
    x = torch.zeros(3, 1, 28, 28)
    x[:, :, 22:, 22:] = torch.rand(3, 1, 6, 6)  # a hand in one corner only (outside even lenet5-k7's first cell)
    with torch.no_grad():
        features = model.features((x - model.mean) / model.std)
    assert features[:, :, 0, 0].abs().max() == 0 and features.abs().max() > 0
    old = build_model(name, 7, mean=0.3, std=0.2).eval()
    with torch.no_grad():
        assert old.features((x - old.mean) / old.std)[:, :, 0, 0].abs().max() > 0  # the artifact it removes


def test_lenet5_layers_are_as_described() -> None:
    model = build_model("lenet5", 10)
    kinds = [(n, type(m).__name__) for n, m in model.features.named_children()]
    assert kinds == [("conv1", "Conv2d"), ("act1", "ReLU"), ("pool1", "AvgPool2d"),
                     ("conv2", "Conv2d"), ("act2", "ReLU"), ("pool2", "AvgPool2d")]
    # Separate, non-inplace activations, so a hook sees the pre-activation tensor intact.
    assert all(not getattr(m, "inplace", False) for m in model.modules())
    assert model.classifier.fc1.in_features == 256
    assert [model.classifier.fc1.out_features, model.classifier.fc2.out_features] == [120, 84]
    # MACs by hand: conv1 24*24*6*25, conv2 8*8*16*150, fc 256*120 + 120*84 + 84*10
    assert count_macs(model) == 24 * 24 * 6 * 25 + 8 * 8 * 16 * 150 + 256 * 120 + 120 * 84 + 84 * 10


def test_variants_differ_in_what_their_name_says() -> None:
    assert isinstance(build_model("lenet5-max", 6).features.pool1, nn.MaxPool2d)
    assert isinstance(build_model("lenet5-tanh", 6).features.act1, nn.Tanh)
    assert isinstance(build_model("lenet5-sigmoid", 6).features.act2, nn.Sigmoid)
    assert build_model("lenet5-deep", 6).conv_layers() == ["conv1", "conv2", "conv3"]
    assert build_model("lenet5-wide", 6).features.conv1.out_channels == 12
    assert hasattr(build_model("lenet5-bn", 6).features, "bn1")
    assert hasattr(build_model("lenet5-dropout", 6).classifier, "drop1")
    classic = build_model("lenet5-classic", 10)
    assert classic.classifier.fc1.in_features == 400  # the 1998 net: 32x32 input, 16@5x5 maps
    shallow = build_model("lenet5-shallow", 6)
    assert shallow.conv_layers() == ["conv1"] and shallow.classifier.fc1.in_features == 6 * 12 * 12
    for name, k, features in (("lenet5-k3", 3, 16 * 5 * 5), ("lenet5-k7", 7, 16 * 2 * 2)):
        model = build_model(name, 6)
        assert model.features.conv1.kernel_size == model.features.conv2.kernel_size == (k, k)
        assert model.classifier.fc1.in_features == features
    assert build_model("lenet5-narrow", 6).features.conv2.out_channels == 8
    def fc(name: str) -> list[str]:
        return [n for n, m in build_model(name, 6).classifier.named_children() if isinstance(m, nn.Linear)]

    assert fc("lenet5-hidden1") == ["fc1", "fc2"] and fc("lenet5-hidden3") == ["fc1", "fc2", "fc3", "fc4"]


def test_new_variants_count_as_by_hand() -> None:
    """Parameters and MACs of the depth and kernel variants, counted by hand (10 classes)."""
    k7 = build_model("lenet5-k7", 10)  # conv1 22x22, pool 11, conv2 5x5, pool 2 (floor): 64 features
    assert count_parameters(k7) == 6 * (49 + 1) + 16 * (6 * 49 + 1) + 120 * 65 + 84 * 121 + 10 * 85
    assert count_macs(k7) == 22 * 22 * 6 * 49 + 5 * 5 * 16 * 294 + 64 * 120 + 120 * 84 + 84 * 10
    shallow = build_model("lenet5-shallow", 10)
    assert count_parameters(shallow) == 6 * 26 + 120 * 865 + 84 * 121 + 10 * 85
    assert count_macs(shallow) == 24 * 24 * 6 * 25 + 864 * 120 + 120 * 84 + 84 * 10
    k3 = build_model("lenet5-k3", 10)  # conv1 26, pool 13, conv2 11, pool 5
    assert count_macs(k3) == 26 * 26 * 6 * 9 + 11 * 11 * 16 * 54 + 400 * 120 + 120 * 84 + 84 * 10


def test_old_settings_load_and_bad_shapes_are_refused() -> None:
    """A checkpoint's settings from before ``kernel`` existed build the same LeNet-5; impossible shapes are one line."""
    old = {"num_classes": 6, "activation": "relu", "pool": "avg", "channels": [6, 16], "conv3": 0, "hidden": [120, 84],
           "batch_norm": False, "dropout": 0.0, "in_size": 28, "pad": 0, "mean": 0.1, "std": 0.3}
    config = LeNetConfig.from_dict(old)
    assert config.kernel == 5 and config.channels == (6, 16)
    assert count_parameters(LeNet(config)) == count_parameters(build_model("lenet5", 6))
    for values, message in (({"channels": (6, 16, 32)}, "1 or 2 conv layers"), ({"kernel": 4}, "must be odd"),
                            ({"channels": (6,), "conv3": 8}, "needs two channels"),
                            ({"kernel": 7, "in_size": 16}, "too small")):
        with pytest.raises(UserError, match=message):
            LeNet(LeNetConfig(**values))


def test_layer_lookup_and_errors() -> None:
    model = build_model("lenet5", 6)
    assert model.layer("act2") is model.features.act2
    assert model.layer("fc1") is model.classifier.fc1
    with pytest.raises(UserError, match="no layer 'conv9'"):
        model.layer("conv9")
    with pytest.raises(UserError, match="unknown model"):
        build_model("resnet", 6)
    with pytest.raises(UserError, match="unknown model setting"):
        LeNetConfig.from_dict({"num_classes": 3, "depth": 9})


def test_input_normalisation_is_inside_the_model() -> None:
    torch.manual_seed(0)
    plain = build_model("lenet5", 3)
    shifted = build_model("lenet5", 3, mean=0.5, std=0.25)
    shifted.load_state_dict({**plain.state_dict(), "mean": torch.tensor(0.5), "std": torch.tensor(0.25)})
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(shifted(x), plain((x - 0.5) / 0.25), atol=1e-6)


@pytest.mark.parametrize("shape", [(256, 6, 24, 24), (700, 16, 10, 10), (2, 6, 7, 9)])
def test_fast_average_pooling_is_bit_identical_to_pytorch(shape) -> None:
    """Values and gradients of the 2x2 fast path equal PyTorch's kernel exactly (odd sizes take PyTorch's)."""
    from pipeline.lenet.model import FAST_POOL_MIN, AvgPool2d

    assert torch.Size(shape).numel() >= FAST_POOL_MIN or shape[-1] % 2  # the fast path is what this tests
    x = (torch.randn(shape, generator=torch.Generator().manual_seed(0)) * 3).requires_grad_()
    upstream = torch.randn(torch.nn.functional.avg_pool2d(x, 2).shape)
    ours, theirs = AvgPool2d(2)(x), nn.AvgPool2d(2)(x)
    assert torch.equal(ours, theirs)
    (g_ours,) = torch.autograd.grad(ours, x, upstream)
    (g_theirs,) = torch.autograd.grad(theirs, x, upstream)
    assert torch.equal(g_ours, g_theirs)
