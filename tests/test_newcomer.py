"""What a newcomer meets first: commands, their messages, and the files they leave in the checkout."""

import hashlib
import pickle
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_cli import run_failing
from test_data import make_tree
from torch import nn

import haste
from haste.repro.cli import main
from haste.zoo.data import check_cifar10, cifar10_root, load_cifar10

ROOT = Path(__file__).resolve().parents[1]


# --- files the README's commands write into the working folder ------------------------------------


@pytest.mark.parametrize("path", ["data/cifar10/x", "out.json", "executed/01_cifar10_sweep.ipynb"])
def test_what_the_readme_commands_write_is_ignored_by_git(path):
    assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0


def test_the_package_data_module_is_not_ignored():
    assert subprocess.run(["git", "check-ignore", "-q", "haste/zoo/data.py"], cwd=ROOT).returncode == 1


# --- the parser -----------------------------------------------------------------------------------


def test_an_unknown_option_after_a_command_names_that_command(capsys):
    err = run_failing(["eval", "--model", "cifar10/resnet18", "--no-such-option"], capsys)
    assert err.startswith("python -m haste eval: error: unrecognized arguments: --no-such-option")
    assert "(see python -m haste eval --help)" in err


def test_an_unknown_option_before_the_command_names_the_top_level_command(capsys):
    err = run_failing(["--no-such-option", "eval", "--model", "cifar10/resnet18"], capsys)
    assert err.startswith("python -m haste: error: unrecognized arguments: --no-such-option")


# --- the CIFAR-10 messages ------------------------------------------------------------------------


def test_missing_cifar10_from_haste_data_says_so_and_names_no_foreign_option(tmp_path, monkeypatch):
    monkeypatch.setenv("HASTE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as error:
        check_cifar10(cifar10_root())
    message = str(error.value)
    assert f"no CIFAR-10 at {tmp_path / 'nowhere'} (the value of $HASTE_DATA)" in message
    assert "download=True" not in message and "--download" not in message  # run_all.sh has neither


def test_missing_cifar10_offers_each_callers_own_download_option(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("HASTE_DATA", raising=False)
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"or pass download=True$"):
        load_cifar10(missing)
    err = run_failing(
        ["eval", "--model", "cifar10/resnet18", "--weights", "random", "--data", missing], capsys
    )
    assert err.rstrip().endswith("or pass --download") and "$HASTE_DATA" not in err
    err = run_failing(["train", "--model", "cifar10/resnet18", "--data", missing, "--out", missing], capsys)
    assert "download=True" not in err and "--download" not in err  # train has no such option


# --- download cifar10 --from FILE -----------------------------------------------------------------


def fake_cifar10_archive(path: Path, monkeypatch) -> Path:
    """A ``cifar-10-python.tar.gz`` of one image per batch, with torchvision's MD5s patched to it."""
    from torchvision.datasets import CIFAR10

    staging = path.parent / "staging" / CIFAR10.base_folder
    staging.mkdir(parents=True)
    md5s = {}
    for index, (name, _) in enumerate(CIFAR10.train_list + CIFAR10.test_list):
        batch = {"data": np.full((1, 3072), index, dtype=np.uint8), "labels": [index % 10]}
        (staging / name).write_bytes(pickle.dumps(batch))
        md5s[name] = hashlib.md5((staging / name).read_bytes()).hexdigest()
    meta = CIFAR10.meta["filename"]
    (staging / meta).write_bytes(pickle.dumps({"label_names": haste.zoo.data.CIFAR10_CLASSES}))
    with tarfile.open(path, "w:gz") as archive:
        archive.add(staging, arcname=CIFAR10.base_folder)
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5s[n]] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5s[n]] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(
        CIFAR10, "meta", {**CIFAR10.meta, "md5": hashlib.md5((staging / meta).read_bytes()).hexdigest()}
    )
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(path.read_bytes()).hexdigest())
    return path


@pytest.mark.parametrize("as_url", [False, True])
def test_download_cifar10_from_a_local_archive(as_url, tmp_path, monkeypatch, capsys):
    archive = fake_cifar10_archive(tmp_path / "cifar-10-python.tar.gz", monkeypatch)
    target = tmp_path / "data" / "cifar10"
    source = archive.as_uri() if as_url else str(archive)
    assert main(["download", "cifar10", "--from", source, "--dir", str(target)]) == 0
    assert f"use it with --data {target}" in capsys.readouterr().out
    images, labels = load_cifar10(target, "test")
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [5]


def test_the_library_takes_a_local_archive_as_the_command_does(tmp_path, monkeypatch):
    from haste.zoo import download

    archive = fake_cifar10_archive(tmp_path / "cifar-10-python.tar.gz", monkeypatch)
    assert download.fetch_cifar10(tmp_path / "mine", str(archive)) == tmp_path / "mine"
    assert (tmp_path / "mine" / "cifar-10-batches-py").is_dir()


def test_download_cifar10_from_a_missing_or_foreign_file_leaves_no_folder(tmp_path, capsys):
    target = tmp_path / "data" / "cifar10"
    err = run_failing(
        ["download", "cifar10", "--from", str(tmp_path / "absent.tar.gz"), "--dir", str(target)], capsys
    )
    assert "no such file" in err and "unknown url type" not in err
    foreign = tmp_path / "foreign.tar.gz"
    foreign.write_bytes(b"not CIFAR-10")
    err = run_failing(["download", "cifar10", "--from", str(foreign), "--dir", str(target)], capsys)
    assert "MD5" in err and "cifar-10-python.tar.gz" in err
    assert not (tmp_path / "data").exists()


# --- train and export -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from haste.repro.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("newcomer")
    root = make_tree(folder / "cifar", per_class=1)
    config = TrainConfig(
        model="cifar10/resnet18", data=str(root), epochs=1, batch_size=8, bf16=False, channels_last=False
    )
    train(config, folder / "run", progress=False)
    return config, folder


def test_training_a_finished_run_again_says_it_is_finished(finished_run, capsys):
    from haste.repro.train import train

    config, folder = finished_run
    capsys.readouterr()
    train(config, folder / "run", progress=False)
    out = capsys.readouterr().out
    assert "is finished (epoch 1/1): nothing to train" in out and "resuming" not in out


def test_export_prints_readable_lines(finished_run, capsys):
    _, folder = finished_run
    weights = folder / "weights"
    assert main(["export", "--run", str(folder / "run"), "--weights-dir", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "{" not in out  # not a Python dict
    lines = out.splitlines()
    assert lines[0] == f"exported cifar10/resnet18 to {weights / 'cifar10' / 'resnet18.safetensors'}"
    assert any(line.split()[:1] == ["SHA-256"] for line in lines)
    assert any("1 epoch," in line for line in lines)  # one epoch, not "1 epochs"
    assert lines[-1].split() == ["recorded", "in", str(weights / "manifest.csv")]


# --- the FLOP report ------------------------------------------------------------------------------


def report(num_hyperplanes: int):
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    fast = haste.convert(model, num_hyperplanes=num_hyperplanes)
    batches = [(torch.randn(2, 3, 12, 12), torch.zeros(2, dtype=torch.long))]
    return haste.evaluate(fast, batches, progress=False).report


def test_the_flop_report_notes_a_layer_that_costs_more_than_dense():
    layers = report(num_hyperplanes=24).layers  # 8 random channels, 24 bits: no two share a bucket
    assert layers.exceeds_dense.tolist() == [True] and layers.flops_reduction.iloc[0] < 0
    text = repr(layers)
    assert "costs more than dense" in text and "note: 1 of 1 HASTE layers cost more than dense" in text
    assert "..." not in text  # every column shown


def test_the_flop_report_has_no_note_where_haste_saves():
    layers = report(num_hyperplanes=1).layers
    assert layers.exceeds_dense.tolist() == [False]
    assert "costs more" not in repr(layers) and "note:" not in repr(layers)


# --- docs/method.md -------------------------------------------------------------------------------


def test_method_names_the_default_execution_path_and_how_the_paths_differ():
    text = " ".join((ROOT / "docs" / "method.md").read_text().split())
    assert '(the default, `execution="gemm"`' in text and '(default, `execution="eval"`)' not in text
    assert "Both give the same outputs" not in text and "a hash bit flips" in text


def test_naming_a_notebooks_output_folder_creates_nothing(tmp_path):
    """A run that fails before it writes leaves no empty folder: the writers make it with a file."""
    from haste.repro import experiments
    from haste.zoo.files import atomic_write_csv

    folder = experiments.output_dir(tmp_path / "results", quick=True, weights="paper")
    assert folder == tmp_path / "results" / "paper-weights" / "quick" and not (tmp_path / "results").exists()
    atomic_write_csv(pd.DataFrame({"a": [1]}), folder / "rows.csv")
    assert (folder / "rows.csv").read_text() == "a\n1\n"
