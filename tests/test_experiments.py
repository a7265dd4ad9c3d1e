"""Experiment helpers: comparing settings at equal FLOPs, checked by hand."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from haste.repro.analysis import drop_at_reduction

ROOT = Path(__file__).resolve().parents[1]


def test_drop_is_interpolated_between_measured_points_and_never_extrapolated():
    summary = pd.DataFrame(
        {
            "variant": ["a", "a", "a", "b", "b"],
            "flops_reduction": [30.0, 20.0, 40.0, 10.0, 26.0],  # unsorted on purpose
            "accuracy_drop": [3.0, 1.0, 9.0, 0.5, 2.1],
        }
    )
    table = drop_at_reduction(summary, [25.0, 35.0]).set_index(["variant", "flops_reduction"])
    assert table.accuracy_drop[("a", 25.0)] == pytest.approx(2.0)  # halfway between (20, 1) and (30, 3)
    assert table.accuracy_drop[("a", 35.0)] == pytest.approx(6.0)  # halfway between (30, 3) and (40, 9)
    assert table.accuracy_drop[("b", 25.0)] == pytest.approx(0.5 + 15 / 16 * 1.6)
    assert math.isnan(table.accuracy_drop[("b", 35.0)])  # beyond b's largest reduction


def test_summary_of_saved_rows_is_what_a_rerun_reading_them_back_derives(tmp_path):
    from haste.repro.analysis import summarize
    from haste.repro.result_rows import RESULT_COLUMNS, save_rows

    rows = pd.DataFrame(
        [
            {column: None for column in RESULT_COLUMNS}
            | {
                "model": "m",
                "weights_sha256": "ab" * 32,
                "num_hyperplanes": 8,
                "seed": seed,
                "commit": "0" * 40,
                "accuracy": 90 + seed / 3,
                "accuracy_drop": 1 - seed / 7,
                "flops_reduction": 30 + seed / 9,
                "flops_reduction_no_overhead": 40 + seed / 11,
            }
            for seed in range(3)
        ]
    )  # more than 6 digits
    path = tmp_path / "rows.csv"
    first = summarize(save_rows(rows, path))
    rerun = summarize(save_rows(pd.read_csv(path), path))
    for column in ["accuracy_std", "flops_reduction_std"]:
        assert first[column].tolist() == rerun[column].tolist()  # exactly: the CSVs diff clean
    assert summarize(rows).accuracy_std[0] != rerun.accuracy_std[0]  # from unrounded rows, it differed


def test_conv_linear_conventions_derived_from_older_rows_equal_the_measured_ones():
    from torch import nn

    import haste
    from haste.repro.tables import with_convlinear_baseline

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    ).eval()
    converted = haste.convert(model, 3)
    images = torch.randn(4, 3, 8, 8)
    measured = haste.evaluate(
        converted, [(images, torch.zeros(4, dtype=torch.long))], progress=False
    ).to_dict()
    row = pd.DataFrame([{"model": "m", "num_hyperplanes": 3, **measured}])
    derived_columns = [
        "flops_dense_convlinear",
        "flops_reduction_convlinear",
        "flops_reduction_convlinear_no_overhead",
    ]
    older = row.drop(columns=derived_columns)
    derived = with_convlinear_baseline(older, {"m": measured["flops_dense_convlinear"]})
    for column in derived_columns:
        assert derived[column].iloc[0] == pytest.approx(measured[column]), column
    assert derived.flops_reduction_convlinear.iloc[0] > measured["flops_reduction"]  # BN and pool left out


def test_quality_trend_is_the_least_squares_line():
    from haste.repro.tables import quality_trend

    # reduction = 2 * accuracy - 100 + noise of +-1 at the middle points: slope 2 exactly by symmetry
    points = pd.DataFrame(
        {"baseline_accuracy": [60.0, 70.0, 80.0, 90.0], "flops_reduction": [20.0, 41.0, 59.0, 80.0]}
    )
    trend = quality_trend(points, ["flops_reduction"], at=95.0).iloc[0]
    # by hand: mean x 75, mean y 50; sum dx*dy = (-15)(-30)+(-5)(-9)+(5)(9)+(15)(30) = 990; sum dx^2 = 500
    assert trend.slope == pytest.approx(990 / 500)
    assert trend.flops_reduction_at_baseline == pytest.approx(50 + 990 / 500 * 20)
    assert trend.extrapolated and trend.checkpoints == 4
    assert 0.99 < trend.correlation < 1
    assert not quality_trend(points, ["flops_reduction"], at=75.0).iloc[0].extrapolated


def test_rows_measured_now_and_rows_reused_land_in_the_order_of_the_file(tmp_path):
    """05_ablations concatenates rows read back from the CSV with rows measured now, whose columns hold
    Python ints and bools where the file's hold floats and strings: the file must come out the same
    in whichever order, and equal to the committed one."""
    from haste.repro.result_rows import read_rows, save_rows

    committed = ROOT / "results" / "ablations.csv"
    rows = read_rows(committed)
    control = rows.variant == "L1 pruning (control)"
    measured = rows[control].astype(object)  # as a fresh measurement holds them
    for column in ("num_hyperplanes", "patch_size", "skip", "seed"):
        measured[column] = [int(value) for value in measured[column]]
    for first, second in ((rows[~control], measured), (measured, rows[~control])):
        save_rows(pd.concat([first, second], ignore_index=True), tmp_path / "ablations.csv")
        assert (tmp_path / "ablations.csv").read_bytes() == committed.read_bytes()
