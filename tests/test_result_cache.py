"""The measurement cache: reruns reuse, anything that changes a result recomputes."""

import inspect

import pandas as pd
import torch
from test_data import make_tree

import haste.repro.controls as controls
import haste.repro.experiments as experiments
import haste.repro.result_cache as result_cache
import haste.repro.result_rows as result_rows
from haste import zoo
from haste.repro.result_cache import cached_measurement

KEY = {"model": "cifar10/resnet18", "weights_sha256": "ab" * 32, "num_hyperplanes": 8, "seed": 0}


def counting():
    calls = []

    def compute():
        calls.append(1)
        return {"accuracy": 50.0 + len(calls)}

    return compute, calls


def test_rerun_reuses_and_keeps_the_computing_commit(monkeypatch):
    compute, calls = counting()
    monkeypatch.setattr(result_cache, "git_commit", lambda: "first")
    first = cached_measurement(KEY, compute)
    monkeypatch.setattr(result_cache, "git_commit", lambda: "second")
    again = cached_measurement(dict(KEY), compute)
    assert len(calls) == 1 and again == first and again["commit"] == "first"


def test_other_key_weights_or_code_recompute(monkeypatch):
    compute, calls = counting()
    cached_measurement(KEY, compute)
    cached_measurement({**KEY, "seed": 1}, compute)
    cached_measurement({**KEY, "weights_sha256": "cd" * 32}, compute)
    monkeypatch.setattr(result_cache, "code_fingerprint", lambda: "edited code")
    cached_measurement(KEY, compute)
    assert len(calls) == 4


def test_random_weights_disabled_cache_and_corrupt_entries_recompute(tmp_path, monkeypatch):
    compute, calls = counting()
    cached_measurement({**KEY, "weights_sha256": ""}, compute)
    cached_measurement({**KEY, "weights_sha256": ""}, compute)
    assert len(calls) == 2
    cached_measurement(KEY, compute)
    for entry in (tmp_path / "cache" / "results").glob("*.json"):
        entry.write_text("{truncated")
    assert cached_measurement(KEY, compute)["accuracy"] == 54.0
    monkeypatch.setenv("HASTE_RESULT_CACHE", "0")
    cached_measurement(KEY, compute)
    assert len(calls) == 5
    assert not list((tmp_path / "cache" / "results").glob("*.tmp*"))


def test_sweep_reuses_cached_rows(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "w.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    first = experiments.sweep("cifar10/resnet18", [4, 8], [0], root, weights=str(weights), progress=False)
    monkeypatch.setattr(experiments, "evaluate", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    again = experiments.sweep("cifar10/resnet18", [4, 8], [0], root, weights=str(weights), progress=False)
    assert again.equals(first)


def test_sweep_reuses_the_committed_rows_that_match_and_evaluates_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("HASTE_RESULT_CACHE", "0")  # only the CSV may spare the evaluation
    root = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "w.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    csv = tmp_path / "sweep.csv"
    first = experiments.sweep("cifar10/resnet18", [4, 8], [0, 1], root, weights=str(weights), progress=False)
    first.to_csv(csv)
    committed = pd.read_csv(csv, index_col=0)
    real_evaluate, calls = experiments.evaluate, []

    def counting_evaluate(*args, **kwargs):
        calls.append(kwargs["description"])
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(experiments, "evaluate", counting_evaluate)
    again = experiments.sweep(
        "cifar10/resnet18", [8], [1], root, weights=str(weights), progress=False, reuse=committed
    )
    # only the dense model ran (to check the data); the HASTE rows came from the CSV
    assert len(calls) == 1 and list(again["num_hyperplanes"].fillna(0)) == [0, 8]
    assert list(again["seed"])[1] == 1
    assert again["accuracy"].tolist() == committed["accuracy"].iloc[[0, 4]].tolist()
    # a grid with a new L: the stored rows are taken, only the new L is evaluated, in the sweep's order
    calls.clear()
    grid = experiments.sweep(
        "cifar10/resnet18", [4, 12, 8], [0], root, weights=str(weights), progress=False, reuse=committed
    )
    assert calls == ["cifar10/resnet18 dense", "cifar10/resnet18 L=12 seed=0"]
    assert list(grid["num_hyperplanes"].fillna(0)) == [0, 4, 12, 8]
    assert grid["accuracy"].iloc[[0, 1, 3]].tolist() == committed["accuracy"].iloc[[0, 1, 2]].tolist()
    fresh = experiments.sweep("cifar10/resnet18", [12], [0], root, weights=str(weights), progress=False)
    assert grid["accuracy"].iloc[2] == fresh["accuracy"].iloc[1]  # the evaluated row, as without reuse
    # other data (the dense accuracy differs), other settings, weights or image count: nothing is reused
    calls.clear()
    other_data = committed.copy()
    other_data.loc[other_data["num_hyperplanes"].isna(), "accuracy"] += 10.0  # as another copy of the data
    experiments.sweep(
        "cifar10/resnet18", [8], [1], root, weights=str(weights), progress=False, reuse=other_data
    )
    assert len(calls) == 2  # dense, L=8: recomputed
    sha = committed["weights_sha256"][0]
    found = result_rows.reusable_rows(committed, "cifar10/resnet18", sha, 10)
    assert sorted(k for k in found if k != "dense") == [(4, 0), (4, 1), (8, 0), (8, 1)]
    patch_2 = experiments.HasteSettings(patch_size=2)
    assert list(result_rows.reusable_rows(committed, "cifar10/resnet18", sha, 10, patch_2)) == ["dense"]
    assert result_rows.reusable_rows(committed, "cifar10/resnet18", "ef" * 32, 10) == {}
    assert result_rows.reusable_rows(committed, "cifar10/resnet18", sha, 9) == {}
    assert result_rows.reusable_rows(committed, "cifar10/resnet18", "", 10) == {}


def test_the_thread_count_is_part_of_the_key():
    # rounding in the GEMMs depends on the thread count, and flips hash bits near zero
    compute, calls = counting()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        cached_measurement(KEY, compute)
        cached_measurement(KEY, compute)
        torch.set_num_threads(2)
        cached_measurement(KEY, compute)
    finally:
        torch.set_num_threads(threads)
    assert len(calls) == 2


def test_rows_record_their_code_and_are_reused_only_from_the_same_code(tmp_path, monkeypatch):
    monkeypatch.setenv("HASTE_RESULT_CACHE", "0")  # only the CSV may spare an evaluation
    root = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "w.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    csv = tmp_path / "sweep.csv"
    names, grid = ["cifar10/resnet18"], lambda name: [4]
    monkeypatch.setattr(experiments, "available_weights", lambda name, allow_random: str(weights))
    rows, _ = experiments.sweep_models(names, grid, [0], root, csv)
    assert (rows["code_fingerprint"] == result_cache.code_fingerprint()).all()
    assert list(rows.columns) == result_rows.RESULT_COLUMNS
    real_evaluate, calls = experiments.evaluate, []

    def counting_evaluate(*args, **kwargs):
        calls.append(kwargs["description"])
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(experiments, "evaluate", counting_evaluate)
    again, _ = experiments.sweep_models(names, grid, [0], root, csv)  # same code: the HASTE row is reused
    assert calls == ["cifar10/resnet18 dense"] and again.equals(rows)
    calls.clear()
    monkeypatch.setattr(experiments, "code_fingerprint", lambda: "edited code")  # what rows record
    monkeypatch.setattr(result_rows, "code_fingerprint", lambda: "edited code")  # what reuse asks for
    edited, _ = experiments.sweep_models(names, grid, [0], root, csv)  # other code: every row recomputed
    assert calls == ["cifar10/resnet18 dense", "cifar10/resnet18 L=4 seed=0"]
    assert (edited["code_fingerprint"] == "edited code").all()
    stored = result_rows.read_rows(csv)
    sha = stored["weights_sha256"][0]
    assert (4, 0) in result_rows.reusable_rows(stored, "cifar10/resnet18", sha, 10, fingerprint="edited code")
    assert result_rows.reusable_rows(stored, "cifar10/resnet18", sha, 10, fingerprint="other code") == {}
    older = stored.drop(columns="code_fingerprint")  # rows written before fingerprints: never reused
    assert result_rows.reusable_rows(older, "cifar10/resnet18", sha, 10, fingerprint="edited code") == {}
    assert "reuse_existing" not in inspect.signature(experiments.sweep_models).parameters


def test_every_runner_records_the_code_fingerprint(tmp_path):
    root = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "w.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    fingerprint = result_cache.code_fingerprint()
    pruned = controls.l1_pruning_control("cifar10/resnet18", [8], [0], root, str(weights), progress=False)
    patches = experiments.patch_compression("cifar10/resnet18", 8, root, weights=str(weights), progress=False)
    for rows in (pruned, patches):
        assert (rows["code_fingerprint"] == fingerprint).all()
    # the L1 control's rows record their data and run as a sweep's do (a full run rewrites them equal)
    sweep = experiments.sweep("cifar10/resnet18", [8], [0], root, weights=str(weights), progress=False)
    for column in result_rows.RUN_COLUMNS:
        assert pruned[column].notna().all() and pruned[column].iloc[0] == sweep[column].iloc[0], column
