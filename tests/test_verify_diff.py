"""``python -m haste verify`` and ``python -m haste diff``: what a reviewer runs to check numbers."""

from pathlib import Path

import pandas as pd
import pytest
from test_data import make_tree

from haste.repro import diff, experiments, result_rows, verify
from haste.repro.cli import main
from haste.repro.verify import MEASUREMENT_CSVS


@pytest.fixture
def computed_csv(tmp_path):
    """A committed-looking CSV: the shipped ResNet18, dense and L = 12, on 20 synthetic images."""
    data = make_tree(tmp_path / "cifar", per_class=2)
    rows = experiments.sweep("cifar10/resnet18", [12], [0], data, batch_size=8, progress=False)
    return result_rows.save_rows(rows, tmp_path / "sweep.csv"), tmp_path / "sweep.csv", data


def test_verify_agrees_with_a_row_it_computed_and_not_with_one_altered_beyond_the_tolerance(
    computed_csv, capsys
):
    rows, path, data = computed_csv
    argv = ["verify", "--csv", str(path), "--rows", "2", "--data", str(data)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(": agrees") == 2 and "2 agree, 0 disagree" in out
    one_prediction = 100 / 20  # pp, of 20 images
    assert verify.allowed_prediction_change(20) == 1
    rows.loc[1, "accuracy"] += one_prediction  # at the tolerance: still agrees
    rows.to_csv(path, index=False)
    assert main(argv) == 0
    rows.loc[1, "accuracy"] += one_prediction  # two predictions: beyond it
    rows.to_csv(path, index=False)
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "DISAGREES: 2 predictions differ (allowed 1)" in out and "1 agree, 1 disagree" in out
    rows.loc[1, "accuracy"] -= 2 * one_prediction
    rows.loc[1, "flops_haste"] *= 1.01  # FLOPs beyond the relative tolerance
    rows.to_csv(path, index=False)
    assert main(argv) == 1
    assert "DISAGREES: flops_haste" in capsys.readouterr().out


def test_verify_reports_a_row_whose_checkpoint_is_missing_in_one_line(computed_csv, capsys):
    rows, path, data = computed_csv
    rows["weights_sha256"] = "0" * 64  # no checkpoint here has this hash
    rows.to_csv(path, index=False)
    assert main(["verify", "--csv", str(path), "--rows", "1", "--data", str(data)]) == 1  # none checked
    lines = [line for line in capsys.readouterr().out.splitlines() if ": not checked:" in line]
    assert len(lines) == 1 and "no checkpoint with SHA-256 000000000000" in lines[0]


def test_verify_and_diff_refuse_missing_files_and_other_schemas_in_one_line(tmp_path, capsys):
    other = tmp_path / "other.csv"
    pd.DataFrame({"a": [1], "b": [2]}).to_csv(other, index=False)
    for argv, message in [
        (["verify", "--csv", str(tmp_path / "none.csv")], "no result CSV at"),
        (["verify", "--csv", str(other)], "not a CSV of measurement rows"),
        (["diff", str(tmp_path / "none.csv"), str(other)], "no such file or folder"),
        (["diff", str(other), str(tmp_path)], "compare two CSVs or two folders"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def rows(accuracies: dict) -> pd.DataFrame:
    """Measurement rows of one model at L = 14 and its dense row, by seed (``None``: dense)."""
    base = {"model": "cifar10/x", "weights_sha256": "ab" * 32, "sparsity": 0.666667, "patch_size": 3}
    base |= {"projection": "ternary", "centre": True, "grouping": "lsh", "skip": 1}
    base |= {"include_pointwise": False, "images": 10_000, "flops_haste": 1e8, "commit": "c1"}
    return pd.DataFrame(
        [
            {**base, "num_hyperplanes": None if seed is None else 14, "seed": seed, "accuracy": accuracy}
            for seed, accuracy in accuracies.items()
        ]
    ).reindex(columns=[*result_rows.MEASUREMENT_KEYS, "accuracy", "flops_haste", "commit"])


def test_diff_classifies_every_kind_of_difference_exactly(tmp_path, capsys):
    old = rows({None: 90.0, 0: 87.0, 1: 87.5, 2: 88.0, 3: 86.0, 4: 88.5})  # seeds' std: about 0.94 pp
    new = old.copy()
    new.loc[1, "commit"] = "c2"  # provenance only: identical
    new.loc[2, "accuracy"] += 0.04  # 4 predictions of 10,000: rounding
    new.loc[2, "flops_haste"] *= 1 + 1e-4  # and FLOPs within 1e-3: still rounding
    new.loc[3, "accuracy"] += 0.6  # inside the std over seeds: seed noise
    new.loc[4, "accuracy"] -= 3.0  # beyond: changed
    new = new.drop(index=5)  # missing
    added = old.iloc[[1]].assign(seed=7)
    new = pd.concat([new, added], ignore_index=True)
    result = diff.diff_tables("sweep.csv", old, new)
    assert result.counts == {
        "identical": 2,  # the dense row and seed 0
        "rounding": 1,
        "seed noise": 1,
        "changed": 1,
        "missing": 1,
        "added": 1,
    }
    old.to_csv(tmp_path / "old.csv", index=False)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["diff", str(tmp_path / "old.csv"), str(tmp_path / "new.csv")]) == 1
    out = capsys.readouterr().out
    assert "| `new.csv` | 2 | 1 | 1 | 1 | 1 | 1 |" in out and "accuracy 86.0 -> 83.0" in out
    calm = old.copy()
    calm.loc[2, "accuracy"] += 0.04
    calm.to_csv(tmp_path / "calm.csv", index=False)
    assert main(["diff", str(tmp_path / "old.csv"), str(tmp_path / "calm.csv")]) == 0


def test_diff_leaves_wall_times_alone_and_compares_the_rest():
    """A baseline's timings are the machine's: another run differs in them and is identical."""
    old = pd.DataFrame(
        {
            "model": "cifar10/resnet34",
            "method": ["dense", "magnitude"],
            "target": [0.0, 30.0],
            "accuracy": [90.0, 80.0],
            "seconds_per_batch": [1.0, 0.7],
            "time_ratio": [1.0, 0.7],
        }
    )
    retimed = old.assign(seconds_per_batch=[2.0, 1.0], time_ratio=[1.0, 0.5])
    assert diff.diff_tables("baselines.csv", old, retimed).counts["identical"] == 2
    moved = retimed.assign(accuracy=[90.0, 75.0])
    assert diff.diff_tables("baselines.csv", old, moved).counts["changed"] == 1


def test_diff_of_two_result_folders_pairs_their_csvs(tmp_path, capsys):
    for folder in ("old", "new"):
        (tmp_path / folder).mkdir()
        rows({None: 90.0, 0: 87.0}).to_csv(tmp_path / folder / "sweep.csv", index=False)
    rows({None: 90.0}).to_csv(tmp_path / "old" / "gone.csv", index=False)
    (tmp_path / "old" / "quick").mkdir()  # quick mode's, never committed: not compared
    rows({None: 90.0}).to_csv(tmp_path / "old" / "quick" / "sweep.csv", index=False)
    assert main(["diff", str(tmp_path / "old"), str(tmp_path / "new")]) == 1
    out = capsys.readouterr().out
    assert (
        "| `sweep.csv` | 2 | 0 | 0 | 0 | 0 | 0 |" in out and "| `gone.csv` | 0 | 0 | 0 | 0 | 1 | 0 |" in out
    )
    assert "quick/" not in out


@pytest.mark.parametrize("name", MEASUREMENT_CSVS)
def test_the_same_measurements_give_the_same_file_in_any_order(tmp_path, name):
    """Every committed measurement CSV is in the one order its rows are written in, so a table
    derived from it (its rows' order included) comes out the same however the rows were gathered."""
    committed = Path(__file__).resolve().parents[1] / "results" / name
    rows = result_rows.read_rows(committed)
    shuffled = rows.sample(frac=1, random_state=0)
    result_rows.save_rows(shuffled, tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == committed.read_bytes()


def test_the_default_sample_is_the_drawn_rows_that_fit_the_time_budget():
    # 10,000 images of a 0.35 GFLOP model: 100 s each by the estimate; one ImageNet row: far more
    cheap = pd.DataFrame({"model": ["cifar10/resnet34"] * 5, "images": 10_000, "flops_dense": 3.5e8})
    costly = pd.DataFrame({"model": ["imagenet/resnet50-keras"], "images": 1300, "flops_dense": 4e9})
    tables = {"cheap.csv": cheap, "costly.csv": costly}
    assert verify.estimated_seconds(cheap.iloc[0]) == pytest.approx(100.0)
    chosen = verify.sample(tables, None, seed=0, minutes=5)  # 300 s: three cheap rows
    assert [name for name, _ in chosen] == ["cheap.csv"] * 3
    assert len(verify.sample(tables, 2, seed=0)) == 2  # --rows: a count, whatever it costs
