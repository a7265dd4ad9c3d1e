"""Every notebook runs under papermill in quick mode, in run_all.sh's order; CSV schemas are checked."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED_CIFAR
from test_data import make_tree

from haste.repro import notebooks
from haste.repro.experiments import RESULT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_the_runner_lists_every_notebook():
    assert sorted(notebooks.ORDER) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_a_full_run_without_the_trained_checkpoints_stops_before_the_first_notebook(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cache/haste/checkpoint-quality here
    monkeypatch.setattr(notebooks, "run", lambda *args, **kwargs: pytest.fail("a notebook ran"))
    data = make_tree(tmp_path / "cifar", per_class=1)
    with pytest.raises(SystemExit) as stop:
        notebooks.main(["01_cifar10_sweep", "09_checkpoint_quality", "--data", str(data)])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "1 epochs: ~/.cache/haste/checkpoint-quality/weights/e1" in err and "checkpoint_quality.sh" in err
    for epochs in ("1", "2", "3"):  # once they are there, nothing is missing
        (tmp_path / ".cache" / "haste" / "checkpoint-quality" / "weights" / f"e{epochs}").mkdir(parents=True)
    assert notebooks.missing_checkpoints(["09_checkpoint_quality"], quick=False) == []
    assert notebooks.missing_checkpoints(["09_checkpoint_quality"], quick=True) == []


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("notebooks")
    data = SHARED_CIFAR if (SHARED_CIFAR / "test").is_dir() else make_tree(tmp / "cifar", per_class=8)
    # what run_all.sh --quick runs: the quick parameter files, only declared parameters passed
    notebooks.run(
        notebooks.ORDER,
        quick=True,
        out_dir=tmp / "executed",
        log_output=False,
        results_dir=str(tmp / "results"),
        data=str(data),
    )
    return tmp / "results" / "quick"


def test_sweep_csv_schema(quick_results):
    sweep = pd.read_csv(quick_results / "cifar10_sweep.csv")
    assert list(sweep.columns) == RESULT_COLUMNS
    assert sweep.num_hyperplanes.isna().sum() == 1  # the dense baseline
    assert sweep.dropna(subset=["num_hyperplanes"]).flops_reduction.gt(0).all()
    summary = pd.read_csv(quick_results / "cifar10_sweep_summary.csv")
    assert {"accuracy_std", "flops_reduction_std", "seeds"} <= set(summary.columns)


def test_table_figures_and_other_outputs(quick_results):
    table = pd.read_csv(quick_results / "cifar10_main_table.csv")
    assert {
        "model",
        "weights_sha256",
        "baseline_accuracy",
        "num_hyperplanes",
        "accuracy_drop",
        "flops_reduction",
        "flops_reduction_no_overhead",
        "paper_flops_reduction",
    } <= set(table.columns)
    for figure in ("cifar10_tradeoff", "patch_compression", "cifar10_patch_size"):
        for suffix in ("png", "pdf"):
            assert (quick_results / "figures" / f"{figure}.{suffix}").stat().st_size > 1000
    patches = pd.read_csv(quick_results / "patch_compression.csv")
    assert {"layer", "bin_left", "bin_right", "patches", "mean_kept", "commit"} <= set(patches.columns)
    ablations = pd.read_csv(quick_results / "ablations.csv")
    assert set(RESULT_COLUMNS + ["variant"]) == set(ablations.columns)
    assert ablations.variant.nunique() >= 3


def test_imagenet_quick_run_writes_only_to_quick(quick_results):
    sweep = pd.read_csv(quick_results / "imagenet_sweep.csv")
    assert list(sweep.columns) == RESULT_COLUMNS + ["per_image_correct"]
    summary = pd.read_csv(quick_results / "imagenet_sweep_summary.csv")
    assert {"accuracy_drop_std", "accuracy_drop_se", "accuracy_drop_ci_low"} <= set(summary.columns)
    assert (quick_results / "imagenet_sweep_operating_point.csv").is_file()
    assert (quick_results / "figures" / "imagenet_tradeoff.png").stat().st_size > 1000
    assert (sweep.weights_source == "random init").all() and (sweep.images == 4).all()
    assert not (quick_results.parent / "imagenet_sweep.csv").exists()


def test_reconciliation_and_checkpoint_quality_outputs(quick_results):
    from haste.repro.tables import CONVENTIONS

    table = pd.read_csv(quick_results / "paper_reconciliation.csv")
    assert set(table.convention) == set(CONVENTIONS)
    assert {"patch_size", "num_hyperplanes", "bracketed", "paper_flops_reduction"} <= set(table.columns)
    main = pd.read_csv(quick_results / "cifar10_main_table.csv")
    assert {"convention", "flops_reduction_convention"} <= set(main.columns)
    points = pd.read_csv(quick_results / "checkpoint_quality_points.csv")
    assert {"epochs", "baseline_accuracy", "flops_reduction"} <= set(points.columns)
    for figure in ("paper_reconciliation", "checkpoint_quality"):
        assert (quick_results / "figures" / f"{figure}.png").stat().st_size > 1000
