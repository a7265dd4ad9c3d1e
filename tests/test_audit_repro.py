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


# --- 10: every CSV, summary, manifest and log is written atomically --------------------------------


def result_rows(count: int):
    import pandas as pd

    from haste.repro.experiments import RESULT_COLUMNS

    return pd.DataFrame(
        [
            dict.fromkeys(RESULT_COLUMNS, "x" * 20)
            | {"model": "cifar10/resnet18", "num_hyperplanes": 4 + i % 8, "seed": i // 8, "accuracy": 50 + i}
            for i in range(count)
        ]
    )


def test_a_csv_write_that_fails_part_way_leaves_the_earlier_file_whole(tmp_path):
    import subprocess
    import sys
    import textwrap

    from haste.repro.experiments import save_rows

    path = tmp_path / "cifar10_sweep.csv"
    save_rows(result_rows(141), path)
    before = path.read_bytes()
    # a disk that fills after a third of the file: the process may write no file beyond that size
    script = textwrap.dedent(
        f"""
        import resource, signal
        import pandas as pd
        from haste.repro.experiments import save_rows
        rows = pd.read_csv({str(path)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, ({len(before) // 3}, resource.RLIM_INFINITY))
        save_rows(pd.concat([rows, rows]), {str(path)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode != 0 and "File too large" in done.stderr
    assert path.read_bytes() == before  # all 141 rows, not the first third of the new file
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_a_training_log_write_that_fails_part_way_leaves_the_earlier_log(tmp_path, monkeypatch):
    import csv

    root = make_tree(tmp_path / "cifar", per_class=1)
    real_writerows, calls = csv.DictWriter.writerows, []

    def full_disk(self, rows):
        rows = list(rows)
        calls.append(len(rows))
        if len(rows) < 2:
            return real_writerows(self, rows)
        real_writerows(self, rows[:1])
        self.writer.writerow(["half a line"])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(csv.DictWriter, "writerows", full_disk)
    with pytest.raises(OSError, match="No space left"):
        training.train(small_config(root, epochs=2), tmp_path / "run", progress=False)
    with open(tmp_path / "run" / "log.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pt", "log.csv"]


def test_concurrent_writers_of_one_file_never_share_a_temporary_file(tmp_path):
    import threading

    from haste.files import atomic_write_text

    path, errors = tmp_path / "summary.csv", []
    texts = [str(i) * 4_000_000 for i in range(4)]
    barrier = threading.Barrier(len(texts))

    def write(text):
        barrier.wait()
        try:
            atomic_write_text(text, path)
        except Exception as error:  # e.g. the other writer renamed the shared temporary file away
            errors.append(error)

    threads = [threading.Thread(target=write, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and path.read_text() in texts  # one writer's file, whole
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
