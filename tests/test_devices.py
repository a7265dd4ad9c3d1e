"""Choosing the device, and splitting a sweep into shards that merge through the result cache (CPU and
the meta device; no GPU needed)."""

import pandas as pd
import pytest
import torch
from test_data import make_tree

import haste
from haste import zoo
from haste.convert import haste_layers
from haste.repro import devices, experiments, result_rows
from haste.repro.cli import main
from haste.repro.devices import Shard, as_shard, resolve_device


def test_the_default_device_is_a_gpu_when_one_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(None) == torch.device("cpu") == resolve_device("auto")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device(None) == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match="finds 2 GPU"):
        resolve_device("cuda:2")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device("meta").type == "meta"


def test_unusable_devices_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")


def test_cpu_measurements_keep_their_cache_keys():
    # measurements cached before the device was a choice were all on the CPU: their keys stay valid
    assert devices.device_key(torch.device("cpu")) == {}
    assert devices.device_key(torch.device("cuda", 3)) == {"device": "cuda"}  # shared by all GPUs


def test_a_model_converted_on_a_device_is_wholly_there():
    # sweep() moves the dense model to the device, then converts it there: no buffer stays behind
    model = zoo.build("cifar10/resnet18").to("meta")
    converted = haste.convert(model, num_hyperplanes=8)
    layers = list(haste_layers(converted))
    assert layers and all(layer.hyperplanes.device.type == "meta" for _, layer in layers)
    tensors = list(converted.parameters()) + list(converted.buffers())
    assert {tensor.device.type for tensor in tensors} == {"meta"}


def test_shards_split_the_measurements_round_robin():
    shards = [Shard(index, 3) for index in range(3)]
    taken = [[position for position in range(8) if shard.takes_next()] for shard in shards]
    assert taken == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert str(as_shard("1/3")) == "1/3" and str(as_shard((2, 4))) == "2/4" and as_shard(None) is None
    for bad in ("3/3", "-1/2", "a/b", "1"):
        with pytest.raises(ValueError, match="shard"):
            as_shard(bad)


@pytest.fixture
def tiny(tmp_path):
    """A CIFAR tree of 10 test images and a user weight file (hashed, so its measurements are cached)."""
    data = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "resnet18.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    return data, str(weights)


def test_shards_merge_into_the_unsharded_sweep_through_the_cache(tiny, monkeypatch):
    data, weights = tiny
    grid, seeds, options = [4, 8], [0, 1], {"weights": weights, "limit": 4, "device": "cpu"}
    reference = experiments.sweep("cifar10/resnet18", grid, seeds, data, **options)

    calls = []
    evaluate = experiments.evaluate
    counted = lambda *args, **kwargs: calls.append(kwargs["description"]) or evaluate(*args, **kwargs)
    monkeypatch.setattr(experiments, "evaluate", counted)
    monkeypatch.setenv("HASTE_CACHE", str(data.parent / "shared-cache"))  # a cache all shards see
    parts = [
        experiments.sweep("cifar10/resnet18", grid, seeds, data, **options, shard=f"{k}/2") for k in (0, 1)
    ]
    # the (seed, L) measurements alternate between the shards; each also measures the dense model
    measured = [part.dropna(subset=["num_hyperplanes"])[["seed", "num_hyperplanes"]] for part in parts]
    assert [pairs.values.tolist() for pairs in measured] == [[[0, 4], [1, 4]], [[0, 8], [1, 8]]]
    assert len(calls) == 5  # the dense model once (cached for the second shard), four HASTE passes
    calls.clear()
    merged = experiments.sweep("cifar10/resnet18", grid, seeds, data, **options)
    assert calls == []  # every measurement came from the cache
    columns = ["num_hyperplanes", "seed", "accuracy", "accuracy_drop", "flops_haste", "flops_reduction"]
    assert merged[columns].equals(reference[columns])


def test_cli_eval_takes_device_and_shard(tiny, capsys):
    data, weights = tiny
    argv = ["eval", "--model", "cifar10/resnet18", "--weights", weights, "--data", str(data), "--limit", "4"]
    assert main(argv + ["--hyperplanes", "4", "8", "14", "--device", "cpu", "--shard", "1/2"]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    header = next(i for i, line in enumerate(lines) if line[:1] == ["L"])  # the table's
    assert [line[0] for line in lines[header + 1 :]] == ["8"]  # the second of three L only
    assert main(argv + ["--device", "cuda:99"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_sweep_models_in_a_shard_writes_no_csv(tiny, tmp_path, monkeypatch):
    data, weights = tiny
    chosen = {"weights": weights, "weights_dir": None}
    monkeypatch.setattr(experiments, "load_arguments", lambda name, choice, allow_random: chosen)
    csv_path = tmp_path / "sweep.csv"
    grid = lambda name: [4, 8]
    rows, _ = experiments.sweep_models(["cifar10/resnet18"], grid, [0], data, csv_path, limit=4, shard="0/2")
    assert rows.num_hyperplanes.dropna().tolist() == [4] and not csv_path.exists()
    rows, _ = experiments.sweep_models(["cifar10/resnet18"], grid, [0], data, csv_path, limit=4)
    assert rows.num_hyperplanes.dropna().tolist() == [4, 8] and csv_path.exists()


def test_the_runner_runs_only_the_sharding_notebooks_in_a_shard(monkeypatch, tmp_path):
    from haste.repro import notebooks

    seen = {}
    record = lambda names, quick, out_dir, **options: seen.update(
        names=names, out_dir=out_dir, options=options
    )
    monkeypatch.setattr(notebooks, "run", record)
    # no GPU and no paper weights here: the options' checks are tested in test_notebooks
    monkeypatch.setattr(notebooks, "check_options", lambda *args: None)
    data = make_tree(tmp_path / "cifar", per_class=1)  # the runner checks CIFAR-10 before it starts
    argv = ["--weights", "paper", "--device", "cuda", "--executed-dir", str(tmp_path), "--data", str(data)]
    notebooks.main(argv + ["--shard", "1/4"])
    assert seen["names"] == ["01_cifar10_sweep"] and seen["out_dir"] == tmp_path / "shard-1-of-4"
    assert {k: seen["options"][k] for k in ("weights", "device", "shard")} == {
        "weights": "paper",
        "device": "cuda",
        "shard": "1/4",
    }
    notebooks.main(argv)  # the run that merges: every notebook, in order
    assert seen["names"] == notebooks.ORDER and seen["options"]["shard"] is None
    # weights and device reach the CIFAR-10 notebooks that evaluate, weights those that read results
    declared = {name: notebooks.declared_parameters(name) for name in notebooks.ORDER}
    evaluating = ["01_cifar10_sweep", "07_patch_size", "08_paper_reconciliation", "04_patch_compression"]
    assert [name for name in notebooks.ORDER if {"weights", "device"} <= declared[name]] == [
        *evaluating,
        "05_ablations",
        "10_baselines",
    ]
    assert all("weights" in declared[name] for name in ("02_cifar10_main_table", "03_tradeoff_figure"))
    assert "device" in declared["09_checkpoint_quality"]


def test_the_shard_numbering_runs_on_across_models(tmp_path, monkeypatch):
    taken = []

    def fake_sweep(name, grid, seeds, data, shard=None, **options):
        taken.extend((name, L) for L in grid if shard.takes_next())
        return pd.DataFrame({"model": [name], "num_hyperplanes": [None]}).reindex(
            columns=result_rows.RESULT_COLUMNS
        )

    monkeypatch.setattr(experiments, "sweep", fake_sweep)
    monkeypatch.setattr(experiments, "load_arguments", lambda *args, **kwargs: {})
    experiments.sweep_models(
        ["a", "b"], lambda name: [4, 8, 12], [0], "data", tmp_path / "s.csv", shard="1/2"
    )
    assert taken == [("a", 8), ("b", 4), ("b", 12)]  # positions 1, 3, 5 of the six
