"""Operating points at the edge of the L grid are detected, flagged and (in sweeps) bracketed by rule."""

import pandas as pd
import pytest

from haste.repro import experiments, result_rows, tables
from haste.repro.analysis import grid_status, next_hyperplanes, operating_points


def curve(model, drops, grid=(10, 12, 14, 16)):
    """A summary of one model: FLOPs reduction falls with L (2 points per L below 20), drops as given."""
    return pd.DataFrame(
        {
            "model": model,
            "num_hyperplanes": list(grid),
            "accuracy_drop": drops,
            "flops_reduction": [40.0 - 2 * L for L in grid],
        }
    )


def test_grid_status_by_hand():
    assert grid_status(curve("m", [3.0, 1.5, 1.0, 0.5]), 1.25) == "bracketed"  # crossed between L=12 and 14
    assert grid_status(curve("m", [1.2, 1.0, 0.8, 0.5]), 1.25) == "within at every L"  # L=10 is the edge
    assert grid_status(curve("m", [5.0, 4.0, 3.0, 2.0]), 1.25) == "above at every L"


def test_an_operating_point_at_the_grid_edge_is_flagged_and_warned_about():
    summary = pd.concat(
        [curve("a", [3.0, 1.5, 1.0, 0.5]), curve("b", [1.2, 1.0, 0.8, 0.5])], ignore_index=True
    )
    with pytest.warns(
        UserWarning, match=r"b: the mean drop is within 1.25 pp at every L measured \(down to L=10\)"
    ):
        points = operating_points(summary, {"a": 1.25, "b": 1.25}).set_index("model")
    assert points.num_hyperplanes.to_dict() == {"a": 14, "b": 10}
    assert points.bracketed.to_dict() == {"a": True, "b": False}


def test_no_operating_point_is_warned_about_and_the_table_says_not_bracketed():
    summary = pd.concat(
        [curve("a", [3.0, 1.5, 1.0, 0.5]), curve("c", [5.0, 4.0, 3.0, 2.0])], ignore_index=True
    )
    summary = summary.assign(accuracy=90.0, accuracy_std=0.1, flops_reduction_std=0.0, seeds=3)
    summary["flops_reduction_no_overhead"] = summary.flops_reduction + 5
    results = pd.DataFrame(
        {"model": ["a", "c"], "num_hyperplanes": [None, None], "accuracy": [93.0, 94.0]}
    ).assign(weights_sha256="ab", images=10000)
    with pytest.warns(
        UserWarning, match=r"c: the mean drop exceeds 1.25 pp at every L measured \(up to L=16\)"
    ):
        table = tables.main_table(results, summary).set_index("model")
    assert table.bracketed[["a", "c"]].to_dict() == {"a": True, "c": False}  # (and the paper's models: NaN)
    assert table.num_hyperplanes["a"] == 14 and pd.isna(table.num_hyperplanes["c"])


def test_the_extension_rule():
    assert next_hyperplanes(curve("m", [3.0, 1.5, 1.0, 0.5]), 1.25) is None
    assert next_hyperplanes(curve("m", [1.2, 1.0, 0.8, 0.5]), 1.25) == 8  # 2 below the smallest L
    assert next_hyperplanes(curve("m", [5.0, 4.0, 3.0, 2.0]), 1.25) == 18  # 2 above the largest
    assert next_hyperplanes(curve("m", [0.5, 0.4], grid=(2, 4)), 1.25) is None  # L stays >= 1


def test_sweep_models_extends_the_grid_until_the_limit_is_crossed(tmp_path, monkeypatch):
    # a stand-in sweep: the drop is 12 / L pp, so 1.25 pp is crossed between L = 9 and L = 10
    def fake_sweep(name, grid, seeds, data, baseline=True, **options):
        rows = [{"model": name, "num_hyperplanes": None, "accuracy_drop": 0.0}] if baseline else []
        rows += [{"model": name, "num_hyperplanes": L, "seed": 0, "accuracy_drop": 12 / L} for L in grid]
        rows = pd.DataFrame(rows).reindex(columns=result_rows.RESULT_COLUMNS)
        return rows.assign(flops_reduction=40.0 - rows.num_hyperplanes, accuracy=90.0)

    monkeypatch.setattr(experiments, "sweep", fake_sweep)
    monkeypatch.setattr(experiments, "load_arguments", lambda *args, **kwargs: {})
    run = lambda extend: experiments.sweep_models(
        ["m"], lambda name: [14, 16], [0], "data", tmp_path / "s.csv", extend_grid=extend
    )
    rows, _ = run(extend=3)
    assert sorted(rows.num_hyperplanes.dropna()) == [8, 10, 12, 14, 16]  # 8 is the first beyond 1.25 pp
    rows, _ = run(extend=1)
    assert sorted(rows.num_hyperplanes.dropna()) == [12, 14, 16]  # at most one more: still the edge
