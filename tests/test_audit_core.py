"""The method core at its edges (issue 28): which convs ``convert`` may replace, inputs that
``nn.Conv2d`` refuses or computes, FLOP counts after hyperplane edits, strict booleans, and one-line
errors or warnings at every point of misuse. Compared with ``nn.Conv2d``, the per-patch loop of
tests/reference.py and hand counts."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference import reference_haste_conv
from test_dropin import PATHS, rel_error
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import haste
from haste import HasteConv2d, HasteSettings
from haste.compressed import haste_conv2d_compressed
from haste.functional import haste_conv2d


def reference(layer, x):
    out, _ = reference_haste_conv(
        x, layer.weight, layer.bias, layer.stride, layer.padding, layer.hyperplanes, layer.patch_size
    )
    return out


# --- convert replaces only convs that compute what nn.Conv2d computes --------------------------------
class StdConv2d(nn.Conv2d):
    """A weight-standardised conv (as timm's StdConv2d): its own forward."""

    def forward(self, x):
        weight = self.weight - self.weight.mean(dim=(1, 2, 3), keepdim=True)
        weight = weight / (self.weight.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class DoubledConv2d(nn.Conv2d):
    """Overrides ``_conv_forward`` only (as some same-padding convs do)."""

    def _conv_forward(self, x, weight, bias):
        return super()._conv_forward(x, 2 * weight, bias)


class NamedConv2d(nn.Conv2d):
    """A subclass that keeps nn.Conv2d's forward: safe to replace."""


@pytest.mark.parametrize("custom", [StdConv2d, DoubledConv2d])
def test_convert_leaves_convs_with_their_own_forward_dense(custom):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), custom(8, 8, 3, padding=1), NamedConv2d(8, 8, 3, padding=1)
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    converted = haste.convert(model, 4)
    assert type(converted[1]) is custom and isinstance(converted[2], HasteConv2d)
    table = haste.summary(converted)
    assert table.haste.tolist() == [False, False, True]
    assert "overrides" in table.reason[1] and custom.__name__ in table.reason[1]
    with torch.no_grad():
        hidden = model[0](x)
        assert torch.equal(converted[1](hidden), model[1](hidden))  # its own forward, still
    with pytest.raises(ValueError, match="overrides"):
        HasteConv2d.from_conv(custom(8, 8, 3))


def test_convert_leaves_weight_normalised_convs_dense():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old weight_norm is deprecated
        old_style = torch.nn.utils.weight_norm(nn.Conv2d(8, 8, 3, padding=1))
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), weight_norm(nn.Conv2d(8, 8, 3, padding=1)), old_style
    )
    x = torch.randn(1, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    # in place: torch cannot deepcopy the old weight_norm's computed weight
    converted = haste.convert(model, 4, inplace=True)
    table = haste.summary(converted)
    assert not table.haste.any()
    assert "parametrised" in table.reason[1] and "hook" in table.reason[2]
    with torch.no_grad():
        assert torch.equal(converted(x), expected)
    with pytest.raises(ValueError, match="parametrised"):
        HasteConv2d.from_conv(model[1])


# --- inputs nn.Conv2d refuses, or computes --------------------------------------------------------
@pytest.mark.parametrize("execution,inference", PATHS)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_integer_inputs_are_refused_as_nn_conv2d_refuses_them(execution, inference, dtype):
    conv = nn.Conv2d(4, 4, 3, padding=1)
    layer = HasteConv2d.from_conv(conv, 2)
    layer.execution = execution
    x = torch.randint(0, 255, (1, 4, 6, 6), dtype=dtype)
    with pytest.raises(RuntimeError):
        conv(x)
    with torch.set_grad_enabled(not inference), pytest.raises(TypeError, match="floating-point"):
        layer(x)
    with pytest.raises(TypeError, match="floating-point"):
        haste_conv2d(x, conv.weight, None, (1, 1), (1, 1), layer.hyperplanes, 3)


@pytest.mark.parametrize("execution,inference", PATHS)
def test_float64_inputs_into_a_float32_layer(execution, inference):
    conv = nn.Conv2d(6, 4, 3, padding=1)
    layer = HasteConv2d.from_conv(conv, 3, seed=4)  # float32
    layer.execution = execution
    x = torch.randn(2, 6, 7, 7, dtype=torch.float64)
    with torch.set_grad_enabled(not inference):
        out = layer(x)
    assert out.dtype == torch.float64
    expected, _ = reference_haste_conv(
        x, conv.weight.double(), conv.bias.double(), (1, 1), (1, 1), layer.hyperplanes.double(), 3
    )
    assert rel_error(out, expected) < 1e-10


@pytest.mark.parametrize("execution,inference", PATHS)
def test_inputs_near_float32s_maximum_stay_finite(execution, inference):
    conv = nn.Conv2d(8, 4, 3, padding=1, bias=False)
    layer = HasteConv2d.from_conv(conv, 3, seed=1)
    layer.weight.data.mul_(1e-3)  # dense sums stay finite
    layer.execution = execution
    x = torch.randn(2, 8, 7, 7)
    x[:, 4:] = x[:, :4]  # channel copies: buckets with members, whatever the rounding
    huge = x * 2.0**125  # up to ~2e38: sums over channels or window pixels overflow float32
    assert torch.isfinite(huge).all() and huge.abs().max() > 1e38
    with torch.set_grad_enabled(not inference):
        dense = F.conv2d(huge, layer.weight, None, 1, 1)
        out, ordinary = layer(huge), layer(x)
    assert torch.isfinite(dense).all()
    assert torch.isfinite(out).all()
    assert torch.equal(out, ordinary * 2.0**125)  # hashing and merging commute with powers of two
    expected = reference(layer.double(), huge.double()).float()
    assert rel_error(out, expected) < 1e-5


def test_a_finite_input_with_an_infinity_elsewhere_is_still_scaled():
    layer = HasteConv2d.from_conv(nn.Conv2d(8, 4, 3, padding=1, bias=False), 3, seed=1)
    layer.weight.data.mul_(1e-3)
    x = torch.randn(1, 8, 12, 12)
    x[:, 4:] = x[:, :4]
    huge = x * 2.0**125
    huge[0, 0, 11, 11] = float("inf")  # read by the bottom-right tiles only
    with torch.no_grad():
        out = layer(huge)
    dense = F.conv2d(huge, layer.weight, None, 1, 1)
    finite = torch.isfinite(dense)
    assert (~finite).any() and torch.equal(torch.isfinite(out), finite)


# --- FLOP counts follow the hyperplanes as they are now -------------------------------------------
def test_hash_flops_follow_loaded_and_edited_hyperplanes():
    # 5x5 input, 3x3 conv, pad 1, P=3: windows of 25 + 20 + 20 + 16 = 81 pixels (see test_flops.py)
    c_in, num_hyperplanes = 4, 3
    layer = HasteConv2d.from_conv(nn.Conv2d(c_in, 2, 3, 1, 1), num_hyperplanes, patch_size=3)
    x = torch.randn(1, c_in, 5, 5)

    def hash_flops():
        layer.reset_stats()
        with torch.no_grad():
            layer(x)
        return layer.stats.hash

    drawn = hash_flops()  # fills the cost constants
    assert drawn < c_in * 81 * num_hyperplanes  # sparsity 2/3: some entries are zero
    ones = torch.ones_like(layer.hyperplanes)
    layer.load_state_dict({**layer.state_dict(), "hyperplanes": ones})  # same shape
    assert hash_flops() == c_in * 81 * num_hyperplanes
    with torch.no_grad():
        layer.hyperplanes[:, 0] = 0  # in place
    assert hash_flops() == c_in * 81 * (num_hyperplanes - 1)
    layer.hyperplanes.data.fill_(-1.0)  # through .data: no version bump
    assert hash_flops() == c_in * 81 * num_hyperplanes
    layer.hyperplanes = torch.zeros_like(ones)  # a new tensor
    assert hash_flops() == 0


# --- booleans are booleans ---------------------------------------------------------------------------
def small_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))


def test_merging_switches_take_booleans_only():
    model = haste.convert(small_model(), 4)
    layer = model[2]
    with pytest.raises(ValueError, match="enabled must be True or False, not 'False'"):
        haste.set_merging(model, "False")
    assert layer.merge is True
    with pytest.raises(ValueError, match="merge must be True or False"):
        layer.merge = "no"
    with pytest.raises(ValueError, match="record_patches must be True or False"):
        haste.reset_stats(model, record_patches="yes")
    haste.set_merging(model, np.False_)
    assert layer.merge is False
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        assert torch.equal(model(x), small_model_dense(model)(x))
    layer.merge = np.True_
    assert layer.merge is True


def small_model_dense(model):
    return haste.revert(model)


def test_numpy_booleans_are_booleans():
    assert HasteConv2d(4, 4, 3, centre=np.False_).centre is False
    settings = HasteSettings(centre=np.False_, include_pointwise=np.True_)
    assert settings.centre is False and settings.include_pointwise is True
    layer = HasteConv2d(4, 4, 3)
    layer.centre = np.bool_(False)
    assert layer.centre is False
    with pytest.raises(ValueError, match="centre must be True or False"):
        HasteConv2d(4, 4, 3, centre=np.int64(0))


# --- one-line errors or warnings at the point of misuse -----------------------------------------------
def test_evaluate_over_empty_batches_only_is_refused():
    model = haste.convert(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Flatten()), 4)
    batches = [(torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.long))] * 2
    with pytest.raises(ValueError, match="no images to evaluate"):
        haste.evaluate(model, batches, progress=False)


def test_a_directly_built_layer_takes_padding_strings():
    layer = HasteConv2d(4, 3, 3, padding="same", num_hyperplanes=30, sparsity=0.0)
    conv = nn.Conv2d(4, 3, 3, padding=1)
    conv.weight, conv.bias = layer.weight, layer.bias
    x = torch.randn(1, 4, 7, 7)
    with torch.no_grad():
        assert rel_error(layer(x), conv(x)) < 1e-5  # random channels: no two share a code at L = 30
    assert layer.padding == (1, 1) and HasteConv2d(4, 3, 3, padding="valid").padding == (0, 0)
    with pytest.raises(ValueError, match="not supported"):
        HasteConv2d(4, 3, 2, padding="same")  # asymmetric


@pytest.mark.parametrize("function", [haste_conv2d, haste_conv2d_compressed])
def test_the_functions_take_int_strides_and_check_the_patch_size(function):
    weight = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64)
    planes = HasteConv2d(5, 4, 3, stride=2, num_hyperplanes=2, seed=3).hyperplanes.double()  # 7x7 windows
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    expected, _ = reference_haste_conv(x, weight, bias, (2, 2), (1, 1), planes, 3)
    out, _ = function(x, weight, bias, 2, 1, planes, 3)
    assert rel_error(out, expected) < 1e-10
    with pytest.raises(ValueError, match="patch_size must be an integer >= 1, not 0"):
        function(x, weight, bias, (1, 1), (1, 1), torch.ones(1, 2, dtype=torch.float64), 0)
    with pytest.raises(ValueError, match="stride must be"):
        function(x, weight, bias, (2, 2, 2), 1, planes, 3)


def test_random_grouping_and_the_compressed_path_are_refused_when_set():
    layer = HasteConv2d(4, 4, 3, grouping="random")
    with pytest.raises(ValueError, match="random"):
        layer.execution = "compressed"
    assert layer.execution == "gemm"
    layer.grouping = "lsh"
    layer.execution = "compressed"
    with pytest.raises(ValueError, match="compressed"):
        layer.grouping = "random"
    assert layer.grouping == "lsh"
    model = haste.convert(small_model(), 4, skip=0)
    model[2].grouping = "random"
    with pytest.raises(ValueError, match="random"):
        haste.set_execution(model, "compressed")
    assert [layer.execution for _, layer in haste.haste_layers(model)] == ["gemm", "gemm"]  # none changed


def test_convert_warns_when_skip_or_the_model_leaves_it_nothing_to_do():
    with pytest.warns(UserWarning, match="'nothing.*' matches no conv"):
        converted = haste.convert(small_model(), 4, skip=["nothing.*", "2"])
    assert haste.summary(converted).haste.tolist() == [True, False]
    with pytest.warns(UserWarning, match="skip=5 .* 2 convs"):
        haste.convert(small_model(), 4, skip=5)
    with pytest.warns(UserWarning, match="skip=0"):
        bare = haste.convert(nn.Conv2d(3, 4, 3), 4)
    assert not isinstance(bare, HasteConv2d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(haste.convert(nn.Conv2d(3, 4, 3), 4, skip=0), HasteConv2d)
        haste.convert(small_model(), 4)
        haste.convert(small_model(), 4, skip=2)
        haste.convert(small_model(), 4, skip=["0"])


def test_every_check_is_one_line():
    errors = []
    for attempt in (
        lambda: HasteConv2d(4, 4, 2, padding="same"),
        lambda: haste_conv2d(
            torch.randn(1, 4, 6, 6), torch.randn(4, 4, 3, 3), None, 1, 1, torch.ones(1, 2), 0
        ),
        lambda: haste.set_merging(small_model(), "False"),
    ):
        with pytest.raises((ValueError, TypeError)) as error:
            attempt()
        errors.append(str(error.value))
    assert all(message and "\n" not in message for message in errors)
