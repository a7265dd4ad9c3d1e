"""Every committed table and summary is what its committed rows give: rebuilt by the code the
notebooks write it with, with the notebooks' parameters, it equals the committed file byte for byte."""

import contextlib
import io
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from haste.repro import derived

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """A copy of results/ in a checkout-like folder, every derived file rebuilt in order (later ones
    read earlier ones) by the documented command, ``python -m haste.repro.derived``."""
    root = tmp_path_factory.mktemp("checkout")
    folder = root / "results"
    folder.mkdir()
    for path in RESULTS.glob("*.csv"):
        shutil.copy(path, folder / path.name)
    for benchmark in ("speed", "speed_cuda"):  # benchmarks/speed.py's measurements
        shutil.copytree(RESULTS / benchmark, folder / benchmark)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(derived, "__file__", str(root / "haste" / "repro" / "derived.py"))  # its results/
        patch.setattr(sys, "argv", ["python -m haste.repro.derived"])
        assert derived.main() == 0
    assert printed.getvalue().splitlines() == [f"wrote {folder / name}" for name in derived.DERIVED]
    return folder


def test_the_command_takes_another_results_folder(rebuilt, tmp_path, capsys):
    shutil.copytree(rebuilt, tmp_path, dirs_exist_ok=True)
    assert derived.main([str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"wrote {tmp_path / next(iter(derived.DERIVED))}"
    assert all((tmp_path / name).read_bytes() == (RESULTS / name).read_bytes() for name in derived.DERIVED)


@pytest.mark.parametrize("name", list(derived.DERIVED))
def test_a_committed_table_is_rebuilt_byte_for_byte_from_its_rows(rebuilt, name):
    assert (rebuilt / name).read_bytes() == (RESULTS / name).read_bytes(), f"{name} differs from its rows"


def test_every_derived_csv_is_listed():
    from haste.repro.verify import MEASUREMENT_CSVS

    measured = {
        *MEASUREMENT_CSVS,
        "baselines.csv",  # 10_baselines' measurements
        "patch_compression.csv",  # per-patch statistics, measured
        "hash_stability.csv",  # benchmarks/hash_stability.py's measurements
        "hash_stability_layers.csv",
        "code_checks.csv",  # scripts/restamp_rows.py's record
    }
    committed = {path.name for path in RESULTS.glob("*.csv")}
    assert committed - measured == set(derived.DERIVED)


def test_patch_compression_by_stage_by_hand(tmp_path):
    # two histogram rows per layer (its mean repeated); layer1 has two layers of 64 channels
    pd.DataFrame(
        {
            "layer": ["layer1.0.conv1"] * 2 + ["layer1.1.conv2"] * 2 + ["layer2.0.conv1"] * 2,
            "in_channels": [64] * 4 + [128] * 2,
            "mean_kept": [0.5, 0.5, 0.25, 0.25, 0.75, 0.75],
        }
    ).to_csv(tmp_path / "patch_compression.csv", index=False)
    table = derived.patch_compression_by_stage(tmp_path)
    assert table.values.tolist() == [["layer1", 64, 2, 0.25, 0.5], ["layer2", 128, 1, 0.75, 0.75]]


def test_speed_summaries_by_hand(tmp_path):
    (tmp_path / "speed").mkdir()
    layers = pd.DataFrame(
        {
            "path": ["dense", "eval", "compressed"] * 2,
            "gflops_per_s": [100.0, 10.0, 5.0, 300.0, 30.0, 1.0],
            "ratio_to_dense": [1.0, 0.9, 1.5, 1.0, 1.2, 0.8],
            "ideal_speedup": [1.0, 2.0, 2.0, 1.0, 3.0, 3.0],
            "channels": [64] * 3 + [128] * 3,
            "size": 8,
            "num_hyperplanes": 14,
            "batch": 1,
            "inputs": "iid",
        }
    )
    layers.to_csv(tmp_path / "speed" / "layers.csv", index=False)
    throughput = derived.speed_throughput(tmp_path)  # the other CSVs are absent: left out
    assert throughput.values.tolist() == [["CPU, synthetic layers", 2, 200.0, 20.0, 3.0]]
    closest = derived.speed_closest(tmp_path)
    assert closest[["path", "faster", "count", "ratio_to_dense", "ideal_speedup"]].values.tolist() == [
        ["eval", 1, 2, 0.9, 2.0],
        ["compressed", 1, 2, 0.8, 3.0],
    ]
    assert closest.case.tolist() == [
        "64 ch, 8x8, L = 14, batch 1, iid inputs",
        "128 ch, 8x8, L = 14, batch 1, iid inputs",
    ]
