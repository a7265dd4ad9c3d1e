"""Tests written against bugs a reviewer planted one at a time and the suite let through.

Each test names what it guards; every expected value is a hand count or comes from an independent
reference (``nn.Conv2d``, the per-patch loop of ``tests/reference.py``), never from the code under test.
"""

import pandas as pd
import pytest
import torch
from reference import reference_haste_conv, reference_model
from test_data import make_tree
from test_models import write_stand_in
from torch import nn

import haste
from haste import HasteConv2d, fused, zoo
from haste.compressed import haste_conv2d_compressed
from haste.functional import extract_windows, haste_conv2d
from haste.hashing import codes_from_projections, hash_windows
from haste.repro import analysis, experiments, result_rows, tables
from haste.repro.analysis import operating_points
from haste.tiling import Tiling
from haste.zoo import ChecksumError
from haste.zoo.weights import verify


def rel_error(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# --- codes of L = 25 .. 32 bits must stay exact ------------------------------------------------------


@pytest.mark.parametrize("num_hyperplanes", [24, 25, 28, 30, 32])
def test_codes_differing_only_in_bit_0_stay_distinct_at_large_l(num_hyperplanes):
    # bit 0 and bit L-1 set, against bit L-1 alone: 2**(L-1) + 1 is no float32 above 2**24
    top = num_hyperplanes - 1
    projections = torch.zeros(2, num_hyperplanes)
    projections[:, top] = 1.0
    projections[0, 0] = 0.5
    projections[1, 0] = -0.5
    codes = codes_from_projections(projections)
    assert [int(code) for code in codes.tolist()] == [2**top + 1, 2**top]


@pytest.mark.parametrize("num_hyperplanes", [25, 30, 32])
@pytest.mark.parametrize("execution", ["gemm", "compressed"])
def test_channels_differing_only_in_bit_0_are_not_merged_at_large_l(num_hyperplanes, execution):
    # one 3x3 tile (P = 1, no padding), three channels. Plane 0 sees only pixel 1, plane L-1 only
    # pixel 0, the others nothing. Centred values (the channel mean of both pixels is 0):
    # pixel 0 = (1, 1, -2), pixel 1 = (1, -1, 0): codes 2**(L-1) + 1, 2**(L-1) and 0, all distinct,
    # so HASTE must be exactly nn.Conv2d here
    conv = nn.Conv2d(3, 2, 3, bias=True).double()
    layer = HasteConv2d.from_conv(conv, num_hyperplanes, patch_size=1).double()
    planes = torch.zeros(9, num_hyperplanes, dtype=torch.float64)
    planes[1, 0] = 1.0
    planes[0, num_hyperplanes - 1] = 1.0
    layer.hyperplanes = planes
    layer.execution = execution
    x = torch.randn(1, 3, 3, 3, dtype=torch.float64)
    x[0, :, 0, 0] = torch.tensor([1.0, 1.0, -2.0])
    x[0, :, 0, 1] = torch.tensor([1.0, -1.0, 0.0])
    tiling = Tiling((3, 3), (3, 3), (1, 1), (0, 0), 1)
    codes = hash_windows(extract_windows(x, tiling), planes)
    top = 2 ** (num_hyperplanes - 1)
    assert [int(code) for code in codes.flatten().tolist()] == [top + 1, top, 0]
    for grad in (True, False):  # torch ops (float codes), numba kernels (integer codes)
        layer.reset_stats()
        with torch.set_grad_enabled(grad):
            out = layer(x)
        assert layer.stats.buckets == 3, grad
        assert rel_error(out, conv(x)) < 1e-12, grad


# --- FLOPs of strided tilings, counted by hand ----------------------------------------------------


def merging_everything(conv, num_hyperplanes, patch_size, planes=None):
    """A layer whose hyperplanes are ``planes`` (default: all ones, nonzeros = pixels * L)."""
    layer = HasteConv2d.from_conv(conv, num_hyperplanes, patch_size=patch_size)
    layer.hyperplanes = torch.ones_like(layer.hyperplanes) if planes is None else planes
    return layer


def identical_channels(channels, height, width, images=1):
    """Inputs whose channels are all equal: one bucket per patch, whatever the hyperplanes."""
    return torch.randn(images, 1, height, width).expand(images, channels, height, width)


def test_hand_counted_flops_of_a_stride_2_conv():
    # 7x7 input, 3x3 stride 2 pad 1 -> 4x4 output; P = 3 -> tiles of 3x3, 3x1, 1x3 and 1x1 outputs,
    # which read windows of (3-1)*2+3 = 7 and (1-1)*2+3 = 3 pixels a side: 49 + 21 + 21 + 9 = 100
    layer = merging_everything(nn.Conv2d(4, 2, 3, 2, 1), 2, 3)
    layer(identical_channels(4, 7, 7))
    s = layer.stats
    assert (s.patches, s.outputs, s.pixels, s.nonzeros, s.buckets) == (4, 16, 100, 200, 4)
    assert s.dense == 4 * 2 * 9 * 16 == 1152
    assert s.conv == 1 * 2 * 9 * 16 == 288
    assert s.centre == 2 * 4 * 100 == 800
    assert s.hash == 4 * 100 * 2 == 800
    assert s.input_merge == 4 * 100 == 400
    assert s.filter_merge == (4 - 1) * 2 * 9 * 4 == 216


def test_hand_counted_window_nonzeros_of_a_stride_2_conv():
    # the same tiling; plane 0 is nonzero at window pixels (2, 2) and (6, 6), plane 1 at (4, 1).
    # Tile (0, 0) reads 7x7 (all three), (0, 1) 7 rows x 3 cols ((2, 2) and (4, 1)), (1, 0)
    # 3 rows x 7 cols ((2, 2)), (1, 1) 3x3 ((2, 2)): 3 + 2 + 1 + 1 = 7 nonzeros
    planes = torch.zeros(7, 7, 2)
    planes[2, 2, 0] = planes[6, 6, 0] = 1.0
    planes[4, 1, 1] = -1.0
    layer = merging_everything(nn.Conv2d(4, 2, 3, 2, 1), 2, 3, planes.view(49, 2))
    layer(identical_channels(4, 7, 7, images=2))
    assert layer.stats.nonzeros == 2 * 7
    assert layer.stats.hash == 4 * 2 * 7


def test_hand_counted_flops_of_a_rectangular_strided_conv():
    # 6x5 input, kernel (3, 1), stride (2, 1), padding (1, 0) -> 3x5 output; P = 2 -> tile rows of
    # 2 and 1 outputs, reading (2-1)*2+3 = 5 and 3 rows; tile columns of 2, 2, 1 outputs, reading
    # 2, 2 and 1 columns: (5 + 3) * (2 + 2 + 1) = 40 window pixels over 6 patches
    layer = merging_everything(nn.Conv2d(3, 2, (3, 1), (2, 1), (1, 0)), 3, 2)
    layer(identical_channels(3, 6, 5))
    s = layer.stats
    assert (s.patches, s.outputs, s.pixels, s.nonzeros, s.buckets) == (6, 15, 40, 120, 6)
    assert s.centre == 2 * 3 * 40
    assert s.input_merge == 3 * 40
    assert s.hash == 3 * 40 * 3
    assert s.conv == 2 * 3 * 15 and s.filter_merge == (3 - 1) * 2 * 3 * 6


# --- overhead and totals: hand sums of every term ------------------------------------------------


def test_overhead_and_total_are_the_hand_sums_of_every_term():
    # 5x5 input, 3x3 pad 1, P = 3: 4 patches, 25 outputs, 81 window pixels (see test_flops.py)
    layer = merging_everything(nn.Conv2d(4, 8, 3, 1, 1), 1, 3)
    layer(identical_channels(4, 5, 5))
    conv = 8 * 9 * 25  # one bucket per patch
    centre, hashing, input_merge = 2 * 4 * 81, 4 * 81 * 1, 4 * 81
    filter_merge = (4 - 1) * 8 * 9 * 4
    assert layer.stats.overhead == centre + hashing + input_merge + filter_merge == 2160
    assert layer.stats.total == conv + 2160 == 3960
    assert layer.stats.counts()["input_merge"] == 324


def test_report_overhead_and_totals_are_hand_sums():
    # the stem is HASTE too (skip=0), and sees identical channels: per image the conv costs
    # 1800 + 2160 overhead (the layer above); fvcore: conv 4*8*9*25 = 7200, pool 8*25, linear 8*3
    model = nn.Sequential(
        nn.Conv2d(4, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)
    )
    converted = haste.convert(model, 1, skip=0)
    layer = converted[0]
    layer.hyperplanes = torch.ones_like(layer.hyperplanes)
    images = identical_channels(4, 5, 5, images=2)
    result = haste.evaluate(converted, [(images, torch.zeros(2, dtype=torch.long))], progress=False)
    totals = result.to_dict()
    whole, conv_linear = 7200 + 200 + 24, 7200 + 24
    haste_flops = whole - 7200 + 3960
    assert totals["flops_dense"] == whole and totals["flops_dense_convlinear"] == conv_linear
    assert totals["flops_haste"] == haste_flops
    assert totals["flops_overhead"] == 2160
    assert totals["flops_filter_merge"] == 864
    assert totals["flops_reduction"] == pytest.approx(100 * (1 - haste_flops / whole))
    assert totals["flops_reduction_no_filter_merge"] == pytest.approx(100 * (1 - (haste_flops - 864) / whole))
    assert totals["flops_reduction_no_overhead"] == pytest.approx(100 * (1 - (haste_flops - 2160) / whole))
    assert totals["flops_reduction_convlinear"] == pytest.approx(
        100 * (1 - (haste_flops - 200) / conv_linear)
    )
    row = result.report.layers.iloc[0]
    expected = {"conv": 1800, "centre": 648, "hash": 324, "input_merge": 324, "filter_merge": 864}
    for term, flops in expected.items():
        assert row[f"flops_{term}"] == flops, term
    assert row["flops_overhead"] == 2160 and row["flops_haste"] == 3960


# --- rectangular strides and kernels through every execution path --------------------------------

RECTANGULAR = [  # (c_in, c_out, kernel, stride, padding, height, width, patch)
    (6, 4, (3, 3), (1, 2), (1, 1), 9, 14, 3),
    (6, 4, (3, 3), (2, 1), (1, 1), 14, 9, 3),
    (5, 3, (3, 1), (1, 1), (1, 0), 8, 7, 3),
    (5, 3, (1, 3), (2, 1), (0, 1), 9, 8, 2),
    (4, 5, (2, 3), (1, 2), (0, 1), 7, 11, 2),
    (6, 3, (3, 5), (2, 3), (1, 2), 13, 19, 3),
]
# (execution, gradients): gradients run the torch ops, inference on the CPU the numba kernels
PATHS = [("gemm", True), ("gemm", False), ("compressed", True), ("compressed", False)]


def rectangular_layer(config, num_hyperplanes, sparsity=0.5, channels=None):
    c_in, c_out, kernel, stride, padding, height, width, patch = config
    c_in = c_in if channels is None else channels
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding).double()
    layer = HasteConv2d.from_conv(conv, num_hyperplanes, sparsity=sparsity, patch_size=patch, seed=3).double()
    x = torch.randn(2, c_in, height, width, dtype=torch.float64)
    x[:, c_in // 2 :] = x[:, : c_in - c_in // 2] + 0.05 * torch.randn_like(x[:, c_in // 2 :])  # near pairs
    return conv, layer, x


@pytest.mark.parametrize("config", RECTANGULAR)
def test_rectangular_strides_and_kernels_match_the_loop_on_every_path(config):
    conv, layer, x = rectangular_layer(config, 2)
    expected, buckets = reference_haste_conv(
        x, conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, layer.patch_size
    )
    assert min(buckets) < x.shape[1]  # channels were merged: the comparison means something
    layer.record_patches = True
    for execution, grad in PATHS:
        layer.execution = execution
        layer.reset_stats()
        with torch.set_grad_enabled(grad):
            out = layer(x)
        assert out.shape == conv(x).shape, (execution, grad)
        assert rel_error(out, expected) < 1e-10, (execution, grad)
        counts = layer.stats.kept_fraction[0].flatten() * x.shape[1]
        assert counts.round().long().tolist() == buckets, (execution, grad)
    with pytest.warns(DeprecationWarning, match="gemm"):  # the old name of the GEMM path
        layer.execution = "eval"
    with torch.no_grad():
        assert layer.execution == "gemm" and rel_error(layer(x), expected) < 1e-10
    with torch.no_grad():  # both backends of the compressed path, called directly
        for backend in ("torch", "numba"):
            args = (conv.weight, conv.bias, conv.stride, conv.padding, layer.hyperplanes, layer.patch_size)
            out, counts = haste_conv2d_compressed(x, *args, backend=backend)
            assert rel_error(out, expected) < 1e-10, backend
            assert counts.flatten().tolist() == buckets, backend
        out, counts = haste_conv2d(x, *args)
        assert rel_error(out, expected) < 1e-10 and counts.flatten().tolist() == buckets


@pytest.mark.parametrize("config", RECTANGULAR)
def test_rectangular_strides_and_kernels_without_merging_are_conv2d_on_every_path(config):
    # three channels, channel c spiking at the pixels (i, j) with i + j = c mod 3: every window
    # holds spikes of at least two of them at different pixels, so the centred channels point far
    # apart and 53 dense planes give each a bucket of its own: HASTE is nn.Conv2d
    conv, layer, x = rectangular_layer(config, 53, sparsity=0.0, channels=3)
    rows, cols = torch.arange(x.shape[2])[:, None], torch.arange(x.shape[3])[None, :]
    spikes = torch.stack([(rows + cols) % 3 == c for c in range(3)]).double()
    x = 0.1 * torch.randn_like(x) + 5 * spikes
    for execution, grad in PATHS:
        layer.execution = execution
        layer.reset_stats()
        with torch.set_grad_enabled(grad):
            out = layer(x)
        assert layer.stats.conv == layer.stats.dense, (execution, grad)
        assert rel_error(out, conv(x)) < 1e-12, (execution, grad)


# --- weights verification: every digit of the SHA-256 counts -----------------------------------


def other_digit(digit):
    return "0" if digit != "0" else "1"


def test_verify_refuses_a_hash_that_differs_only_in_its_last_digit(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"not the expected weights")
    actual = zoo.sha256_file(path)
    for length in (8, 10, 40, 63, 64):  # torchvision's prefixes (8, 10 digits) up to the full hash
        wrong = actual[: length - 1] + other_digit(actual[length - 1])
        with pytest.raises(ChecksumError, match="does not match"):
            verify(path, wrong)
        assert verify(path, actual[:length]) == actual


def test_a_stand_in_whose_recorded_hash_differs_in_the_last_digit_is_refused(tmp_path):
    write_stand_in(tmp_path)
    manifest = tmp_path / "manifest.csv"
    header, row = manifest.read_text().splitlines()
    sha = row.rsplit(",", 1)[1]
    manifest.write_text(f"{header}\n{row[:-1]}{other_digit(sha[-1])}\n")
    with pytest.raises(ChecksumError, match="does not match"):
        zoo.load("cifar10/resnet18", weights_dir=tmp_path)


# --- operating points and tables on drops that do not fall with the reduction --------------------

# L = 8 .. 16 of one model: the drop goes up and down; within 1.25 pp are L = 10 (35 %), 14 (25 %)
# and 16 (20 %). The operating point is L = 10: the largest reduction within the limit, which
# neither has the largest drop within it (L = 14) nor the smallest L (L = 8 exceeds it).
NON_MONOTONE = pd.DataFrame(
    {
        "model": "cifar10/resnet18",
        "num_hyperplanes": [8, 10, 12, 14, 16],
        "accuracy_drop": [3.0, 0.5, 1.5, 1.0, 0.2],
        "flops_reduction": [40.0, 35.0, 30.0, 25.0, 20.0],
    }
)


def test_operating_point_is_the_largest_reduction_within_the_limit_not_the_largest_drop():
    points = operating_points(NON_MONOTONE, {"cifar10/resnet18": 1.25})
    assert points.num_hyperplanes.tolist() == [10]
    assert points.flops_reduction.tolist() == [35.0] and points.accuracy_drop.tolist() == [0.5]
    assert points.bracketed.tolist() == [True]  # L = 8 saves more and exceeds the limit
    # shuffled rows and other limits: within 1.0 pp still L = 10; within 0.4 pp only L = 16
    shuffled = NON_MONOTONE.sample(frac=1, random_state=1)
    points = operating_points(shuffled, {"cifar10/resnet18": 1.0})
    assert points.num_hyperplanes.tolist() == [10]
    points = operating_points(shuffled, {"cifar10/resnet18": 0.4})
    assert points.num_hyperplanes.tolist() == [16]


# --- thin kills made thick -----------------------------------------------------------------------


def signed_zero_model():
    """A stem (left dense) whose integer weights give the HASTE layer channels a, b, -(a + b), 0, d,
    -d: every channel mean is exactly 0, so channel 3 centres to exactly 0 and projects to exactly 0
    on every hyperplane (integer data: every sum is exact, in every summation order)."""
    generator = torch.Generator().manual_seed(7)
    stem = nn.Conv2d(2, 6, 3, padding=1, bias=False)
    weight = torch.randint(-2, 3, (6, 2, 3, 3), generator=generator).float()
    weight[2] = -(weight[0] + weight[1])
    weight[3] = 0.0
    weight[5] = -weight[4]
    with torch.no_grad():
        stem.weight.copy_(weight)
    return nn.Sequential(
        stem, nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    ).double()


@pytest.mark.parametrize("num_hyperplanes", [1, 2])
def test_projections_of_exactly_zero_set_no_bit_end_to_end(num_hyperplanes):
    # Bit l is set only where projection l is strictly positive: the zero channel has code 0 and
    # joins the channels whose projections are all <= 0. Taking ">=" (or "<") for ">" sends it to
    # those with projections >= 0 instead, merging other channels: the loop tells them apart.
    model = signed_zero_model()
    converted = haste.convert(model, num_hyperplanes)
    reference = reference_model(converted)
    x = torch.randint(-3, 4, (3, 2, 8, 8), generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        expected = reference(x)
        features = model[0](x)
    assert (features[:, 3] == 0).all() and (features.sum(1) == 0).all()
    for execution in ("gemm", "compressed"):
        haste.set_execution(converted, execution)
        for grad in (True, False):
            with torch.set_grad_enabled(grad):
                out = converted(x)
            assert rel_error(out, expected) < 1e-10, (execution, grad)
    layer = converted[1]
    assert layer.stats.conv < layer.stats.dense  # channels were merged


def test_two_seeds_are_two_cached_measurements(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "w.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    real_evaluate, calls = experiments.evaluate, []

    def counting_evaluate(*args, **kwargs):
        calls.append(kwargs["description"])
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(experiments, "evaluate", counting_evaluate)
    run = lambda: experiments.sweep(
        "cifar10/resnet18", [4], [0, 1], root, weights=str(weights), progress=False
    )
    first = run()
    assert calls == [
        "cifar10/resnet18 dense",
        "cifar10/resnet18 L=4 seed=0",
        "cifar10/resnet18 L=4 seed=1",
    ]  # the second seed is a measurement of its own, not the first seed's cached one
    by_seed = first.dropna(subset=["num_hyperplanes"]).set_index("seed")
    assert by_seed.flops_haste[0] != by_seed.flops_haste[1]  # other hyperplanes, other buckets
    calls.clear()
    again = run()
    assert calls == [] and again.equals(first)  # both seeds from the cache, each its own


# --- the table builders on hand-made summaries with non-monotone drops ---------------------------

CONVENTION_VALUES = {  # per convention, the reductions at L = 8, 10, 12, 14, 16 (NON_MONOTONE's drops)
    "flops_reduction": [40.0, 35.0, 30.0, 25.0, 20.0],  # within 1.25 pp: best L = 10
    "flops_reduction_no_filter_merge": [50.0, 44.0, 43.0, 45.0, 30.0],  # best L = 14
    "flops_reduction_no_overhead": [60.0, 55.0, 50.0, 45.0, 40.0],  # L = 10
    "flops_reduction_convlinear": [41.0, 36.0, 31.0, 26.0, 21.0],  # L = 10
    "flops_reduction_convlinear_no_filter_merge": [float("nan")] * 5,  # not measured
    "flops_reduction_convlinear_no_overhead": [61.0, 20.0, 50.0, 22.0, 58.0],  # L = 16
}


def summary_rows(model, patch_size, grid, drops, reductions, sha="ab" * 32):
    """A sweep summary of one model and patch size; every convention column, stds 0.1 * L."""
    frame = pd.DataFrame(
        {
            "model": model,
            "weights_sha256": sha,
            "patch_size": patch_size,
            "num_hyperplanes": grid,
            "accuracy": [90.0 - d for d in drops],
            "accuracy_drop": drops,
            "accuracy_std": [L / 100 for L in grid],
            "seeds": 3,
            "images": 10000,
        }
    )
    for column, values in reductions.items():
        frame[column] = values
        frame[f"{column}_std"] = [0.1 * L for L in grid]
    return frame


def reconciliation_summary():
    grid, drops = [8, 10, 12, 14, 16], NON_MONOTONE.accuracy_drop.tolist()
    flat = lambda values: {column: values for column in CONVENTION_VALUES}
    return pd.concat(
        [
            summary_rows("cifar10/resnet34", 3, grid, drops, CONVENTION_VALUES),  # paper: 1.25 pp, 46.72 %
            summary_rows("cifar10/resnet34", 2, [10, 12], [2.0, 1.8], flat([30.0, 25.0])),  # none within
            summary_rows("cifar10/vgg19_bn", 3, [20, 22], [1.7, 1.6], flat([25.0, 20.0])),  # 1.63 pp: L = 22
            summary_rows("cifar10/resnet18", 3, [10, 12], [0.5, 0.3], flat([30.0, 25.0])),  # the grid's edge
        ],
        ignore_index=True,
    )


def test_reconciliation_table_takes_the_largest_reduction_within_the_limit_per_convention():
    table = tables.reconciliation_table(reconciliation_summary())
    assert len(table) == 4 * len(tables.CONVENTIONS)
    rows = table.set_index(["model", "patch_size", "convention"])
    resnet34 = rows.loc[("cifar10/resnet34", 3)]
    assert resnet34.num_hyperplanes.to_dict() == pytest.approx(
        {
            "flops_reduction": 10,
            "flops_reduction_no_filter_merge": 14,
            "flops_reduction_no_overhead": 10,
            "flops_reduction_convlinear": 10,
            "flops_reduction_convlinear_no_filter_merge": float("nan"),
            "flops_reduction_convlinear_no_overhead": 16,
        },
        nan_ok=True,
    )
    expected_reduction = {"flops_reduction": 35.0, "flops_reduction_no_filter_merge": 45.0}
    expected_reduction |= {
        "flops_reduction_no_overhead": 55.0,
        "flops_reduction_convlinear_no_overhead": 58.0,
    }
    for convention, reduction in expected_reduction.items():
        assert resnet34.flops_reduction[convention] == reduction, convention
    assert resnet34.accuracy_drop["flops_reduction_no_filter_merge"] == 1.0
    assert resnet34.flops_reduction_std["flops_reduction_no_filter_merge"] == pytest.approx(1.4)
    assert resnet34.accuracy_std["flops_reduction_convlinear_no_overhead"] == pytest.approx(0.16)
    assert resnet34.bracketed.to_dict() == {
        **dict.fromkeys(tables.CONVENTIONS, True),
        "flops_reduction_convlinear_no_filter_merge": False,  # not measured
    }
    assert (resnet34.max_drop_allowed == 1.25).all()
    assert (resnet34.dropna(subset=["flops_reduction"]).paper_flops_reduction == 46.72).all()
    assert (resnet34.dropna(subset=["flops_reduction"]).seeds == 3).all()
    none_within = rows.loc[("cifar10/resnet34", 2)]
    assert not none_within.bracketed.any() and none_within.num_hyperplanes.isna().all()
    vgg = rows.loc[("cifar10/vgg19_bn", 3)]
    assert (vgg.num_hyperplanes == 22).all() and vgg.bracketed.all() and (vgg.max_drop_allowed == 1.63).all()
    assert (vgg.flops_reduction == 20.0).all() and (vgg.paper_flops_reduction == 38.83).all()
    edge = rows.loc[("cifar10/resnet18", 3)]
    assert (edge.num_hyperplanes == 10).all() and not edge.bracketed.any()  # nothing below L = 10
    assert edge.paper_flops_reduction.isna().all()


def test_closest_convention_by_hand():
    columns = ["convention", "model", "patch_size", "bracketed", "flops_reduction", "paper_flops_reduction"]
    reconciliation = pd.DataFrame(
        [  # convention, model, P, bracketed, reduction, paper's
            ("a", "m1", 3, True, 40.0, 46.0),  # gap 6
            ("a", "m2", 3, True, 30.0, 38.0),  # gap 8: mean 7
            ("b", "m1", 3, True, 45.0, 46.0),  # gap 1
            ("b", "m2", 3, True, 20.0, 38.0),  # gap 18: mean 9.5
            ("c", "m1", 3, False, 16.0, 46.0),  # not bracketed: left out (gap 30)
            ("c", "m2", 3, True, 39.0, 38.0),  # gap 1: mean 1
            ("b", "m1", 2, True, 46.0, 46.0),  # another patch size
            ("b", "m2", 2, True, 38.5, 38.0),
            ("a", "m1", 2, True, 40.0, 46.0),
        ],
        columns=columns,
    )
    assert tables.closest_convention(reconciliation, 3, ["a", "b", "c"]) == "c"
    assert tables.closest_convention(reconciliation, 3, ["a", "b"]) == "a"
    assert tables.closest_convention(reconciliation, 3, ["b"]) == "b"
    assert tables.closest_convention(reconciliation, 2, ["a", "b", "c"]) == "b"  # mean 0.25 against 6
    assert tables.closest_convention(reconciliation, 4, ["a", "b", "c"]) is None
    assert tables.closest_convention(reconciliation.assign(bracketed=False), 3, ["a"]) is None


def test_closest_convention_of_a_reconciliation_table_by_hand():
    # the table above at P = 3: resnet34 (paper 46.72) and vgg19_bn (38.83, always 20 %) bracketed.
    # Mean gaps: flops_reduction (11.72 + 18.83) / 2, no_filter_merge (1.72 + 18.83) / 2 = 10.275,
    # no_overhead (8.28 + 18.83) / 2 = 13.555, convlinear (10.72 + 18.83) / 2, convlinear_no_filter_merge
    # 18.83 (vgg19_bn only), convlinear_no_overhead (11.28 + 18.83) / 2
    table = tables.reconciliation_table(reconciliation_summary())
    assert tables.closest_convention(table, 3, tables.CONVENTIONS) == "flops_reduction_no_filter_merge"
    others = [c for c in tables.CONVENTIONS if c != "flops_reduction_no_filter_merge"]
    assert tables.closest_convention(table, 3, others) == "flops_reduction_no_overhead"
    assert tables.closest_convention(table, 2, tables.CONVENTIONS) is None  # nothing within at P = 2


def test_reconciliation_gap_by_hand():
    rows = [  # model, patch size, convention, reduction, bracketed, paper
        ("a", 3, "flops_reduction", 30.0, True, 40.0),  # counted in full at P = 3: gap -10
        ("a", 3, "flops_reduction_no_overhead", 44.0, True, 40.0),  # |+4|
        ("a", 2, "flops_reduction_convlinear", 37.5, True, 40.0),  # |-2.5|: the closest
        ("a", 2, "flops_reduction_no_overhead", 40.5, False, 40.0),  # closer, but not bracketed
        ("a", 4, "flops_reduction", 52.0, True, 40.0),
        ("b", 3, "flops_reduction", 20.0, True, 30.0),  # the closest is the full count itself
        ("b", 2, "flops_reduction", 9.0, True, 30.0),
        ("c", 2, "flops_reduction", 20.0, True, 30.0),  # no full count at P = 3: left out
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "model",
            "patch_size",
            "convention",
            "flops_reduction",
            "bracketed",
            "paper_flops_reduction",
        ],
    ).assign(num_hyperplanes=[8, 9, 10, 11, 12, 13, 14, 15])
    gap = tables.reconciliation_gap(table, 3).set_index("model")
    assert list(gap.index) == ["a", "b"]
    assert gap.loc["a", ["paper", "full", "full_gap", "closest", "closest_gap"]].tolist() == [
        40,
        30,
        -10,
        37.5,
        -2.5,
    ]
    assert (gap.loc["a", "closest_patch_size"], gap.loc["a", "closest_convention"]) == (
        2,
        "flops_reduction_convlinear",
    )
    assert gap.loc["a", "closest_num_hyperplanes"] == 10
    assert gap.loc[
        "b", ["full", "full_gap", "closest", "closest_gap", "closest_num_hyperplanes"]
    ].tolist() == [
        20,
        -10,
        20,
        -10,
        13,
    ]


def main_table_inputs():
    summary = pd.concat(
        [
            summary_rows("cifar10/resnet34", 3, [8, 10, 12, 14, 16], NON_MONOTONE.accuracy_drop.tolist(), {}),
            summary_rows("cifar10/resnet18", 3, [10, 12, 14], [2.0, 0.9, 1.2], {}, sha="cd" * 32),
        ],
        ignore_index=True,
    )
    for column, values in CONVENTION_VALUES.items():
        summary[column] = values + [30.0, 28.0, 26.0]
        summary[f"{column}_std"] = 0.1 * summary.num_hyperplanes
    results = pd.DataFrame(
        {
            "model": ["cifar10/resnet34", "cifar10/resnet18"],
            "num_hyperplanes": [None, None],
            "accuracy": [88.8, 88.7],
            "weights_sha256": ["ab" * 32, "cd" * 32],
            "images": 10000,
        }
    )
    return results, summary


def test_main_table_by_hand():
    results, summary = main_table_inputs()
    table = tables.main_table(results, summary, "flops_reduction_no_overhead").set_index("model")
    resnet34, resnet18 = table.loc["cifar10/resnet34"], table.loc["cifar10/resnet18"]
    # resnet34: the paper's 1.25 pp, L = 10 (35 %, 0.5 pp); L = 14 has the larger drop within it
    assert (resnet34.num_hyperplanes, resnet34.flops_reduction, resnet34.accuracy_drop) == (10, 35.0, 0.5)
    assert resnet34.haste_accuracy == 89.5 and resnet34.haste_accuracy_std == pytest.approx(0.10)
    assert resnet34.flops_reduction_std == pytest.approx(1.0) and resnet34.seeds == 3
    assert resnet34.baseline_accuracy == 88.8 and resnet34.weights_sha256 == "ab" * 32
    assert (resnet34.paper_baseline, resnet34.paper_accuracy_drop, resnet34.paper_flops_reduction) == (
        93.34,
        1.25,
        46.72,
    )
    assert resnet34.max_drop_allowed == 1.25 and resnet34.bracketed
    assert resnet34.flops_reduction_no_overhead == 55.0
    assert resnet34.convention == "flops_reduction_no_overhead"
    assert resnet34.flops_reduction_convention == 55.0  # at the operating point, not that column's best
    assert resnet34.flops_reduction_convention_std == pytest.approx(1.0)
    # resnet18: the default 1.25 pp, L = 12 (28 %, 0.9 pp), not L = 14 (1.2 pp, 26 %); no paper point
    assert (resnet18.num_hyperplanes, resnet18.flops_reduction, resnet18.accuracy_drop) == (12, 28.0, 0.9)
    assert resnet18.bracketed and pd.isna(resnet18.paper_flops_reduction)
    assert resnet18.weights_sha256 == "cd" * 32
    plain = tables.main_table(results, summary).set_index("model")
    assert plain.convention.isna().all() and plain.flops_reduction_convention.isna().all()
    assert plain.num_hyperplanes.dropna().to_dict() == {"cifar10/resnet34": 10, "cifar10/resnet18": 12}
    assert pd.isna(plain.num_hyperplanes["cifar10/vgg19_bn"])  # the paper's other model: its row, empty


def test_patch_size_table_by_hand():
    _, summary = main_table_inputs()
    patch2 = summary.assign(
        patch_size=2, accuracy_drop=[0.1, 2.0, 0.4, 1.3, 0.2, 1.0, 1.1, 3.0]
    )  # resnet34: L = 8 (40 %) within 1.25 pp; resnet18: L = 10 (30 %), the grid's edge
    with pytest.warns(UserWarning, match="within"):
        table = tables.patch_size_table([summary, patch2])
    assert table[
        ["model", "patch_size", "num_hyperplanes", "flops_reduction", "bracketed"]
    ].values.tolist() == [
        ["cifar10/resnet18", 2, 10, 30.0, False],
        ["cifar10/resnet18", 3, 12, 28.0, True],
        ["cifar10/resnet34", 2, 8, 40.0, False],
        ["cifar10/resnet34", 3, 10, 35.0, True],
    ]
    assert table.max_drop_allowed.tolist() == [1.25] * 4


def test_conv_linear_baseline_of_an_older_row_by_hand():
    rows = pd.DataFrame(
        {
            "model": ["m", "m", "m"],
            "num_hyperplanes": [None, 8, 8],
            "flops_dense": [1000.0, 1000.0, 1000.0],
            "flops_haste": [None, 600.0, 600.0],
            "flops_overhead": [None, 100.0, 100.0],
            "flops_reduction_convlinear": [None, None, 12.5],  # measured: kept as it is
        }
    )
    derived = tables.with_convlinear_baseline(rows, {"m": 900.0})
    # 100 FLOPs outside convs and linear layers: dense 900, HASTE 500, without overhead 400
    assert derived.flops_dense_convlinear.tolist() == [900.0] * 3
    assert derived.flops_reduction_convlinear.tolist() == pytest.approx([0.0, 100 * (1 - 500 / 900), 12.5])
    assert derived.flops_reduction_convlinear_no_overhead.tolist() == pytest.approx(
        [0.0, 100 * (1 - 400 / 900), 100 * (1 - 400 / 900)]
    )
    assert derived.flops_reduction_convlinear_no_filter_merge.isna().all()


def test_quality_trend_of_a_falling_non_monotone_line_by_hand():
    points = pd.DataFrame(
        {
            "baseline_accuracy": [60.0, 70.0, 80.0],
            "flops_reduction": [30.0, 20.0, 25.0],
            "flops_reduction_no_overhead": [40.0, 40.0, 40.0],
        }
    )
    trend = tables.quality_trend(points, ["flops_reduction", "flops_reduction_no_overhead"], at=93.34)
    first, flat = trend.iloc[0], trend.iloc[1]
    # dx = (-10, 0, 10), dy = (5, -5, 0): slope -50 / 200, intercept 25 + 0.25 * 70, r = -50 / 100
    assert first.convention == "flops_reduction" and first.slope == pytest.approx(-0.25)
    assert first.correlation == pytest.approx(-0.5)
    assert first.flops_reduction_at_baseline == pytest.approx(42.5 - 0.25 * 93.34)
    assert first.extrapolated and (first.baseline_low, first.baseline_high, first.checkpoints) == (60, 80, 3)
    assert flat.slope == 0 and flat.flops_reduction_at_baseline == pytest.approx(40.0)
    single = tables.quality_trend(points.iloc[:1], ["flops_reduction"], at=60.0).iloc[0]
    assert pd.isna(single.slope) and not single.extrapolated


def test_summary_is_the_mean_and_spread_over_seeds_by_hand():
    rows = pd.DataFrame(
        [
            {"model": "m", "num_hyperplanes": None, "seed": None, "accuracy": 90.0, "accuracy_drop": 0.0},
            {"model": "m", "num_hyperplanes": 8, "seed": 0, "accuracy": 88.0, "accuracy_drop": 2.0},
            {"model": "m", "num_hyperplanes": 8, "seed": 1, "accuracy": 86.0, "accuracy_drop": 4.0},
            {"model": "m", "num_hyperplanes": 12, "seed": 0, "accuracy": 89.5, "accuracy_drop": 0.5},
        ]
    ).reindex(columns=result_rows.RESULT_COLUMNS)
    rows["flops_reduction"] = [0.0, 30.0, 34.0, 20.0]
    summary = analysis.summarize(rows).set_index("num_hyperplanes")
    assert summary.seeds.to_dict() == {8: 2, 12: 1}
    assert summary.accuracy_drop.to_dict() == {8: 3.0, 12: 0.5}
    assert summary.accuracy_std.to_dict() == {8: 1.0, 12: 0.0}  # population std (ddof 0)
    assert summary.flops_reduction.to_dict() == {8: 32.0, 12: 20.0}
    assert summary.flops_reduction_std[8] == 2.0


@pytest.mark.skipif(fused.numba is None, reason="numba is not installed")
def test_fused_kernel_is_what_inference_runs():
    # the tests above take "no gradients on the CPU" to mean the numba kernels; check that premise
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    assert fused.available(x, needs_grad=False) and not fused.available(x, needs_grad=True)
