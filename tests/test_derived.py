"""Every committed table and summary is what its committed rows give: rebuilt by the code the
notebooks write it with, with the notebooks' parameters, it equals the committed file byte for byte."""

import shutil
from pathlib import Path

import pytest

from haste.repro import derived
from haste.repro.prepare import notebook_parameters

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    """A copy of results/ with every derived file rebuilt in order (later ones read earlier ones)."""
    folder = tmp_path_factory.mktemp("results")
    for path in RESULTS.glob("*.csv"):
        shutil.copy(path, folder / path.name)
    for name, (notebook, _, _) in derived.DERIVED.items():
        derived.write(name, folder, **notebook_parameters(notebook, False, {}))
    return folder


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
