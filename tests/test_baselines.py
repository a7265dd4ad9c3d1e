"""The data-free baselines (haste.baselines) against independent references: nn.Conv2d outputs of
the original network, fvcore tracing the compressed model, FLOPs counted by hand, the optimal
truncation error of an SVD (Eckart-Young), and the runner's tables on rows made by hand."""

import copy
import math

import pandas as pd
import pytest
import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from haste import zoo
from haste.baselines import METHODS, lowrank, magnitude, merging
from haste.baselines.flops import fvcore_flops, module_calls, module_flops
from haste.baselines.structure import factorisable_convs, prunable_chains
from haste.repro import baselines as runner
from haste.zoo.cifar import CifarVGG

VGG_INPUT = (3, 8, 12)


@pytest.fixture(autouse=True)
def _one_thread():
    """The toy networks' convs are tiny: one thread runs them fastest, and a busy machine's second
    thread only makes them wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)  # rectangular: a rule that swaps height and width counts otherwise


def _randomise_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Trained-looking BN statistics and affine parameters, so that no BN is the identity."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            count = module.num_features
            module.running_mean.copy_(torch.randn(count, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(count, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(count, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(count, generator=generator) * 0.2)


def toy_vgg() -> CifarVGG:
    """conv 3->8, BN, ReLU, max-pool, conv 8->8, BN, ReLU, global average pool, linear 8->10."""
    generator = torch.Generator().manual_seed(1)
    model = CifarVGG([8, "M", 8])
    model.classifier = nn.Sequential(nn.Linear(8, 10))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.3)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
        _randomise_norms(model, generator)
    return model.eval()


def _duplicate(conv: nn.Conv2d, norm: nn.BatchNorm2d, copies: int) -> None:
    """Filters and BN entries ``C - copies ..`` made copies of ``0 .. copies``."""
    half = conv.out_channels - copies
    with torch.no_grad():
        conv.weight[half:] = conv.weight[:copies]
        if conv.bias is not None:
            conv.bias[half:] = conv.bias[:copies]
        for values in (norm.weight, norm.bias, norm.running_mean, norm.running_var):
            values[half:] = values[:copies]


def duplicated_vgg() -> CifarVGG:
    """The toy VGG with filters 4-7 of each conv copies of 0-3 (BN entries too), the last a copy
    scaled by 2 after its BN: ``y_7 = 2 y_3``."""
    model = toy_vgg()
    for conv, norm in ((model.features[0], model.features[1]), (model.features[4], model.features[5])):
        _duplicate(conv, norm, 4)
        with torch.no_grad():
            norm.weight[7] = 2 * norm.weight[3]
            norm.bias[7] = 2 * norm.bias[3]
    return model


def toy_resnet(block=tv_resnet.BasicBlock) -> tv_resnet.ResNet:
    """A torchvision ResNet with a 3->8 stem and one narrow block per stage (two with a strided
    shortcut conv), so that a test compresses it in a blink."""
    generator = torch.Generator().manual_seed(2)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        model = tv_resnet.ResNet(block, [1, 1, 1, 1], num_classes=10)
        model.conv1, model.bn1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        widths = [
            (8, 4, 1),
            (4 * block.expansion, 8, 2),
            (8 * block.expansion, 8, 1),
            (8 * block.expansion, 16, 2),
        ]
        for index, (inputs, planes, stride) in enumerate(widths, start=1):
            outputs = planes * block.expansion
            shortcut = None
            if stride != 1 or inputs != outputs:
                shortcut = nn.Sequential(tv_resnet.conv1x1(inputs, outputs, stride), nn.BatchNorm2d(outputs))
            setattr(model, f"layer{index}", nn.Sequential(block(inputs, planes, stride, shortcut)))
        model.fc = nn.Linear(16 * block.expansion, 10)
    with torch.no_grad():
        _randomise_norms(model, generator)
    return model.eval()


RESNET_INPUT = (3, 12, 16)


def _images(shape, count=3) -> torch.Tensor:
    return torch.randn(count, *shape, generator=torch.Generator().manual_seed(3))


@torch.no_grad()
def _outputs(model, images):
    return model.eval()(images)


def test_fvcore_and_the_shape_rules_count_the_toy_vgg_as_by_hand():
    model = toy_vgg()
    # conv 3->8 3x3 on 8x12, BN (2 per element), max-pool to 4x6, conv 8->8 3x3, BN, avg pool
    # (1 per input element), linear 8->10
    by_hand = 3 * 8 * 9 * 96 + 2 * 8 * 96 + 8 * 8 * 9 * 24 + 2 * 8 * 24 + 8 * 24 + 8 * 10
    assert by_hand == 36752
    assert fvcore_flops(model, VGG_INPUT) == by_hand
    calls = module_calls(model, VGG_INPUT)
    modules = dict(model.named_modules())
    assert sum(module_flops(modules[name], call) for name, made in calls.items() for call in made) == by_hand


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("family", ["vgg", "resnet"])
def test_target_zero_returns_the_original_and_the_input_model_is_never_changed(method, family):
    model, shape = (toy_vgg(), VGG_INPUT) if family == "vgg" else (toy_resnet(), RESNET_INPUT)
    images = _images(shape)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    compressed, record = METHODS[method](model, 0.0, shape)
    assert torch.equal(_outputs(compressed, images), _outputs(model, images))
    assert record.flops == record.flops_dense == fvcore_flops(model, shape) and record.ratio == 0.0
    METHODS[method](model, 30.0, shape)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


def test_duplicated_filters_merge_without_loss_and_magnitude_pruning_loses():
    model = duplicated_vgg()
    images = _images(VGG_INPUT, 8)
    reference = _outputs(model, images)
    # removing 4 of the 8 filters of both convs: conv 3->4, BN, conv 4->4, BN, pool, linear 4->10
    by_hand = 3 * 4 * 9 * 96 + 2 * 4 * 96 + 4 * 4 * 9 * 24 + 2 * 4 * 24 + 4 * 24 + 4 * 10
    # 3 of 8 would reach only 46%: a 55% target needs 4 of each
    merged, record = merging.compress(model, 55.0, VGG_INPUT)
    pruned, pruned_record = magnitude.compress(model, 55.0, VGG_INPUT)
    for compressed, made in ((merged, record), (pruned, pruned_record)):
        assert fvcore_flops(compressed, VGG_INPUT) == made.flops == by_hand
        assert made.flops_reduction == pytest.approx(100 * (1 - by_hand / 36752))
    torch.testing.assert_close(_outputs(merged, images), reference, rtol=1e-5, atol=1e-5)
    for layer in record.layers:  # each copy went into its original, the scaled one with 1/2
        assert sorted(zip(layer.removed, layer.merged_into, layer.scales)) == pytest.approx(
            [(0, 4, 1.0), (1, 5, 1.0), (2, 6, 1.0), (3, 7, 0.5)]
        )
    lost = (_outputs(pruned, images) - reference).abs().max()
    assert lost > 0.05 * reference.abs().max()


def test_merging_removes_a_duplicate_before_a_small_filter_and_magnitude_the_small_one():
    """Non-monotone in the norm: the smallest filter is unique, a large one has a copy."""
    model = toy_vgg()
    conv, norm = model.features[0], model.features[1]
    with torch.no_grad():
        conv.weight[2] *= 0.05  # the smallest L1 norm, unlike any other filter
        conv.weight[6] = conv.weight[5] = conv.weight[5] * 3  # the largest, with a copy
        conv.bias[6] = conv.bias[5]
        for values in (norm.weight, norm.bias, norm.running_mean, norm.running_var):
            values[6] = values[5]
    chain = prunable_chains(model)[0]
    assert magnitude.smallest_filters(model, model, chain, 1)[0] == [2]
    removed, merged_into, scales = merging.redundant_filters(model, copy.deepcopy(model), chain, 1)
    assert removed == [5] and merged_into == [6] and scales == pytest.approx([1.0])


def test_duplicated_resnet_filters_merge_without_loss_and_only_inner_convs_are_cut():
    model = toy_resnet()
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        block = layer[0]
        _duplicate(block.conv1, block.bn1, block.conv1.out_channels // 2)
    images = _images(RESNET_INPUT)
    merged, record = merging.compress(model, 20.0, RESNET_INPUT)
    assert [layer.producer for layer in record.layers] == [f"layer{i}.0.conv1" for i in range(1, 5)]
    assert all(0 < len(layer.removed) <= layer.channels // 2 for layer in record.layers)
    torch.testing.assert_close(_outputs(merged, images), _outputs(model, images), rtol=1e-5, atol=1e-5)
    for name, module in merged.named_modules():  # the stem, block outputs and shortcuts keep their width
        if isinstance(module, nn.Conv2d) and not name.endswith(".conv1"):
            assert module.out_channels == model.get_submodule(name).out_channels


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize(
    "family, shape",
    [("vgg", VGG_INPUT), ("resnet", RESNET_INPUT), ("bottleneck", RESNET_INPUT)],
)
@pytest.mark.parametrize("target", [15.0, 30.0])  # the toy VGG's one factorisable conv saves 32% at most
def test_the_reported_flops_are_fvcores_count_of_the_compressed_model(method, family, shape, target):
    model = {"vgg": toy_vgg, "resnet": toy_resnet, "bottleneck": lambda: toy_resnet(tv_resnet.Bottleneck)}[
        family
    ]()
    compressed, record = METHODS[method](model, target, shape)
    assert fvcore_flops(compressed, shape) == record.flops
    assert record.flops_dense == fvcore_flops(model, shape) and record.flops_reduction >= target
    assert _outputs(compressed, _images(shape, 2)).shape == (2, 10)


def test_an_unreachable_target_is_refused():
    with pytest.raises(ValueError, match="out of reach"):
        magnitude.compress(toy_vgg(), 99.0, VGG_INPUT)


def test_the_structure_of_the_papers_cifar10_models():
    resnet = zoo.build("cifar10/resnet34")
    chains = prunable_chains(resnet)
    blocks = [
        f"layer{stage}.{index}" for stage, count in zip(range(1, 5), [3, 4, 6, 3]) for index in range(count)
    ]
    assert [(c.producer, c.norm, c.consumer) for c in chains] == [
        (f"{b}.conv1", f"{b}.bn1", f"{b}.conv2") for b in blocks
    ]
    convs = factorisable_convs(resnet)
    assert "conv1" not in convs and len(convs) == 2 * 16 + 3  # two per block and 3 shortcut convs
    vgg = zoo.build("cifar10/vgg19_bn")
    chains = prunable_chains(vgg)
    assert len(chains) == 16 and chains[-1].consumer == "classifier.0" and "avgpool" in chains[-1].between
    assert all(chains[i].consumer == chains[i + 1].producer for i in range(15))
    assert len(factorisable_convs(vgg)) == 15


def test_lowrank_at_full_rank_is_the_original():
    for model, shape in ((toy_resnet(), RESNET_INPUT), (toy_vgg(), VGG_INPUT)):
        ranks = {name: lowrank.full_rank(model.get_submodule(name)) for name in factorisable_convs(model)}
        factorised, layers, _ = lowrank.apply_ranks(model, ranks, shape)
        images = _images(shape)
        torch.testing.assert_close(
            _outputs(factorised, images), _outputs(model, images), rtol=1e-4, atol=1e-4
        )
        assert all(isinstance(factorised.get_submodule(name), nn.Sequential) for name in ranks)


def test_a_factorised_conv_at_full_rank_is_the_conv_and_costs_what_fvcore_counts():
    generator = torch.Generator().manual_seed(4)
    conv = nn.Conv2d(6, 10, (3, 2), stride=(2, 1), padding=(1, 0), bias=True)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
        conv.bias.copy_(torch.randn(10, generator=generator))
    images = torch.randn(2, 6, 9, 7, generator=generator)
    pair = lowrank.factorise(conv, lowrank.full_rank(conv))  # min(10, 6 * 6) = 10
    torch.testing.assert_close(pair(images), conv(images), rtol=1e-5, atol=1e-5)
    # rank 4 on a 9x7 input: output 5x6 = 30 pixels; the 3x2 conv to 4 channels, then 1x1 to 10
    call = module_calls(conv, (6, 9, 7))[""][0]
    assert lowrank.factorised_flops(conv, call, 4) == 4 * 6 * 6 * 30 + 10 * 4 * 30
    assert fvcore_flops(lowrank.factorise(conv, 4), (6, 9, 7)) == 4 * 6 * 6 * 30 + 10 * 4 * 30


@pytest.mark.parametrize("weighted", [False, True])
def test_the_truncation_error_is_the_smallest_possible(weighted):
    """Eckart-Young: the best rank-r approximation of D W misses it by the root of the sum of its
    squared trailing singular values (computed here by torch's SVD, not the method's eigenvectors)."""
    generator = torch.Generator().manual_seed(5)
    for out_channels, in_channels in ((12, 1), (5, 4)):  # a tall (12 x 9) and a wide (5 x 36) matrix
        conv = nn.Conv2d(in_channels, out_channels, 3, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
        gains = torch.rand(out_channels, generator=generator, dtype=torch.float64) + 0.1 if weighted else None
        scale = gains if weighted else torch.ones(out_channels, dtype=torch.float64)
        matrix = conv.weight.detach().double().flatten(1)
        singular = torch.linalg.svdvals(matrix * scale[:, None])
        for rank in (1, 3):
            first, second = lowrank.factorise(conv, rank, gains)
            product = second.weight.detach().double().flatten(1) @ first.weight.detach().double().flatten(1)
            error = torch.linalg.matrix_norm((matrix - product) * scale[:, None])
            assert float(error) == pytest.approx(math.sqrt(float((singular[rank:] ** 2).sum())), rel=1e-5)


# --- the runner's tables, on rows made by hand -------------------------------------------------


def _hand_rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    sha = "ab" * 32
    rows = pd.DataFrame(
        {
            "model": "cifar10/resnet34",
            "weights_sha256": sha,
            "method": ["dense", "magnitude", "magnitude", "magnitude", "haste-gemm"],
            "target": [0.0, 30.0, 10.0, 20.0, 25.0],  # unsorted on purpose
            "num_hyperplanes": [None, None, None, None, 14],
            "accuracy_drop": [0.0, 5.0, 0.5, 2.0, None],
            "flops_reduction": [0.0, 30.0, 10.0, 20.0, 25.0],
            "time_ratio": [1.0, 0.6, 0.9, 0.8, 2.5],
        }
    )
    summary = pd.DataFrame(
        {
            "model": "cifar10/resnet34",
            "weights_sha256": [sha, sha, sha, "cd" * 32],  # the last of another checkpoint: ignored
            "num_hyperplanes": [16, 14, 12, 14],
            "flops_reduction": [15.0, 25.0, 35.0, 80.0],
            "flops_reduction_no_overhead": [20.0, 30.0, 40.0, 90.0],
            "accuracy_drop": [0.5, 1.0, 2.0, 0.0],
        }
    )
    return rows, summary


def test_the_comparison_table_by_hand():
    rows, summary = _hand_rows()
    table = runner.comparison_table(rows, summary).set_index("method")
    # HASTE's operating point within 1.25 pp (the paper's ResNet34 drop): L = 14, 25% (30% without overhead)
    assert (table.haste_num_hyperplanes == 14).all() and (table.haste_flops_reduction == 25.0).all()
    assert (table.haste_flops_reduction_no_overhead == 30.0).all() and (table.max_drop_allowed == 1.25).all()
    magnitude_row = table.loc["magnitude"]
    assert magnitude_row.drop_at_haste_reduction == pytest.approx(3.5)  # halfway from (20, 2) to (30, 5)
    assert magnitude_row.drop_at_haste_reduction_no_overhead == pytest.approx(5.0)
    assert magnitude_row.flops_reduction_within_drop == 10.0 and magnitude_row.accuracy_drop_there == 0.5
    assert magnitude_row.bracketed
    haste = table.loc["haste"]
    assert haste.drop_at_haste_reduction == pytest.approx(1.0) and haste.flops_reduction_within_drop == 25.0
    assert haste.drop_at_haste_reduction_no_overhead == pytest.approx(1.5)  # its own curve at 30%
    no_overhead = table.loc["haste (no overhead)"]
    assert (
        no_overhead.drop_at_haste_reduction == pytest.approx(0.75)
        and no_overhead.flops_reduction_within_drop == 30
    )
    assert set(table.index) == {"haste", "haste (no overhead)", "magnitude"}  # no rows, no curve


def test_a_drop_outside_the_measured_reductions_is_not_extrapolated():
    rows, summary = _hand_rows()
    rows = rows[rows.target != 30.0]  # magnitude measured up to 20% only
    table = runner.comparison_table(rows, summary).set_index("method")
    magnitude_row = table.loc["magnitude"]
    assert math.isnan(magnitude_row.drop_at_haste_reduction)  # 25% lies beyond the measured 20%
    assert math.isnan(magnitude_row.drop_at_haste_reduction_no_overhead)
    assert magnitude_row.flops_reduction_within_drop == 10.0 and magnitude_row.bracketed


def test_the_timing_table_by_hand():
    rows, _ = _hand_rows()
    timing = runner.timing_table(rows).set_index("target")
    assert (
        timing.loc[20.0, "time_ratio_magnitude"] == 0.8 and timing.loc[25.0, "time_ratio_haste-gemm"] == 2.5
    )
    assert timing.loc[25.0, "haste_num_hyperplanes"] == 14 and "time_ratio_dense" not in timing


def test_haste_is_timed_at_the_l_nearest_each_target_on_the_same_checkpoint():
    _, summary = _hand_rows()
    points = runner.haste_points(summary, "cifar10/resnet34", "ab" * 32, [12.0, 27.0, 90.0])
    assert {target: int(row.num_hyperplanes) for target, row in points.items()} == {
        12.0: 16,
        27.0: 14,
        90.0: 12,
    }


def test_the_runner_measures_counts_and_times_every_method(monkeypatch):
    """End to end on 8 random images and a small random ResNet: the rows' FLOPs are fvcore's count of
    the method's model, every drop is against the dense row, and HASTE is timed at the L of the
    summary nearest the target."""
    from haste.zoo import CIFAR10_MEAN, CIFAR10_STD
    from haste.zoo.data import TensorBatches
    from haste.zoo.weights import WeightsInfo

    generator = torch.Generator().manual_seed(6)
    images = torch.randint(0, 256, (8, 3, 32, 32), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 10, (8,), generator=generator)
    batches = TensorBatches(images, labels, 4, CIFAR10_MEAN, CIFAR10_STD)
    monkeypatch.setattr(runner.experiments, "evaluation_batches", lambda *args, **kwargs: batches)
    summary = pd.DataFrame(
        {
            "model": "cifar10/resnet18",
            "weights_sha256": "ab" * 32,  # another checkpoint: random weights take it (a smoke test)
            "num_hyperplanes": [8, 16],
            "flops_dense": 1.0,
            "flops_reduction": [40.0, 10.0],
            "flops_reduction_no_overhead": [50.0, 20.0],
            "accuracy_drop": [9.0, 1.0],
        }
    )
    toy = toy_resnet()
    monkeypatch.setattr(
        runner.zoo,
        "load",
        lambda *args, **kwargs: (copy.deepcopy(toy), WeightsInfo("", "", "", "random init")),
    )
    rows = runner.measure(
        "cifar10/resnet18",
        [15.0],
        "unused",
        weights=None,
        methods=["magnitude"],
        haste_summary=summary,
        progress=False,
    )
    assert list(rows.columns) == runner.COLUMNS
    assert list(rows.method) == ["dense", "magnitude", "haste-gemm", "haste-compressed"]
    compressed, record = magnitude.compress(toy, 15.0)  # on CIFAR-10's 32x32 images
    dense, pruned = rows.iloc[0], rows.iloc[1]
    assert dense.flops == fvcore_flops(toy, (3, 32, 32)) and pruned.flops == fvcore_flops(
        compressed, (3, 32, 32)
    )
    assert pruned.flops_reduction == pytest.approx(record.flops_reduction) and pruned.ratio == record.ratio
    assert pruned.accuracy_drop == pytest.approx(dense.accuracy - pruned.accuracy) and dense.images == 8
    assert dense.time_ratio == 1.0 and (rows.timed_images == 4).all() and (rows.seconds_per_batch > 0).all()
    assert pruned.time_ratio == pytest.approx(pruned.seconds_per_batch / dense.seconds_per_batch)
    assert (rows.num_hyperplanes.iloc[2:] == 16).all() and rows.accuracy.iloc[2:].isna().all()


def test_without_a_sweep_summary_the_tables_and_the_figure_leave_haste_out(tmp_path):
    from haste.repro import figures_baselines, plotting

    rows, _ = _hand_rows()
    rows = rows.assign(accuracy=90.0 - rows.accuracy_drop, images=10, weights_source="stand-in")
    rows.to_csv(tmp_path / "baselines.csv", index=False)
    table, timing = runner.write_tables(tmp_path)  # no cifar10_sweep_summary.csv there
    assert list(table.method) == ["magnitude"] and math.isnan(table.drop_at_haste_reduction.iloc[0])
    assert list(timing.target) == [30.0, 10.0, 20.0, 25.0]
    fig = figures_baselines.draw(tmp_path, tmp_path / "elsewhere")
    assert plotting.texts_outside_canvas(fig) == []


def test_the_figure_draws_every_method_beside_both_readings_of_haste():
    from haste.repro import figures_baselines, plotting

    rows, summary = _hand_rows()
    rows = rows.assign(accuracy=90.0 - rows.accuracy_drop, images=10, weights_source="stand-in")
    summary = summary.assign(
        seeds=3,
        images=10,
        accuracy=89.0,
        accuracy_std=0.1,
        flops_reduction_std=0.2,
        flops_reduction_no_overhead_std=0.3,
    )
    fig = figures_baselines.baselines_tradeoff(rows, summary)
    (ax,) = fig.axes
    curves = [line for line in ax.lines if len(line.get_xdata()) > 1]
    xs = [tuple(sorted(float(x) for x in line.get_xdata())) for line in curves]
    assert (0.0, 10.0, 20.0, 30.0) in xs  # magnitude from the dense model, by reduction
    assert (15.0, 25.0, 35.0) in xs and (20.0, 30.0, 40.0) in xs  # HASTE counted in full and not
    assert "L = 14" in ax.get_title() and plotting.texts_outside_canvas(fig) == []


def test_a_second_run_reuses_the_rows_of_the_same_code_checkpoint_data_and_run(tmp_path, monkeypatch):
    """Rows the same code measured on the same checkpoint, images and run context are taken from the
    CSV whole, timings included, so the file is unchanged; another sweep summary (HASTE timed at
    another L) or another checkpoint is measured again."""
    from haste.zoo import CIFAR10_MEAN, CIFAR10_STD
    from haste.zoo.data import TensorBatches
    from haste.zoo.weights import WeightsInfo

    monkeypatch.setenv("HASTE_RESULT_CACHE", "0")  # only the CSV may spare an evaluation
    generator = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (8, 3, 32, 32), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 10, (8,), generator=generator)
    batches = TensorBatches(images, labels, 4, CIFAR10_MEAN, CIFAR10_STD)
    monkeypatch.setattr(runner.experiments, "evaluation_batches", lambda *args, **kwargs: batches)
    monkeypatch.setattr(runner.experiments, "load_arguments", lambda *args, **kwargs: {"weights": None})
    toy, sha = toy_resnet(), ["cd" * 32]
    monkeypatch.setattr(
        runner.zoo,
        "load",
        lambda *args, **kwargs: (copy.deepcopy(toy), WeightsInfo("cifar10/resnet18", "", sha[0], "stand-in")),
    )
    summary = tmp_path / "summary.csv"
    pd.DataFrame(
        {
            "model": "cifar10/resnet18",
            "weights_sha256": "cd" * 32,
            "num_hyperplanes": [8, 16],
            "flops_dense": 1.0,
            "flops_reduction": [40.0, 10.0],
            "flops_reduction_no_overhead": [50.0, 20.0],
            "accuracy_drop": [9.0, 1.0],
        }
    ).to_csv(summary, index=False)
    calls = []
    real_evaluate = runner.evaluate
    counted = lambda *args, **kwargs: calls.append(kwargs["description"]) or real_evaluate(*args, **kwargs)
    monkeypatch.setattr(runner, "evaluate", counted)
    csv = tmp_path / "baselines.csv"
    run = lambda: runner.measure_models(
        ["cifar10/resnet18"], [15.0, 30.0], "unused", csv, summary, methods=["magnitude"]
    )
    run()
    written = csv.read_bytes()
    assert len(calls) == 3  # dense and two targets
    calls.clear()
    run()
    assert calls == ["cifar10/resnet18 dense"] and csv.read_bytes() == written
    pd.read_csv(summary).assign(num_hyperplanes=[8, 12]).to_csv(summary, index=False)
    calls.clear()
    run()
    assert len(calls) == 3 and set(pd.read_csv(csv).num_hyperplanes.dropna()) == {8, 12}
    sha[0] = "ef" * 32
    calls.clear()
    run()
    assert len(calls) == 3
