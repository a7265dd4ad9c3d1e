import csv

import pytest
import torch
from test_data import make_tree

from haste import models
from haste.train import TrainConfig, export, train


def config(root, epochs):
    return TrainConfig(model="cifar10/resnet18", data=str(root), epochs=epochs, batch_size=8,
                       max_lr=0.05, seed=3, bf16=False, channels_last=False)


def test_loss_falls(tmp_path):
    root = make_tree(tmp_path / "cifar", per_class=4)
    state = torch.load(train(config(root, 4), tmp_path / "run", progress=False), weights_only=False)
    losses = [row["train_loss"] for row in state["log"]]
    assert state["epoch"] == 4 and losses[-1] < losses[0]


def test_other_settings_do_not_resume_a_run(tmp_path):
    root = make_tree(tmp_path / "cifar", per_class=1)
    train(config(root, 1), tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(config(root, 2), tmp_path / "run", progress=False)


def test_resume_after_interruption(tmp_path, monkeypatch):
    root = make_tree(tmp_path / "cifar", per_class=4)
    straight = torch.load(train(config(root, 3), tmp_path / "a", progress=False), weights_only=False)

    import haste.train as training

    calls = {"n": 0}
    original = training._atomic_save

    def crash_after_first_epoch(obj, path):
        original(obj, path)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_atomic_save", crash_after_first_epoch)
    try:
        train(config(root, 3), tmp_path / "b", progress=False)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(training, "_atomic_save", original)
    assert torch.load(tmp_path / "b" / "last.pt", weights_only=False)["epoch"] == 1
    resumed = torch.load(train(config(root, 3), tmp_path / "b", progress=False), weights_only=False)
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    assert [r["train_loss"] for r in resumed["log"]] == [r["train_loss"] for r in straight["log"]]


def test_export_writes_verified_fp16_weights_and_manifest(tmp_path):
    root = make_tree(tmp_path / "cifar", per_class=2)
    train(config(root, 1), tmp_path / "run", progress=False)
    row = export(tmp_path / "run", tmp_path / "weights")
    with open(tmp_path / "weights" / "manifest.csv") as handle:
        manifest = list(csv.DictReader(handle))
    assert manifest[0]["sha256"] == row["sha256"]
    assert float(manifest[0]["train_cpu_hours"]) >= 0 and float(manifest[0]["train_hours"]) >= 0
    with open(tmp_path / "run" / "log.csv") as handle:
        assert float(next(csv.DictReader(handle))["cpu_seconds"]) > 0
    model, info = models.load("cifar10/resnet18", weights_dir=tmp_path / "weights")
    assert info.source == "stand-in" and info.sha256 == row["sha256"]
