"""The reproduction's files, data, downloads, rows and command line under misuse and failure (the
second audit): each test fails on the code before its fix."""

import os
from pathlib import Path

import pytest
import torch
from test_data import make_tree

from haste.repro import train as training
from haste.repro.cli import main
from haste.repro.train import TrainConfig


def run_failing(argv, capsys) -> str:
    """``main(argv)``'s stderr, which must be one line, after exit status 2 however it exits."""
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return err


def small_config(root, epochs=1) -> TrainConfig:
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


# --- 7: run files are loaded without running pickled code -----------------------------------------


class Payload:
    """Unpickling it runs a shell command that creates ``marker``: what a crafted ``.pt`` can do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_run(path: Path, marker: Path) -> Path:
    """A file shaped like a run (``last.pt`` or a slim file) whose config runs a command when unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": Payload(marker), "epoch": 1, "log": [], "model": {}}, path)
    return path


def test_a_crafted_run_file_is_refused_without_running_its_code(tmp_path, capsys):
    marker = tmp_path / "marker"
    root = make_tree(tmp_path / "cifar", per_class=1)
    crafted_run(tmp_path / "run" / "last.pt", marker)
    slim_file = crafted_run(tmp_path / "run.slim.pt", marker)
    err = run_failing(["slim", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "out.pt")], capsys)
    assert "not a readable training run" in err and "posix.system" in err
    err = run_failing(["export", "--run", str(slim_file), "--weights-dir", str(tmp_path / "w")], capsys)
    assert "not a readable training run" in err
    with pytest.raises(ValueError, match="not a readable training run"):
        training.train(small_config(root), tmp_path / "run", progress=False)
    assert not marker.exists()
    assert not (tmp_path / "out.pt").exists() and not (tmp_path / "w").exists()
