import pytest
import torch
from reference import reference_haste_conv
from torch import nn

import haste
from haste import HasteConv2d, fused
from haste.compressed import haste_conv2d_compressed


def rel_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


CONFIGS = [  # (c_in, c_out, kernel, stride, padding, bias, height, width, patch)
    (6, 4, 3, 1, 1, True, 8, 8, 3),
    (5, 3, 3, 2, 1, False, 9, 7, 3),
    (4, 2, 1, 1, 0, True, 5, 6, 3),
    (4, 3, 1, 2, 0, False, 7, 7, 2),
    (3, 2, 5, 1, 2, True, 6, 5, 2),
    (7, 4, 3, 1, 0, True, 10, 11, 4),
    (8, 4, 3, 1, 1, True, 4, 4, 5),  # one tile larger than the output
]


# "inference": no gradients, so on CPU the fused numba kernel (haste/fused.py) runs instead of torch ops
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("num_hyperplanes", [1, 3, 40])
@pytest.mark.parametrize("inference", [False, True])
def test_matches_per_patch_loop(config, num_hyperplanes, inference):
    c_in, c_out, k, stride, padding, bias, height, width, patch = config
    conv = nn.Conv2d(c_in, c_out, k, stride, padding, bias=bias).double()
    layer = HasteConv2d.from_conv(conv, num_hyperplanes, sparsity=0.5, patch_size=patch, seed=2).double()
    layer.record_patches = True
    x = torch.randn(2, c_in, height, width, dtype=torch.float64)
    expected, buckets = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, patch
    )
    assert fused.available(x, needs_grad=not inference) == inference  # which path runs
    with torch.set_grad_enabled(not inference):
        out = layer(x)
    assert out.shape == conv(x).shape
    assert rel_error(out, expected) < 1e-10
    assert layer.stats.patches == len(buckets)
    kept = torch.cat([k.flatten() for k in layer.stats.kept_fraction]).sort().values
    assert torch.allclose(kept, (torch.tensor(buckets, dtype=kept.dtype) / c_in).sort().values)
    if num_hyperplanes < 40:
        assert min(buckets) < c_in  # merging did happen, so the comparison means something


@pytest.mark.parametrize("inference", [False, True])
def test_matches_per_patch_loop_float32_channels_last(inference):
    conv = nn.Conv2d(16, 8, 3, 1, 1)
    layer = HasteConv2d.from_conv(conv, 4, patch_size=3, seed=5)
    x = torch.randn(3, 16, 10, 10)
    expected, _ = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3
    )
    with torch.set_grad_enabled(not inference):
        out = layer(x.contiguous(memory_format=torch.channels_last))
    assert rel_error(out, expected) < 1e-5


@pytest.mark.parametrize("inference", [False, True])
def test_without_centring_matches_loop(inference):
    conv = nn.Conv2d(6, 3, 3, 1, 1).double()
    layer = HasteConv2d.from_conv(conv, 3, centre=False).double()
    x = torch.randn(1, 6, 7, 7, dtype=torch.float64)
    expected, _ = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3, centre=False
    )
    with torch.set_grad_enabled(not inference):
        assert rel_error(layer(x), expected) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_merging_off_is_exactly_conv2d(dtype):
    conv = nn.Conv2d(8, 6, 3, 2, 1).to(dtype)
    layer = HasteConv2d.from_conv(conv, 2).to(dtype)
    layer.merge = False
    x = torch.randn(2, 8, 9, 9, dtype=dtype)
    assert torch.equal(layer(x), conv(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride,padding,size", [(1, 1, 11), (2, 1, 12), (1, 0, 9)])
def test_distinct_buckets_give_conv2d(dtype, stride, padding, size):
    conv = nn.Conv2d(8, 5, 3, stride, padding).to(dtype)
    layer = HasteConv2d.from_conv(conv, 40, sparsity=0.0).to(dtype)  # 40 dense +-1 planes: no ties
    x = torch.randn(4, 8, size, size, dtype=dtype)
    out = layer(x)
    assert layer.stats.conv == layer.stats.dense  # every channel in its own bucket
    assert rel_error(out, conv(x)) < 1e-5


def test_sample_does_not_depend_on_batch():
    conv = nn.Conv2d(16, 8, 3, 1, 1)
    layer = HasteConv2d.from_conv(conv, 3)
    x = torch.randn(5, 16, 8, 8)
    batch = layer(x)
    for i in range(5):
        assert torch.allclose(layer(x[i : i + 1])[0], batch[i], rtol=1e-5, atol=1e-6)


def test_centring_makes_codes_shift_invariant():
    from haste.functional import extract_windows
    from haste.hashing import hash_windows
    from haste.tiling import Tiling

    layer = HasteConv2d.from_conv(nn.Conv2d(12, 4, 3, 1, 1), 8)
    x = torch.randn(2, 12, 9, 9).double()
    tiling = Tiling((9, 9), (3, 3), (1, 1), (1, 1), 3)
    shift = torch.randn(2, 1, 9, 9).double() * 5  # a different constant per pixel, same for all channels
    before = hash_windows(extract_windows(x, tiling), layer.hyperplanes)
    after = hash_windows(extract_windows(x + shift, tiling), layer.hyperplanes)
    assert torch.equal(before, after)
    uncentred = hash_windows(extract_windows(x + shift, tiling), layer.hyperplanes, centre=False)
    assert not torch.equal(before, uncentred)


def test_same_seed_same_result_and_state_dict_roundtrip():
    conv = nn.Conv2d(8, 4, 3, 1, 1)
    a = HasteConv2d.from_conv(conv, 5, seed=11)
    b = HasteConv2d.from_conv(conv, 5, seed=11)
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(a(x), b(x))
    assert a.hyperplanes.shape == (25, 5)
    c = HasteConv2d.from_conv(nn.Conv2d(8, 4, 3, 1, 1), 9, seed=99)
    c.load_state_dict(a.state_dict())
    assert c.num_hyperplanes == 5 and torch.equal(c.hyperplanes, a.hyperplanes)
    assert torch.equal(c(x), a(x))


def test_hyperplanes_live_on_the_weights_device():
    # a layer built on another device (convert() of a GPU model does this) must not hash with CPU planes
    conv = nn.Conv2d(8, 4, 3, 1, 1, device="meta")
    layer = HasteConv2d.from_conv(conv, 5)
    assert layer.hyperplanes.device == conv.weight.device
    layer.num_hyperplanes = 7
    assert layer.hyperplanes.device == conv.weight.device and layer.hyperplanes.shape == (25, 7)


def test_statistics_read_between_calls_equal_statistics_read_once():
    # the data-dependent sums are folded in when read: reading mid-way must not count anything twice
    conv = nn.Conv2d(8, 4, 3, 1, 1)
    inputs = [torch.randn(2, 8, 7, 7), torch.randn(3, 8, 5, 5)]
    read_often, read_once = HasteConv2d.from_conv(conv, 3), HasteConv2d.from_conv(conv, 3)
    for x in inputs:
        read_often(x)
        read_often.stats.total  # noqa: B018
        read_once(x)
    assert read_often.stats.counts() == read_once.stats.counts()
    assert read_once.stats.conv < read_once.stats.dense and read_once.stats.filter_merge > 0


@pytest.mark.parametrize("execution", ["gemm", "compressed"])
def test_kept_weight_copies_follow_weight_changes(execution):
    # both paths keep a rearranged copy of the weight: it must follow in-place changes and reloads
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=False)
    layer = HasteConv2d.from_conv(conv, 3)
    layer.execution = execution
    x = torch.randn(2, 6, 7, 7)
    with torch.no_grad():
        first = layer(x)
        layer.weight.mul_(-2)  # HASTE output is linear in the weight
        assert torch.allclose(layer(x), -2 * first, atol=1e-5)
        layer.load_state_dict({"weight": conv.weight / -2, "hyperplanes": layer.hyperplanes})
        assert torch.allclose(layer(x), first, atol=1e-5)


def test_kept_weight_copies_die_with_their_layer():
    # a 1x1 conv's GEMM matrix is a view of the weight: kept carelessly, it would keep the weight alive
    import gc

    from haste import weight_cache

    layer = HasteConv2d.from_conv(nn.Conv2d(4, 4, 1), 3)
    with torch.no_grad():
        layer(torch.randn(1, 4, 6, 6))
    slot = (id(layer.weight), "gemm_matrix")
    assert slot in weight_cache._COPIES
    del layer
    gc.collect()
    assert slot not in weight_cache._COPIES


def test_steering_l_is_reproducible():
    layer = HasteConv2d.from_conv(nn.Conv2d(8, 4, 3, 1, 1), 6, seed=4)
    original = layer.hyperplanes.clone()
    layer.num_hyperplanes = 10
    assert layer.hyperplanes.shape == (25, 10)
    layer.num_hyperplanes = 6
    assert torch.equal(layer.hyperplanes, original)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(4, 4, 3, groups=2),
        nn.Conv2d(4, 4, 3, dilation=2),
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
    ],
)
def test_unsupported_convs_are_refused(conv):
    with pytest.raises(ValueError, match="not supported"):
        HasteConv2d.from_conv(conv)


def test_wrong_input_shapes_are_refused():
    layer = HasteConv2d.from_conv(nn.Conv2d(4, 4, 3, padding=1))
    with pytest.raises(ValueError, match="input channels"):
        layer(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        layer(torch.randn(4, 8, 8))


def test_gradients_flow():
    layer = HasteConv2d.from_conv(nn.Conv2d(4, 4, 3, padding=1), 2)
    layer(torch.randn(1, 4, 6, 6)).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_same_padding_string_is_supported():
    conv = nn.Conv2d(4, 3, 3, padding="same")
    layer = HasteConv2d.from_conv(conv, 30, sparsity=0.0)
    x = torch.randn(1, 4, 7, 7)
    assert rel_error(layer(x), conv(x)) < 1e-5
    assert haste.revert(layer)(x).shape == x[:, :3].shape


def test_random_grouping_control_keeps_bucket_counts():
    from reference import reference_haste_conv

    conv = nn.Conv2d(12, 4, 3, 1, 1).double()
    layer = HasteConv2d.from_conv(conv, 3).double()
    x = torch.randn(2, 12, 7, 7, dtype=torch.float64)
    layer(x)
    lsh_conv = layer.stats.conv
    layer.reset_stats()
    layer.grouping = "random"
    out = layer(x)
    assert layer.stats.conv == lsh_conv  # same number of buckets in every patch
    lsh_out, _ = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3
    )
    assert not torch.allclose(out, lsh_out)  # but other groups
    assert torch.equal(out, layer(x))  # fixed, reproducible groups
    with pytest.raises(ValueError, match="grouping"):  # refused when set, not at the next forward pass
        layer.grouping = "kmeans"
    assert layer.grouping == "random"


@pytest.mark.parametrize("config", CONFIGS)
def test_compressed_path_matches_loop_and_eval_path(config):
    c_in, c_out, k, stride, padding, bias, height, width, patch = config
    conv = nn.Conv2d(c_in, c_out, k, stride, padding, bias=bias).double()
    layer = HasteConv2d.from_conv(conv, 2, sparsity=0.5, patch_size=patch, seed=1).double()
    x = torch.randn(3, c_in, height, width, dtype=torch.float64)
    expected, _ = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, patch
    )
    evaluated = layer(x)
    eval_stats = layer.stats.counts()
    layer.reset_stats()
    layer.execution = "compressed"
    compressed = layer(x)
    assert rel_error(compressed, expected) < 1e-10
    assert rel_error(compressed, evaluated) < 1e-10
    assert layer.stats.counts() == eval_stats
    # both backends directly, without gradients (where "auto" would pick numba on CPU)
    with torch.no_grad():
        results = [
            haste_conv2d_compressed(
                x,
                conv.weight,
                conv.bias,
                conv.stride,
                conv.padding,
                layer.hyperplanes,
                patch,
                backend=backend,
            )
            for backend in ("torch", "numba")
        ]
    for out, _ in results:
        assert rel_error(out, expected) < 1e-10
    assert torch.equal(results[0][1], results[1][1])  # same bucket counts


@pytest.mark.skipif(fused.numba is None, reason="numba is not installed")
@pytest.mark.filterwarnings("error")  # e.g. torch resizing an out= tensor of the wrong shape
def test_eval_kernel_chunks_share_one_row_buffer(monkeypatch):
    """Images in chunks of two (the last one shorter) through one reused buffer of im2col rows:
    every chunk must still give the per-patch loop's result, with nothing left from the one before."""
    from haste import functional
    from haste.functional import haste_conv2d

    conv = nn.Conv2d(12, 10, 3, 1, 1, bias=True).double()
    layer = HasteConv2d.from_conv(conv, 3, sparsity=0.5, patch_size=3, seed=2).double()
    x = torch.randn(5, 12, 7, 8, dtype=torch.float64)
    x[:, 6:] = x[:, :6] + 1e-3 * torch.randn(5, 6, 7, 8, dtype=torch.float64)  # buckets with members
    tiles, window = 3 * 3, 5 * 5
    monkeypatch.setattr(functional, "CHUNK_BYTES", 2 * tiles * window * 12 * 8)  # two images per chunk
    expected, expected_buckets = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3
    )
    with torch.no_grad():
        out, buckets = haste_conv2d(
            x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3
        )
    assert rel_error(out, expected) < 1e-10
    assert buckets.flatten().tolist() == expected_buckets and (buckets < 12).any()


@pytest.mark.skipif(fused.numba is None, reason="numba is not installed")
@pytest.mark.parametrize("stride", [1, 2])
def test_compressed_kernel_blocks_and_chunks(monkeypatch, stride):
    """Tiny cache sizes force several blocks of output channels (the last one padded), several runs
    of tiles per block and several chunks of images: each must still give the per-patch loop's result."""
    from haste import compressed

    monkeypatch.setattr(compressed, "TABLE_BLOCK_FLOATS", 16 * 9 * 12)  # width 16 for 12 input channels
    monkeypatch.setattr(compressed, "HASHED_CHUNK_FLOATS", 2000)  # one image per chunk
    conv = nn.Conv2d(12, 40, 3, stride, 1, bias=True).double()  # 40 = 16 + 16 + 8 (padded block)
    layer = HasteConv2d.from_conv(conv, 3, sparsity=0.5, patch_size=3, seed=2).double()
    x = torch.randn(3, 12, 10, 9, dtype=torch.float64)
    x[:, 6:] = x[:, :6] + 1e-3 * torch.randn(3, 6, 10, 9, dtype=torch.float64)  # buckets with members
    expected, expected_buckets = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3
    )
    assert compressed.filter_table(conv.weight).shape == (3, 12, 9, 16)
    with torch.no_grad():
        out, buckets = haste_conv2d_compressed(
            x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3, backend="numba"
        )
    assert rel_error(out, expected) < 1e-10
    assert (buckets < 12).any()  # some channels were merged
    with torch.no_grad():  # the cached filter table follows an in-place change of the weights
        conv.weight.mul_(2)
        doubled, _ = haste_conv2d_compressed(
            x, conv.weight, None, conv.stride, conv.padding, layer.hyperplanes, 3, backend="numba"
        )
    expected, _ = reference_haste_conv(x, conv.weight, None, conv.stride, conv.padding, layer.hyperplanes, 3)
    assert rel_error(doubled, expected) < 1e-10
    with torch.inference_mode():  # a weight made in inference mode has no version counter: not cached
        weight = conv.weight.detach().clone()
        table = compressed.filter_table(weight)
        weight.mul_(-1)
        assert torch.equal(torch.from_numpy(compressed.filter_table(weight)), -torch.from_numpy(table))


def test_compressed_backend_choice_and_refusals():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    layer = HasteConv2d.from_conv(conv, 3)
    x = torch.randn(2, 4, 7, 7)
    args = (conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, 3)
    with pytest.raises(ValueError, match="backend"):
        haste_conv2d_compressed(x, *args, backend="cuda")
    with pytest.raises(ValueError, match="without gradients"):
        haste_conv2d_compressed(x, *args, backend="numba")  # weight requires grad
    with pytest.raises(ValueError, match="float32/float64"):
        with torch.no_grad():
            haste_conv2d_compressed(x.half(), *args, backend="numba")
    out, _ = haste_conv2d_compressed(x, *args)  # auto: torch, because the weight needs gradients
    out.sum().backward()
    assert conv.weight.grad is not None


def test_compressed_path_float32_model():
    model = haste.convert(
        nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
        ),
        4,
    )
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        evaluated = model(x)
        haste.set_execution(model, "compressed")
        assert rel_error(model(x), evaluated) < 1e-5
    with pytest.raises(ValueError, match="execution"):
        haste.set_execution(model, "fast")


def test_invalid_steering_leaves_the_layer_unchanged():
    layer = HasteConv2d.from_conv(nn.Conv2d(4, 4, 3, padding=1), 6).double()
    before = layer.hyperplanes.clone()
    for bad in (dict(num_hyperplanes=0), dict(patch_size=0), dict(sparsity=1.5), dict(projection="x")):
        with pytest.raises(ValueError):
            layer.configure(**bad)
        assert layer.num_hyperplanes == 6 and layer.patch_size == 3 and torch.equal(layer.hyperplanes, before)
    layer.patch_size = 4
    assert layer.hyperplanes.shape == (36, 6) and layer.hyperplanes.dtype == torch.float64
