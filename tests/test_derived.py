"""Every committed table and summary is what its committed rows give: rebuilt by the code the
notebooks write it with, with the notebooks' parameters, it equals the committed file byte for byte."""

import contextlib
import io
import shutil
import sys
from pathlib import Path

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
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(derived, "__file__", str(root / "haste" / "repro" / "derived.py"))  # its results/
        patch.setattr(sys, "argv", ["python -m haste.repro.derived"])
        assert derived.main() == 0
    assert printed.getvalue().splitlines() == [f"wrote {folder / name}" for name in derived.DERIVED]
    return folder


def test_the_command_takes_another_results_folder(rebuilt, tmp_path, capsys):
    for path in rebuilt.glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
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
