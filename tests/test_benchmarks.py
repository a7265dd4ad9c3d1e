"""The benchmarks run end to end and their outputs are internally consistent (not timing tests)."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import speed  # noqa: E402


def test_layer_benchmark_writes_consistent_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(speed, "layer_grid", lambda quick: [(16, 8, 6, 2, "iid"), (16, 8, 6, 2, "redundant")])
    speed.main(["--quick", "--parts", "layers", "--reps", "1", "--threads", "1", "--out", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "layers.csv")
    assert (tmp_path / "speedup.png").exists()
    assert len(rows) == 6 and set(rows["path"]) == {"dense", "eval", "compressed"}
    for _, case in rows.groupby("inputs"):
        dense = case[case["path"] == "dense"].iloc[0]
        assert dense["ratio_to_dense"] == 1 and dense["flops_reduction"] == 0
        for _, row in case.iterrows():
            assert row["ratio_to_dense"] == pytest.approx(row["median_s"] / dense["median_s"], rel=1e-4)
            assert row["ideal_speedup"] == pytest.approx(1 / (1 - row["flops_reduction"] / 100), rel=1e-4)
    assert (rows["threads"] == 1).all() and rows["commit"].notna().all()
    kept = rows[rows["path"] == "eval"].set_index("inputs")["kept_fraction"]
    assert kept["redundant"] < kept["iid"]  # copied channels share buckets: the inputs do what they say


def test_trained_layer_benchmark_times_every_haste_layer(tmp_path, monkeypatch):
    import torch

    from haste import zoo

    model = zoo.build("cifar10/resnet18").eval()
    monkeypatch.setattr(speed, "TRAINED_MODELS", ("cifar10/resnet18",))
    monkeypatch.setattr(speed, "operating_points", lambda: {"cifar10/resnet18": 4})
    monkeypatch.setattr(speed, "load_model", lambda name: (model, "test weights"))
    monkeypatch.setattr(speed, "model_inputs", lambda name, batch, data: (torch.randn(2, 3, 32, 32), "noise"))
    speed.main(["--quick", "--parts", "trained", "--reps", "1", "--threads", "1", "--out", str(tmp_path)])
    rows = pd.read_csv(tmp_path / "trained_layers.csv")
    converted = [
        name
        for name, m in speed.haste.convert(model, 4).named_modules()
        if isinstance(m, speed.haste.HasteConv2d)
    ]
    assert sorted(set(rows["layer"])) == sorted(converted)  # every HASTE layer, the stem left dense
    paths = rows.groupby("layer")["path"].apply(sorted).tolist()
    assert paths == [["compressed", "dense", "eval"]] * len(converted)
    assert (rows["num_hyperplanes"] == 4).all() and (rows[rows["path"] == "dense"]["speedup"] == 1).all()
    assert set(rows["channels"]) == {64, 128, 256, 512}


@pytest.mark.parametrize("execution", ["eval", "compressed"])
def test_eval_speed_times_every_kernel_of_the_path_and_restores_it(execution):
    import collections
    import importlib

    import eval_speed
    import torch

    import haste

    conv = torch.nn.Conv2d(16, 8, 3, padding=1)
    layer = haste.set_execution(haste.HasteConv2d.from_conv(conv, num_hyperplanes=4), execution)
    kernels = lambda: [getattr(importlib.import_module(m), n) for m, n in eval_speed.KERNELS[execution]]
    originals = kernels()
    seconds = collections.Counter()
    with torch.inference_mode(), eval_speed.timed_kernels(execution, seconds):
        inside = layer(torch.randn(2, 16, 8, 8))
    assert sorted(seconds) == sorted(name for _, name in eval_speed.KERNELS[execution])
    assert all(value > 0 for value in seconds.values())
    assert kernels() == originals and inside.shape == (2, 8, 8, 8)


@pytest.mark.parametrize("device, message", [("cuda", "no CUDA device"), ("meta", "must be cpu or cuda")])
def test_unusable_devices_are_refused_clearly(tmp_path, capsys, device, message):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("the refusal is for machines without CUDA")
    with pytest.raises(SystemExit):
        speed.main(["--device", device, "--parts", "layers", "--out", str(tmp_path)])
    assert message in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_hash_stability_counts_flipped_bits_and_buckets_by_hand():
    import hash_stability

    a = torch.tensor([[[0b101, 0b101, 0b011]]], dtype=torch.int32)  # one image, one tile, 3 channels
    b = torch.tensor([[[0b100, 0b101, 0b000]]], dtype=torch.int32)
    assert hash_stability.flipped_bits(a, b, 3) == 1 + 0 + 2
    assert hash_stability.flipped_bits(a, a, 3) == 0
    assert hash_stability.bucket_counts(a).tolist() == [[2]] and hash_stability.bucket_counts(b).tolist() == [
        [3]
    ]
