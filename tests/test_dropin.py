"""HasteConv2d as a drop-in nn.Conv2d at the edges: weight edits, non-finite inputs, half types,
autocast, empty batches. Compared with nn.Conv2d and the per-patch loop of tests/reference.py."""

import os
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from reference import reference_haste_conv
from torch import nn

import haste
from haste import HasteConv2d
from haste.compressed import haste_conv2d_compressed
from haste.functional import haste_conv2d

PATHS = [
    ("gemm", False),
    ("gemm", True),
    ("compressed", False),
    ("compressed", True),
]  # (execution, inference)


def rel_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def redundant_input(n, channels, size, dtype=torch.float64):
    """Half the channels near copies of the others, so that buckets have members."""
    x = torch.randn(n, channels, size, size, dtype=dtype)
    half = channels // 2
    x[:, half : 2 * half] = x[:, :half] + 1e-3 * torch.randn(n, half, size, size, dtype=dtype)
    return x


def reference(layer, x):
    out, _ = reference_haste_conv(
        x,
        layer.weight,
        layer.bias,
        layer.stride,
        layer.padding,
        layer.hyperplanes,
        layer.patch_size,
        layer.centre,
    )
    return out


# --- kept weight copies follow every way a weight can change ------------------------------------------
def _swap_output_channels(layer):
    layer.weight.data[[0, 1]] = layer.weight.data[[1, 0]].clone()


WEIGHT_EDITS = {
    "weight.data.mul_": lambda layer: layer.weight.data.mul_(-2),  # EMA-style update
    "weight.data.copy_": lambda layer: layer.weight.data.copy_(torch.randn_like(layer.weight)),
    "weight.data[:, c].zero_": lambda layer: layer.weight.data[:, 2].zero_(),  # pruning
    "swap two filters": _swap_output_channels,  # same values, other places
    "no_grad copy_": lambda layer: layer.weight.copy_(torch.randn_like(layer.weight)),
    "load_state_dict": lambda layer: layer.load_state_dict(
        {**layer.state_dict(), "weight": torch.randn_like(layer.weight)}
    ),
    "new parameter": lambda layer: setattr(layer, "weight", nn.Parameter(torch.randn_like(layer.weight))),
    "weight.data = ...": lambda layer: setattr(layer.weight, "data", torch.randn_like(layer.weight)),
}


@pytest.mark.parametrize("execution", ["gemm", "compressed"])
@pytest.mark.parametrize("edit", list(WEIGHT_EDITS))
def test_kept_weight_copies_follow_every_weight_change(execution, edit):
    layer = HasteConv2d.from_conv(nn.Conv2d(6, 5, 3, padding=1), 3, sparsity=0.5, seed=1).double()
    layer.execution = execution
    x = redundant_input(2, 6, 7)
    with torch.no_grad():
        assert rel_error(layer(x), reference(layer, x)) < 1e-10  # the copy is kept from here on
        WEIGHT_EDITS[edit](layer)
        assert rel_error(layer(x), reference(layer, x)) < 1e-10


# --- non-finite inputs -----------------------------------------------------------------------------------
@pytest.mark.parametrize("execution,inference", PATHS)
@pytest.mark.parametrize("centre", [True, False])
def test_non_finite_inputs_change_no_output_that_conv2d_leaves_finite(execution, inference, centre):
    conv = nn.Conv2d(8, 5, 3, 1, 1).double()
    # one dense hyperplane: every projection reads every pixel, and channels collide often
    layer = HasteConv2d.from_conv(conv, 1, sparsity=0.0, seed=2, centre=centre).double()
    layer.execution = execution
    x = redundant_input(2, 8, 9)
    x[0, 1, 4, 4] = float("nan")
    x[0, 5, 1, 7] = float("inf")
    x[1, 2, 6, 0], x[1, 6, 6, 0] = float("-inf"), float("inf")  # one pixel, two channels
    with torch.set_grad_enabled(not inference):
        out = layer(x)
    dense = conv(x)
    finite = torch.isfinite(dense)
    assert (~finite).any() and finite.any()
    assert torch.equal(torch.isfinite(out), finite)
    expected = reference(layer, x)
    assert torch.equal(torch.isfinite(expected), finite)
    assert rel_error(out[finite], expected[finite]) < 1e-10
    assert layer.stats.conv < layer.stats.dense  # the finite channels were still merged


def test_tiles_without_non_finite_values_are_unchanged():
    layer = HasteConv2d.from_conv(nn.Conv2d(8, 4, 3, 1, 1), 4, seed=3)
    x = redundant_input(1, 8, 9, torch.float32)
    with torch.no_grad():
        clean = layer(x)
        x[0, 3, 0, 0] = float("nan")  # in the window of the top-left tile (outputs 0..2 x 0..2) only
        dirty = layer(x)
    assert torch.equal(dirty[..., 3:, :], clean[..., 3:, :]) and torch.equal(
        dirty[..., :, 3:], clean[..., :, 3:]
    )


def test_evaluate_counts_non_finite_logits_as_wrong_and_warns_once():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 10, 3, padding=1), nn.AdaptiveAvgPool2d(1)
    )
    model.append(nn.Flatten())
    converted = haste.convert(model, 4)
    nan_images = torch.full((4, 3, 8, 8), float("nan"))
    batches = [(nan_images, torch.zeros(4, dtype=torch.long))] * 2  # argmax of a NaN row is 0
    for network in (model, converted):
        with pytest.warns(RuntimeWarning, match="8 of 8 images gave non-finite logits") as caught:
            result = haste.evaluate(network, batches, progress=False)
        assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
        assert result.accuracy == 0.0
    # every channel of every patch is non-finite: none is merged, nothing is saved
    assert result.report.totals()["flops_reduction_no_overhead"] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        finite = haste.evaluate(
            converted, [(torch.randn(4, 3, 8, 8), torch.zeros(4, dtype=torch.long))], False
        )
    assert finite.images == 4


# --- half types, autocast, empty batches ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("execution,inference", PATHS)
def test_half_types_follow_the_reference_as_closely_as_dense_does(dtype, execution, inference):
    conv = nn.Conv2d(16, 8, 3, 1, 1)
    layer = HasteConv2d.from_conv(conv, 4, seed=1).to(dtype)  # weight, bias and hyperplanes in dtype
    layer.execution = execution
    x = torch.randn(2, 16, 12, 12).to(dtype)  # random channels: many projections near zero
    with torch.set_grad_enabled(not inference):
        out = layer(x)
        dense = F.conv2d(x, layer.weight, layer.bias, 1, 1)
    assert out.dtype == dtype
    # the exact algorithm on the same (rounded) values, in float32
    exact_inputs = (x.float(), layer.weight.float(), layer.bias.float())
    expected, _ = reference_haste_conv(*exact_inputs, (1, 1), (1, 1), layer.hyperplanes.float(), 3)
    dense_error = rel_error(dense.float(), F.conv2d(*exact_inputs, 1, 1))
    assert rel_error(out.float(), expected) < max(3 * dense_error, 1e-3)  # hashed in bfloat16: 0.1-0.2


def test_autocast_runs_the_layers_in_the_autocast_dtype():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3),
    )
    converted = haste.convert(model, 4)
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        dense, out = model(x), converted(x)
    assert out.dtype == dense.dtype == torch.bfloat16
    # the same as a bfloat16 copy of the converted model, outside autocast
    with torch.no_grad():
        in_bf16 = haste.convert(model, 4).to(torch.bfloat16)(x.to(torch.bfloat16))
    assert rel_error(out.float(), in_bf16.float()) < 1e-2
    with torch.autocast("cpu", dtype=torch.bfloat16):  # with gradients too
        out = converted(x.requires_grad_())
    out.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("execution,inference", PATHS)
def test_an_empty_batch_gives_the_empty_output_of_conv2d(execution, inference):
    conv = nn.Conv2d(4, 6, 3, 2, 1)
    layer = HasteConv2d.from_conv(conv, 3)
    layer.execution = execution
    x = torch.randn(0, 4, 9, 9)
    with torch.set_grad_enabled(not inference):
        out, expected = layer(x), conv(x)
    assert out.shape == expected.shape == (0, 6, 5, 5) and out.dtype == expected.dtype
    assert layer.stats.images == 0 and layer.stats.total == 0


def test_the_functions_take_empty_batches_too():
    weight = torch.randn(6, 4, 3, 3)
    planes = HasteConv2d.from_conv(nn.Conv2d(4, 6, 3, 1, 1), 3).hyperplanes
    for function in (haste_conv2d, haste_conv2d_compressed):
        out, buckets = function(torch.randn(0, 4, 8, 8), weight, None, (1, 1), (1, 1), planes, 3)
        assert out.shape == (0, 6, 8, 8) and buckets.shape == (0, 9)


@pytest.mark.parametrize("execution", ["gemm", "compressed"])
def test_a_forward_keeps_torchs_thread_count(execution):
    """numba's OpenMP pool starts at the first parallel kernel and reset the count torch reports (1
    became 2), overriding the user's torch.set_num_threads for the rest of the process. Checked in a
    fresh interpreter, since only the first kernel of a process does it."""
    script = f"""
import torch
from torch import nn
import haste
torch.set_num_threads(1)
model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))
model = haste.convert(model.eval(), 6)  # the first layer stays dense: torch's pool starts first
haste.set_execution(model, "{execution}")
with torch.inference_mode():
    model(torch.randn(2, 3, 8, 8))
print(torch.get_num_threads())
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = "2"  # a pool larger than torch's count, as on any multi-core machine
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split()[-1] == "1"
