import pytest
import torch
import torchvision
from torch import nn

import haste
from haste import HasteConv2d, zoo


def test_convert_resnet_defaults_and_summary():
    model = zoo.build("cifar10/resnet18").eval()
    converted = haste.convert(model, 10)
    table = haste.summary(converted)
    assert not table.loc[table.layer == "conv1", "haste"].item()  # stem left dense
    pointwise = table[table.kernel == "1x1"]
    assert len(pointwise) == 3 and not pointwise.haste.any()
    assert pointwise.reason.str.contains("1x1").all()
    assert table.haste.sum() == 16
    assert isinstance(model.layer1[0].conv1, nn.Conv2d) and not isinstance(model.layer1[0].conv1, HasteConv2d)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert converted(x).shape == (2, 10)
        haste.set_merging(converted, False)
        assert torch.allclose(converted(x), model(x), atol=1e-5)


def test_include_pointwise_and_named_skip():
    model = zoo.build("cifar10/resnet18")
    converted = haste.convert(model, 8, include_pointwise=True, skip=["conv1", "layer4.*"])
    table = haste.summary(converted).set_index("layer")
    assert table.loc["layer2.0.downsample.0", "haste"]
    assert not table.loc["layer4.1.conv2", "haste"]
    assert table.loc["layer4.1.conv2", "reason"] == "named in skip"


def test_revert_restores_dense_model():
    model = zoo.build("cifar10/vgg11_bn").eval()
    converted = haste.convert(model, 6)
    reverted = haste.revert(converted)
    assert not any(isinstance(m, HasteConv2d) for m in reverted.modules())
    assert set(reverted.state_dict()) == set(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(reverted(x), model(x), atol=1e-6)


def test_set_num_hyperplanes_steers_every_layer_reproducibly():
    converted = haste.convert(zoo.build("cifar10/resnet18"), 14)
    layers = dict(haste.haste_layers(converted))
    first = layers["layer1.0.conv1"].hyperplanes.clone()
    haste.set_num_hyperplanes(converted, 6)
    assert all(layer.num_hyperplanes == 6 for layer in layers.values())
    haste.set_num_hyperplanes(converted, 14)
    assert torch.equal(layers["layer1.0.conv1"].hyperplanes, first)
    # layers draw from different seeds
    assert not torch.equal(layers["layer1.0.conv1"].hyperplanes, layers["layer1.0.conv2"].hyperplanes)


def test_converted_state_dict_roundtrip():
    a = haste.convert(zoo.build("cifar10/resnet18"), 7, seed=3)
    b = haste.convert(zoo.build("cifar10/resnet18"), 12, seed=0)
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize("arch", ["resnet50", "wide_resnet50_2", "vgg11_bn"])
def test_torchvision_models_convert(arch):
    model = torchvision.models.get_model(arch, weights=None).eval()
    converted = haste.convert(model, 8, include_pointwise=arch != "vgg11_bn")
    assert haste.summary(converted).haste.sum() > 0
    with torch.no_grad():
        assert converted(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_unsupported_layers_are_skipped_with_reason():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 8, 3))
    converted = haste.convert(model, 4)
    table = haste.summary(converted)
    assert table.haste.tolist() == [False, False, True]
    assert "grouped" in table.reason[1]


def test_model_without_convs_is_refused():
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        haste.convert(nn.Linear(3, 3), 4)
