"""Every notebook runs under papermill in quick mode, in run_all.sh's order; CSV schemas are checked."""

from pathlib import Path

import pandas as pd
import pytest
from conftest import SHARED_CIFAR
from test_data import make_tree

from haste.repro import notebooks
from haste.repro.result_rows import RESULT_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_the_runner_lists_every_notebook():
    assert sorted(notebooks.ORDER) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_a_full_run_skips_what_lacks_its_preparation_and_goes_on(tmp_path, capsys):
    """A full run on a tiny setup: 06 and 09 lack their prepared inputs (no Keras import, no trained
    checkpoints in this test's private home and cache), so each is skipped with one line naming the
    command that prepares it, its committed results stay byte for byte, the notebook that has its
    inputs runs, and the run ends with a summary and exit 0."""
    results = tmp_path / "results"
    results.mkdir()
    kept = ["cifar10_sweep.csv", "cifar10_sweep_summary.csv", "paper_reconciliation.csv"]
    kept += ["imagenet_sweep.csv", "checkpoint_quality.csv"]  # 06's and 09's: must stay untouched
    for name in kept:
        (results / name).write_bytes((ROOT / "results" / name).read_bytes())
    data = make_tree(tmp_path / "cifar", per_class=1)
    names = ["06_imagenet", "09_checkpoint_quality", "02_cifar10_main_table"]
    argv = [*names, "--data", str(data), "--results-dir", str(results), "--executed-dir", str(tmp_path / "x")]
    assert notebooks.main(argv) == 0
    out = capsys.readouterr().out
    summary = out[out.index("== summary (full run") :].splitlines()
    assert [line.split()[:2] for line in summary[1:]] == [
        ["skipped", "06_imagenet"],
        ["skipped", "09_checkpoint_quality"],
        ["ran", "02_cifar10_main_table"],
    ]
    assert "./run_all.sh --prepare" in summary[1] and "python -m haste import keras-resnet50" in summary[1]
    assert "./run_all.sh --prepare trains them" in summary[2] and "1-epoch" in summary[2]
    assert summary[3].split()[2:] and summary[3].split()[3] == "s"  # its wall time
    for name in ("imagenet_sweep.csv", "checkpoint_quality.csv", "cifar10_sweep.csv"):
        assert (results / name).read_bytes() == (ROOT / "results" / name).read_bytes()
    main_table = (results / "cifar10_main_table.csv").read_bytes()
    assert main_table == (ROOT / "results" / "cifar10_main_table.csv").read_bytes()  # regenerated equal


def test_once_prepared_nothing_is_missing(tmp_path, monkeypatch):
    from haste.repro import prepare

    monkeypatch.setenv("HASTE_CACHE", str(tmp_path / "cache"))  # where scripts/checkpoint_quality.sh writes
    series = tmp_path / "cache" / "checkpoint-quality" / "weights"
    parameters = prepare.notebook_parameters("09_checkpoint_quality", False, {})
    assert prepare.missing_checkpoints(parameters) == {e: str(series / f"e{e}") for e in ("1", "2", "3")}
    assert f"1-epoch {series / 'e1'}" in prepare.missing_inputs("09_checkpoint_quality", False, {})
    for epochs in ("1", "2", "3"):
        (series / f"e{epochs}").mkdir(parents=True)
    assert prepare.missing_inputs("09_checkpoint_quality", False, {}) is None
    assert prepare.missing_inputs("06_imagenet", True, {}) is None  # quick mode: synthetic, random


@pytest.mark.parametrize(
    "option, message",
    [
        (["--device", "cuda:7"], "error: --device: device cuda:7 asked for"),
        (["--shard", "5/2"], "error: --shard: shard 5/2: expected K/N"),
        (["--weights", "/nowhere/at/all"], "error: --weights /nowhere/at/all: "),
    ],
)
def test_the_runner_checks_its_options_before_the_first_notebook(
    tmp_path, monkeypatch, capsys, option, message
):
    monkeypatch.setattr(notebooks, "run", lambda *args, **kwargs: pytest.fail("a notebook ran"))
    data = make_tree(tmp_path / "cifar", per_class=1)
    with pytest.raises(SystemExit) as stop:
        notebooks.main([*option, "--data", str(data), "--executed-dir", str(tmp_path / "executed")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and err.startswith(message), err
    assert not (tmp_path / "executed").exists()  # nothing half-made


def test_prepare_without_npm_says_so_and_trains_only_what_is_missing(tmp_path, monkeypatch):
    from haste.repro import prepare

    monkeypatch.setenv("HASTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(prepare.shutil, "which", lambda program: None)
    assert "npm is not installed" in prepare.prepare_keras_import(run=lambda *a, **k: pytest.fail("ran"))
    calls = []
    prepare.prepare_checkpoint_quality(run=lambda command, **options: calls.append(options["env"]["EPOCHS"]))
    assert calls == ["1 2 3"]
    (tmp_path / "cache" / "checkpoint-quality" / "weights" / "e2").mkdir(parents=True)
    calls.clear()
    prepare.prepare_checkpoint_quality(run=lambda command, **options: calls.append(options["env"]["EPOCHS"]))
    assert calls == ["1 3"]


def test_an_unknown_notebook_is_refused_as_run_all_refuses_it(capsys):
    with pytest.raises(SystemExit) as stop:
        notebooks.main(["--quick", "nosuch"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "no notebook nosuch" in err


def test_the_kernels_own_notices_are_not_shown(capsys):
    import sys

    stream = notebooks.KernelNoiseFilter(sys.stderr)
    stream.write("[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All ...\nkept 1\n")
    stream.write("ERROR | KeyboardInterrupt caught in kernel\nkept ")
    stream.write("2\n 50%|#####     | 5/10\r")
    stream.flush()
    assert capsys.readouterr().err == "kept 1\nkept 2\n 50%|#####     | 5/10\r"


def test_a_warning_is_one_line_without_the_code_that_raised_it(capsys):
    import sys

    stream = notebooks.KernelNoiseFilter(sys.stderr)
    stream.write("/repo/haste/repro/tables.py:26: UserWarning: cifar10/resnet18: no operating point\n")
    stream.write("  points = operating_points(summary, max_drop)\n  indented output stays\n")
    stream.write("/tmp/ipykernel_1/2.py:3: RuntimeWarning: 2 of 9 images gave NaN\n  x = 1\nnext\n")
    stream.flush()
    assert capsys.readouterr().err == (
        "warning: cifar10/resnet18: no operating point\n  indented output stays\n"
        "warning: 2 of 9 images gave NaN\nnext\n"
    )


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
