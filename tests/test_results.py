"""The committed results: schema, provenance and consistency of every CSV under results/.

Each check skips while its CSV is not committed yet; once a CSV is there it must be complete.
"""

import re
from pathlib import Path

import pandas as pd
import pytest

from haste.repro import tables
from haste.repro.paper import PAPER_POINTS
from haste.repro.result_rows import MEASUREMENT_KEYS, RESULT_COLUMNS
from haste.zoo.weights import read_manifest

RESULTS = Path(__file__).resolve().parents[1] / "results"
SHIPPED_HASHES = {entry["sha256"] for entry in read_manifest().values()}
# checkpoints trained for 09_checkpoint_quality are not shipped: each is recorded (SHA-256, command,
# training log) in results/checkpoint_quality/checkpoints.csv instead
RECORDED = RESULTS / "checkpoint_quality" / "checkpoints.csv"
RECORDED_HASHES = set(pd.read_csv(RECORDED, dtype=str).sha256) if RECORDED.is_file() else set()


def committed(name):
    path = RESULTS / name
    if not path.is_file():
        pytest.skip(f"results/{name} is not committed yet")
    return pd.read_csv(path, dtype={"weights_sha256": str, "commit": str})


PROVENANCE = [
    "model",
    "weights_source",
    "weights_sha256",
    "num_hyperplanes",
    "sparsity",
    "patch_size",
    "projection",
    "centre",
    "grouping",
    "skip",
    "include_pointwise",
    "seed",
    "images",
    "accuracy",
    "accuracy_drop",
    "flops_dense",
    "flops_haste",
    "flops_reduction",
    "haste_version",
    "commit",
]
SWEEPS = ["cifar10_sweep", "cifar10_patch2_sweep"]


@pytest.mark.parametrize(
    "name,extra",
    [("cifar10_sweep.csv", []), ("cifar10_patch2_sweep.csv", []), ("ablations.csv", ["variant"])],
)
def test_result_rows_carry_their_provenance(name, extra):
    rows = committed(name)
    # rows written before a column was added lack it; none has a column the code does not write
    assert set(rows.columns) <= set(RESULT_COLUMNS + extra)
    assert set(PROVENANCE + extra) <= set(rows.columns)
    assert set(rows.weights_sha256) <= SHIPPED_HASHES, "every row names a shipped checkpoint"
    assert all(re.fullmatch(r"[0-9a-f]{40}", commit) for commit in rows["commit"])
    haste_rows = rows.dropna(subset=["num_hyperplanes"])
    for column in ["sparsity", "patch_size", "projection", "centre", "grouping", "skip", "seed"]:
        assert haste_rows[column].notna().all(), column


@pytest.mark.parametrize("name", SWEEPS)
def test_sweep_is_on_the_full_test_split_with_three_seeds(name):
    rows = committed(f"{name}.csv")
    assert (rows.images == 10_000).all()
    haste_rows = rows.dropna(subset=["num_hyperplanes"])
    assert (haste_rows.groupby(["model", "num_hyperplanes"]).seed.nunique() >= 3).all()
    assert set(rows[rows.num_hyperplanes.isna()].model) == set(rows.model), "a baseline per model"


@pytest.mark.parametrize("name", SWEEPS)
def test_summary_is_the_mean_over_seeds(name):
    rows = committed(f"{name}.csv").dropna(subset=["num_hyperplanes"])
    summary = committed(f"{name}_summary.csv").set_index(["model", "num_hyperplanes"])
    means = rows.groupby(["model", "num_hyperplanes"])[["accuracy", "flops_reduction"]].mean()
    assert len(summary) == len(means)
    for index, mean in means.iterrows():
        assert summary.loc[index, "accuracy"] == pytest.approx(mean.accuracy, abs=1e-4)
        assert summary.loc[index, "flops_reduction"] == pytest.approx(mean.flops_reduction, abs=1e-4)


def rebuilt(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``table`` as its notebook writes it (6 significant digits), read back."""
    table.to_csv(path, index=False, float_format="%.6g")
    return pd.read_csv(path, dtype={"weights_sha256": str})


def test_main_table_is_rebuilt_from_the_committed_sweep(tmp_path):
    results, summary = committed("cifar10_sweep.csv"), committed("cifar10_sweep_summary.csv")
    table = committed("cifar10_main_table.csv")
    convention = table.convention.iloc[0] if "convention" in table.columns else None
    expected = rebuilt(tables.main_table(results, summary, convention), tmp_path / "main.csv")
    pd.testing.assert_frame_equal(table, expected)


def test_patch_size_table_is_rebuilt_from_both_sweeps(tmp_path):
    table = committed("cifar10_patch_size_table.csv")
    patch2 = committed("cifar10_patch2_sweep_summary.csv")
    main = committed("cifar10_sweep_summary.csv")
    main = main[main.weights_sha256.isin(patch2.weights_sha256)]
    expected = rebuilt(tables.patch_size_table([main, patch2]), tmp_path / "patch.csv")
    pd.testing.assert_frame_equal(table, expected)


def test_reconciliation_covers_every_patch_size_and_convention():
    table = committed("paper_reconciliation.csv")
    for model in PAPER_POINTS[PAPER_POINTS.dataset == "cifar10"].model:
        rows = table[table.model == model]
        assert set(rows.patch_size) == {2, 3, 4}, model
        assert set(rows.convention) == set(tables.CONVENTIONS), model
        assert rows.bracketed.all(), f"{model}: an operating point the grid does not bracket"
    bracketed = table[table.bracketed]
    assert (bracketed.accuracy_drop <= bracketed.max_drop_allowed).all()


def test_remeasured_operating_points_agree_with_the_committed_sweeps():
    # 08_paper_reconciliation measures the committed sweeps' operating points again for the
    # filter-merge conventions. The sweeps ran on another CPU and thread count, whose rounding
    # flips a few hash bits (docs/reproducing.md#batch-size-and-thread-count): the values both rows
    # have may differ by a prediction or two of 10,000 and by rounding in the FLOPs, no more
    remeasured = committed("paper_reconciliation_sweep.csv")
    sweeps = pd.concat([committed("cifar10_sweep.csv"), committed("cifar10_patch2_sweep.csv")])
    both = remeasured.merge(sweeps, on=MEASUREMENT_KEYS, suffixes=("", "_committed"))
    assert (both.num_hyperplanes.notna() & both.patch_size.isin([2, 3])).sum() >= 12
    assert (both.images == 10_000).all()
    assert both.accuracy.to_numpy() == pytest.approx(both.accuracy_committed.to_numpy(), abs=0.02)
    for column in ("flops_reduction", "flops_reduction_no_overhead"):
        assert both[column].to_numpy() == pytest.approx(both[f"{column}_committed"].to_numpy(), abs=1e-3)


def test_figures_are_committed_with_their_data():
    if not (RESULTS / "cifar10_sweep_summary.csv").is_file():
        pytest.skip("no committed sweep yet")
    for stem in ["cifar10_tradeoff", "cifar10_patch_size"]:
        for suffix in ("png", "pdf"):
            assert (RESULTS / "figures" / f"{stem}.{suffix}").is_file(), f"{stem}.{suffix}"


def test_checkpoint_quality_rows_name_shipped_or_recorded_checkpoints():
    rows = committed("checkpoint_quality.csv")
    assert set(rows.weights_sha256) <= SHIPPED_HASHES | RECORDED_HASHES
    record = pd.read_csv(RECORDED, dtype=str)
    for _, entry in record.iterrows():
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256), entry.sha256
        assert (RECORDED.parent / entry.log).is_file(), entry.log
        assert entry.command.startswith("python -m haste train")
    assert rows.epochs.nunique() >= 4, "at least four checkpoints"


def test_hash_stability_compares_every_configuration_with_the_reference():
    rows = committed("hash_stability.csv")
    assert set(rows.weights_sha256) <= SHIPPED_HASHES
    assert all(re.fullmatch(r"[0-9a-f]{40}", commit) for commit in rows["commit"]), "a clean tree's commit"
    assert (rows.images == 10_000).all() and rows.bits_compared.nunique() == 1
    assert {(b, t) for b, t in zip(rows.batch_size, rows.threads)} >= {(1, 1), (1, 2), (32, 1), (256, 2)}
    reference = rows[(rows.batch_size == 256) & (rows.threads == 2)].iloc[0]
    assert reference.bits_flipped == 0 and reference.predictions_changed == 0
    assert rows.bit_flip_rate.to_numpy() == pytest.approx(
        (rows.bits_flipped / rows.bits_compared).to_numpy(), rel=1e-5
    )
    assert (
        rows[["bit_flip_rate", "codes_changed_rate", "patches_bucket_count_changed_rate"]].le(1).all().all()
    )


def test_imagenet_sweep_is_the_recorded_checkpoint_on_all_1300_images_with_three_seeds():
    rows = committed("imagenet_sweep.csv")
    imported = pd.read_csv(Path(__file__).resolve().parents[1] / "weights" / "imported.csv", dtype=str)
    assert set(rows.weights_sha256) <= set(imported.sha256), "every row names a recorded import"
    assert (rows.images == 1300).all() and rows["transform"].notna().all()
    assert all(re.fullmatch(r"[0-9a-f]{40}", commit) for commit in rows["commit"])
    haste_rows = rows.dropna(subset=["num_hyperplanes"])
    assert (haste_rows.sparsity == 0.5).all(), "the paper's ImageNet sparsity"
    assert (haste_rows.groupby(["model", "num_hyperplanes"]).seed.nunique() >= 3).all()
    summary = committed("imagenet_sweep_summary.csv").set_index(["model", "num_hyperplanes"])
    means = haste_rows.groupby(["model", "num_hyperplanes"])[["accuracy_drop", "flops_reduction"]].mean()
    for index, mean in means.iterrows():
        assert summary.loc[index, "accuracy_drop"] == pytest.approx(mean.accuracy_drop, abs=1e-4)
        assert summary.loc[index, "flops_reduction"] == pytest.approx(mean.flops_reduction, abs=1e-4)
        assert summary.loc[index, "accuracy_drop_se"] > 0


# The drops the paper's table allows (../shared/HASTE_METHOD.md), typed here rather than read from
# haste.repro.paper; every other model is held to 1.25 pp
PAPER_DROPS = {"cifar10/resnet34": 1.25, "cifar10/vgg19_bn": 1.63}


def test_main_table_operating_points_follow_the_rule_on_the_committed_summary():
    # an independent reading of the rule: among the L whose mean drop is within the allowed drop,
    # the one with the largest mean FLOPs reduction; bracketed where some L saves more
    summary = committed("cifar10_sweep_summary.csv")
    table = committed("cifar10_main_table.csv").set_index("model")
    for model, group in summary.groupby("model"):
        allowed = PAPER_DROPS.get(model, 1.25)
        assert table.max_drop_allowed[model] == allowed, model
        within = [row for row in group.itertuples() if row.accuracy_drop <= allowed]
        if not within:
            assert pd.isna(table.num_hyperplanes[model]), model
            continue
        best = max(within, key=lambda row: row.flops_reduction)
        assert table.num_hyperplanes[model] == best.num_hyperplanes, model
        assert table.flops_reduction[model] == pytest.approx(best.flops_reduction, abs=1e-4), model
        assert table.accuracy_drop[model] == pytest.approx(best.accuracy_drop, abs=1e-4), model
        saves_more = (group.flops_reduction > best.flops_reduction).any()
        assert bool(table.bracketed[model]) == bool(saves_more), model


def test_patch_size_table_operating_points_follow_the_rule_on_the_committed_summaries():
    table = committed("cifar10_patch_size_table.csv")
    summaries = {
        2: committed("cifar10_patch2_sweep_summary.csv"),
        3: committed("cifar10_sweep_summary.csv"),
    }
    assert set(table.patch_size) == {2, 3}
    for row in table.itertuples():
        summary = summaries[row.patch_size]
        group = summary[summary.model == row.model]
        allowed = PAPER_DROPS.get(row.model, 1.25)
        within = [point for point in group.itertuples() if point.accuracy_drop <= allowed]
        best = max(within, key=lambda point: point.flops_reduction)
        assert row.max_drop_allowed == allowed
        assert row.num_hyperplanes == best.num_hyperplanes, (row.model, row.patch_size)
