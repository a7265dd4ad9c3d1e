import pytest
import torch
from torch import nn

import haste
from haste import HasteConv2d


def tiny_layer(c_in=4, c_out=2, num_hyperplanes=2):
    layer = HasteConv2d.from_conv(nn.Conv2d(c_in, c_out, 3, 1, 1), num_hyperplanes, patch_size=3)
    layer.hyperplanes = torch.ones_like(layer.hyperplanes)  # every entry nonzero: nnz = pixels * L
    return layer


def test_hand_counted_flops_when_all_channels_merge():
    # 5x5 input, 3x3 conv, pad 1 -> 5x5 output, P=3 -> tiles with 3x3, 3x2, 2x3, 2x2 outputs,
    # reading windows of 5x5, 5x4, 4x5, 4x4 = 25 + 20 + 20 + 16 = 81 pixels.
    layer = tiny_layer()
    x = torch.randn(1, 1, 5, 5).expand(1, 4, 5, 5)  # identical channels: one bucket per patch
    layer(x)
    s = layer.stats
    assert s.patches == 4
    assert s.dense == 2 * 4 * 9 * 25
    assert s.conv == 2 * 9 * (1 * 9 + 1 * 6 + 1 * 6 + 1 * 4)
    assert s.filter_merge == 2 * 9 * (4 - 1) * 4
    assert s.centre == 2 * 4 * 81
    assert s.input_merge == 4 * 81
    assert s.hash == 4 * 81 * 2


def test_hand_counted_flops_when_nothing_merges():
    layer = HasteConv2d.from_conv(nn.Conv2d(3, 2, 3, 1, 1), 40, sparsity=0.0, patch_size=3)
    layer(torch.randn(2, 3, 4, 4))  # 4x4 output: tiles 3x3, 3x1, 1x3, 1x1 -> windows 25, 15, 15, 9
    s = layer.stats
    assert s.conv == s.dense == 2 * (2 * 3 * 9 * 16)
    assert s.filter_merge == 0
    assert s.centre == 2 * (2 * 3 * 64)
    assert s.hash == 2 * 3 * 64 * 40  # sparsity 0: every entry nonzero


def report_model():
    """Stem conv (left dense), ReLU, a 3x3 conv (HASTE), average pool, linear, on 8x8 images. The
    stem's filters are all equal, so the HASTE layer sees identical channels: one bucket per patch.
    fvcore counts the convs, the linear layer and the average pool (8 channels x 64 pixels)."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )
    with torch.no_grad():
        model[0].weight.copy_(model[0].weight[:1].expand_as(model[0].weight))
        model[0].bias.fill_(0.1)
    converted = haste.convert(model, 3)
    layer = converted[2]
    layer.hyperplanes = torch.ones_like(layer.hyperplanes)  # nonzeros = 3 per window pixel
    images = torch.randn(4, 3, 8, 8)
    result = haste.evaluate(converted, [(images, torch.zeros(4, dtype=torch.long))], progress=False)
    return result


# By hand, per image. The HASTE layer: 8x8 output, P = 3 -> 9 patches with 3x3, 3x2, 2x3 and 2x2
# outputs, windows of 5 or 4 pixels a side: (5 + 5 + 4) ** 2 = 196 window pixels; one bucket each.
WHOLE = 3 * 8 * 9 * 64 + 8 * 8 * 9 * 64 + 8 * 10 + 8 * 64  # convs, linear, avg pool: 51280
REPLACED = 8 * 8 * 9 * 64  # the HASTE layer's dense FLOPs: 36864
HASTE_TERMS = {
    "conv": 8 * 9 * 64 * 1,  # C_out * k^2 * outputs * m: 4608
    "centre": 2 * 8 * 196,  # 3136
    "hash": 8 * 196 * 3,  # 4704
    "input_merge": 8 * 196,  # 1568
    "filter_merge": (8 * 9 - 9) * 8 * 9,  # (C_in * patches - buckets) * C_out * k^2: 4536
}
OVERHEAD = 3136 + 4704 + 1568 + 4536  # 13944


def test_report_combines_fvcore_and_layer_records():
    result = report_model()
    totals = result.to_dict()
    assert totals["flops_dense"] == WHOLE
    assert totals["flops_haste"] == WHOLE - REPLACED + 4608 + OVERHEAD == 32968
    assert totals["flops_overhead"] == OVERHEAD
    assert totals["flops_reduction"] == pytest.approx(100 * (1 - 32968 / WHOLE))
    assert totals["flops_reduction_no_overhead"] == pytest.approx(100 * (1 - (32968 - OVERHEAD) / WHOLE))
    row = result.report.layers.iloc[0]
    assert row["layer"] == "2" and row["images"] == 4
    assert row["flops_dense"] == REPLACED
    for term, flops in HASTE_TERMS.items():
        assert row[f"flops_{term}"] == flops, term
    assert row["flops_overhead"] == OVERHEAD and row["flops_haste"] == 4608 + OVERHEAD
    assert row["conv_fraction_kept"] == pytest.approx(1 / 8)
    assert row["flops_reduction"] == pytest.approx(100 * (1 - (4608 + OVERHEAD) / REPLACED))
    assert row["flops_reduction_no_overhead"] == pytest.approx(100 * (1 - 4608 / REPLACED))


def test_every_accounting_convention_by_hand():
    totals = report_model().to_dict()
    conv_linear = WHOLE - 8 * 64  # without the average pool
    spent = {  # the HASTE layer's cost per image under each convention
        "": 4608 + OVERHEAD,
        "_no_filter_merge": 4608 + OVERHEAD - 4536,
        "_no_overhead": 4608,
    }
    assert totals["flops_dense_convlinear"] == conv_linear
    assert totals["flops_filter_merge"] == 4536
    for suffix, layer_cost in spent.items():
        whole_reduction = 100 * (1 - (WHOLE - REPLACED + layer_cost) / WHOLE)
        conv_linear_reduction = 100 * (1 - (conv_linear - REPLACED + layer_cost) / conv_linear)
        assert totals[f"flops_reduction{suffix}"] == pytest.approx(whole_reduction), suffix
        assert totals[f"flops_reduction_convlinear{suffix}"] == pytest.approx(conv_linear_reduction), suffix


def test_dense_model_has_zero_reduction():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(1, 3, 6, 6))
    result = haste.evaluate(
        model, [(torch.randn(2, 3, 6, 6), torch.zeros(2, dtype=torch.long))], progress=False
    )
    assert result.to_dict()["flops_reduction"] == 0
    assert result.to_dict()["flops_reduction_no_overhead"] == 0
    assert result.to_dict()["flops_dense"] == 4 * 3 * 9 * 16 + 4 * 16 * 2


def test_operating_points_when_no_l_qualifies():
    import pandas as pd

    from haste.repro.analysis import operating_points

    summary = pd.DataFrame(
        {"model": ["m", "m"], "accuracy_drop": [3.0, 5.0], "flops_reduction": [10.0, 20.0]}
    )
    assert operating_points(summary, {"m": 4.0}).flops_reduction.tolist() == [10.0]
    empty = operating_points(summary, {"m": 1.0})
    assert empty.empty and "model" in empty.columns
