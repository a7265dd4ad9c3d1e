import csv

import pytest
import torch
from test_data import make_tree

from haste import zoo
from haste.repro.train import TrainConfig, export, train


def config(root, epochs):
    return TrainConfig(
        model="cifar10/resnet18",
        data=str(root),
        epochs=epochs,
        batch_size=8,
        max_lr=0.01,
        seed=3,
        bf16=False,
        channels_last=False,
    )


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

    import haste.repro.train as training

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
    model, info = zoo.load("cifar10/resnet18", weights_dir=tmp_path / "weights")
    assert info.source == "stand-in" and info.sha256 == row["sha256"]


def test_slim_run_exports_the_same_weights_through_the_cli(tmp_path, capsys):
    from safetensors.torch import load_file

    from haste.repro.cli import main

    root = make_tree(tmp_path / "cifar", per_class=1)
    train(config(root, 1), tmp_path / "run", progress=False)
    slim_file = tmp_path / "run.slim.pt"
    assert main(["slim", "--run", str(tmp_path / "run"), "--out", str(slim_file)]) == 0
    slim_state = torch.load(slim_file, weights_only=False)
    assert "optimizer" not in slim_state
    assert slim_file.stat().st_size < (tmp_path / "run" / "last.pt").stat().st_size
    # exported from the slim file (data given anew, as on another machine) and from the full run
    assert (
        main(["export", "--run", str(slim_file), "--weights-dir", str(tmp_path / "a"), "--data", str(root)])
        == 0
    )
    assert main(["export", "--run", str(tmp_path / "run"), "--weights-dir", str(tmp_path / "b")]) == 0
    a = load_file(str(tmp_path / "a" / "cifar10" / "resnet18.safetensors"))
    b = load_file(str(tmp_path / "b" / "cifar10" / "resnet18.safetensors"))
    full = torch.load(tmp_path / "run" / "last.pt", weights_only=False)["model"]
    for key, value in full.items():
        assert a[key].dtype == (torch.float16 if value.is_floating_point() else value.dtype), key
        assert torch.equal(a[key], b[key]), key
        if value.is_floating_point():
            assert torch.equal(a[key], value.half()), key


def test_unfinished_or_corrupt_runs_are_refused(tmp_path, capsys):
    from haste.repro.cli import main

    root = make_tree(tmp_path / "cifar", per_class=1)
    train(config(root, 1), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    state["config"]["epochs"] = 2  # as if stopped after epoch 1 of 2
    torch.save(state, tmp_path / "unfinished.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    for run, message in [
        ("unfinished.pt", "stopped at epoch 1/2"),
        ("corrupt.pt", "not a readable"),
        ("missing", "no training run"),
    ]:
        assert main(["export", "--run", str(tmp_path / run), "--weights-dir", str(tmp_path / "w")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "w" / "cifar10").exists()  # nothing half-written
