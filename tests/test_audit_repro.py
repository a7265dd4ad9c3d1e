"""The reproduction's files, data, downloads, rows and command line under misuse and failure (the
second audit): each test fails on the code before its fix."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_cli import run_failing
from test_data import make_tree
from test_train import config as train_config

from haste.repro import result_rows
from haste.repro import train as training
from haste.repro.cli import main


def small_config(root, epochs=1):
    return train_config(root, epochs)


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


def fake_rows(count: int):
    import pandas as pd

    from haste.repro.result_rows import RESULT_COLUMNS

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

    from haste.repro.result_rows import save_rows

    path = tmp_path / "cifar10_sweep.csv"
    save_rows(fake_rows(141), path)
    before = path.read_bytes()
    # a disk that fills after a third of the file: the process may write no file beyond that size
    script = textwrap.dedent(
        f"""
        import resource, signal
        import pandas as pd
        from haste.repro.result_rows import save_rows
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

    from haste.zoo.files import atomic_write_text

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


# --- 9: a sweep keeps the rows of the models it did not run ----------------------------------------


@pytest.fixture
def tiny_weights(tmp_path):
    from haste import zoo

    weights = tmp_path / "resnet18.pt"
    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    return str(weights)


def committed_rows(model: str, sha: str, grid, seeds=(0, 1, 2), source="stand-in"):
    """Rows as a committed sweep holds them (from other code: none is reused), a baseline first."""
    import pandas as pd

    from haste.repro.result_rows import RESULT_COLUMNS

    base = {"model": model, "weights_source": source, "weights_sha256": sha, "images": 10}
    base |= {"commit": "0" * 40, "code_fingerprint": "other code", "flops_dense": 1e8}
    rows = [base | {"accuracy": 80.0, "accuracy_drop": 0.0}]
    settings = {"sparsity": 2 / 3, "patch_size": 3, "projection": "ternary", "centre": True}
    settings |= {"grouping": "lsh", "skip": 1, "include_pointwise": False}
    for seed in seeds:
        for L in grid:
            rows.append(base | settings | {"num_hyperplanes": L, "seed": seed, "accuracy": 70.0 + L / 100})
    return pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS).assign(accuracy_drop=lambda f: 80 - f.accuracy)


def test_sweep_models_keeps_the_rows_of_models_it_did_not_run(tmp_path, tiny_weights, monkeypatch, capsys):
    import pandas as pd

    from haste.repro import experiments

    monkeypatch.setenv("HASTE_RESULT_CACHE", "0")
    root = make_tree(tmp_path / "cifar", per_class=1)
    csv_path = tmp_path / "cifar10_sweep.csv"
    # vgg11_bn: its checkpoint is missing now; vgg13_bn: not in this call; resnet18: L 4 and 8 are
    # measured again, and its L 12 and seeds 1 and 2, which this call does not run, stay
    resnet_sha = models_sha(tiny_weights)
    earlier = pd.concat(
        [
            committed_rows("cifar10/vgg11_bn", "ab" * 32, [8, 16]),
            committed_rows("cifar10/resnet18", resnet_sha, [4, 8, 12], source="user file"),
            committed_rows("cifar10/vgg13_bn", "cd" * 32, [12]),
        ]
    )
    result_rows.save_rows(earlier, csv_path)

    def load_arguments(name, weights, allow_random):
        if name != "cifar10/resnet18":
            raise FileNotFoundError(f"{name}: no checkpoint")
        return {"weights": tiny_weights, "weights_dir": None}

    monkeypatch.setattr(experiments, "load_arguments", load_arguments)
    names = ["cifar10/vgg11_bn", "cifar10/resnet18"]
    rows, summary = experiments.sweep_models(names, lambda name: [4, 8], [0], root, csv_path)
    assert "SKIPPED cifar10/vgg11_bn" in capsys.readouterr().out
    written = result_rows.read_rows(csv_path)
    assert rows.equals(written)
    key = ["model", "num_hyperplanes", "seed"]
    by_key = written.set_index(key).sort_index()
    assert not by_key.index.duplicated().any()  # each measurement once: replaced, not added
    assert set(written.model) == {"cifar10/vgg11_bn", "cifar10/resnet18", "cifar10/vgg13_bn"}
    for model in ("cifar10/vgg11_bn", "cifar10/vgg13_bn"):  # as they were
        kept, expected = written[written.model == model], earlier[earlier.model == model]
        as_set = lambda rows: sorted(zip(rows.num_hyperplanes.fillna(0), rows.seed.fillna(-1), rows.accuracy))
        assert as_set(kept) == as_set(expected)
    resnet = written[written.model == "cifar10/resnet18"]
    assert len(resnet) == 1 + 3 * 3  # baseline, L 4, 8, 12 at seeds 0, 1, 2
    measured = resnet[(resnet.seed == 0) & resnet.num_hyperplanes.isin([4, 8])]
    assert (measured.code_fingerprint != "other code").all() and (measured.accuracy != 70.04).all()
    stayed = resnet[resnet.num_hyperplanes.notna() & ((resnet.seed != 0) | (resnet.num_hyperplanes == 12))]
    assert (stayed.code_fingerprint == "other code").all() and len(stayed) == 7
    assert len(summary) == 2 + 3 + 1  # vgg11_bn's two L, resnet18's three, vgg13_bn's one
    on_file = pd.read_csv(tmp_path / "cifar10_sweep_summary.csv")
    assert on_file.seeds.tolist() == summary.seeds.tolist() == [3] * 6
    assert on_file.model.tolist() == summary.model.tolist()


def models_sha(path) -> str:
    from haste import zoo

    return zoo.sha256_file(path)


# --- 8: extraction is bounded, leftovers of crashed runs are removed, plain HTTP is warned about ---


def small_zoo(path: Path, size: int = 4000) -> Path:
    import zipfile

    from haste.zoo.paper_weights import PAPER_ARCHITECTURES

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for arch in PAPER_ARCHITECTURES:
            archive.writestr(f"state_dicts/{arch}.pt", b"\0" * size)
    return path


def test_a_member_declaring_more_than_any_checkpoint_is_not_unpacked(tmp_path, monkeypatch, capsys):
    from haste.zoo import download

    monkeypatch.setattr(download, "MAX_MEMBER_BYTES", 100_000)  # the zoo's largest, scaled down
    archive = small_zoo(tmp_path / "state_dicts.zip", size=3_000_000)  # deflates to a few kB
    target = tmp_path / "out" / "paper"
    written = []
    real_open = open

    def watching_open(file, mode="r", *args, **kwargs):
        if "w" in mode and str(file).startswith(str(tmp_path / "out")):
            written.append(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watching_open)
    err = run_failing(["download", "paper-weights", "--from", str(archive), "--dir", str(target)], capsys)
    assert "declares 3,000,000 bytes unpacked, more than any checkpoint of the zoo" in err
    assert written == [] and list(target.parent.iterdir()) == []  # not a byte unpacked


def dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid  # ended: nothing runs under it (until the system reuses it)


def test_leftovers_of_killed_writers_are_removed_on_the_next_run(tmp_path):
    import socket
    import time

    from haste.zoo.files import atomic_write_text

    host, dead = socket.gethostname(), dead_pid()
    path = tmp_path / "cifar10_sweep.csv"
    day_old = time.time() - 2 * 24 * 3600
    stale = [
        tmp_path / f"cifar10_sweep.csv.tmp{dead}",  # the old naming
        tmp_path / f".cifar10_sweep.csv.{host}-{dead}.ab12cd.tmp",
        tmp_path / ".cifar10_sweep.csv.elsewhere-1.ab12cd.tmp",  # another machine's, a day old
    ]
    alive = [
        tmp_path / f".cifar10_sweep.csv.{host}-{os.getpid()}.zz99yy.tmp",  # a writer still writing
        tmp_path / ".cifar10_sweep.csv.elsewhere-1.cd34ef.tmp",  # another machine's, recent
        tmp_path / "cifar10_sweep.csv.tmpnotes",  # not a temporary file of ours
    ]
    for leftover in stale + alive:
        leftover.write_text("part of a file")
    os.utime(stale[2], (day_old, day_old))
    atomic_write_text("model\n", path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name] + [p.name for p in alive])


def test_folders_of_killed_extractions_are_removed_on_the_next_run(tmp_path):
    import socket
    import time

    from haste.zoo.download import extract_paper_weights

    host, dead = socket.gethostname(), dead_pid()
    stale = [tmp_path / f".paper.partial-{host}-{dead}-k3j2h1", tmp_path / ".paper.partial-q8w7e6"]
    running = tmp_path / f".paper.partial-{host}-{os.getpid()}-a1b2c3"
    for folder in [*stale, running]:
        folder.mkdir()
        (folder / "resnet18.pt").write_bytes(b"part of a checkpoint")
    day_old = time.time() - 2 * 24 * 3600
    os.utime(stale[1], (day_old, day_old))  # the old naming, without the writer: by its age
    with pytest.raises(OSError, match="cannot be read as a state dict"):
        extract_paper_weights(small_zoo(tmp_path / "zoo.zip"), tmp_path / "paper", "zoo.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, "zoo.zip"])


def test_plain_http_sources_are_warned_about_and_the_manifest_says_what_is_trusted(
    tmp_path, monkeypatch, capsys
):
    import csv
    import shutil

    from haste.zoo import download
    from haste.zoo.paper_weights import PAPER_ARCHITECTURES

    archive = small_zoo(tmp_path / "zoo.zip")
    fetched = []

    def fake_download(url, destination, progress=True, timeout=60):
        fetched.append(url)
        return shutil.copy(archive, destination)

    monkeypatch.setattr(download, "download_file", fake_download)
    monkeypatch.setattr(download, "check_loads", lambda name, path: None)  # no real checkpoints here
    url = "HTTP://mirror.example/state_dicts.zip"
    assert main(["download", "paper-weights", "--from", url, "--dir", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert fetched == [url] and err.count("\n") == 1
    assert "warning:" in err and "http:// is not authenticated" in err and url in err
    local = ["download", "paper-weights", "--from", str(archive), "--dir", str(tmp_path / "b")]
    assert main(local) == 0
    out = capsys.readouterr()
    assert out.err == "" and "trusted as given" in out.out
    with open(tmp_path / "b" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(PAPER_ARCHITECTURES)
    assert all(row["archive_trust"].startswith("as given") for row in rows)


# --- 1: the result cache knows data by its contents, not by its folder -----------------------------


def reference_predictions(model, root: Path) -> dict[str, tuple[int, int]]:
    """``{file: (label, prediction)}`` over the test split, read with PIL and normalised by hand."""
    import numpy as np
    from PIL import Image

    from haste.zoo import CIFAR10_MEAN, CIFAR10_STD
    from haste.zoo.data import CIFAR10_CLASSES

    mean, std = torch.tensor(CIFAR10_MEAN).view(3, 1, 1), torch.tensor(CIFAR10_STD).view(3, 1, 1)
    found = {}
    with torch.no_grad():
        for label, name in enumerate(CIFAR10_CLASSES):
            for path in sorted((root / "test" / name).iterdir()):
                pixels = torch.from_numpy(np.array(Image.open(path).convert("RGB")))  # [32, 32, 3]
                image = (pixels.permute(2, 0, 1).float() / 255 - mean) / std
                found[f"{name}/{path.name}"] = (label, int(model.eval()(image[None]).argmax()))
    return found


def swap_folders(root: Path, first: str, second: str) -> None:
    test = root / "test"
    (test / first).rename(test / "swapping")
    (test / second).rename(test / first)
    (test / "swapping").rename(test / second)


def test_relabelled_data_is_measured_again_not_taken_from_the_cache(tmp_path, monkeypatch):
    import shutil
    from itertools import combinations

    from haste import zoo
    from haste.repro import experiments
    from haste.zoo.data import CIFAR10_CLASSES

    root = make_tree(tmp_path / "cifar", per_class=2)
    for index, name in enumerate(CIFAR10_CLASSES[:5]):  # unequal classes: a swap can move accuracy
        for extra in range(index):
            shutil.copy(root / "test" / name / "0000.png", root / "test" / name / f"extra{extra}.png")
    for path in (root / "test").rglob("*.png"):  # the same size and time everywhere: only contents differ
        os.utime(path, ns=(10**18, 10**18))
    model = zoo.build("cifar10/resnet18")
    weights = tmp_path / "w.pt"
    torch.save(model.state_dict(), weights)
    predictions = reference_predictions(model, root)

    def accuracy_after_swap(first, second):
        relabel = {CIFAR10_CLASSES.index(first): second, CIFAR10_CLASSES.index(second): first}
        new = [
            CIFAR10_CLASSES.index(relabel.get(label, CIFAR10_CLASSES[label]))
            for label, _ in predictions.values()
        ]
        return 100 * sum(p == label for label, (_, p) in zip(new, predictions.values())) / len(new)

    before = 100 * sum(label == p for label, p in predictions.values()) / len(predictions)
    first, second = next(
        pair for pair in combinations(CIFAR10_CLASSES, 2) if accuracy_after_swap(*pair) != before
    )
    real_evaluate, calls = experiments.evaluate, []
    monkeypatch.setattr(experiments, "evaluate", lambda *a, **k: calls.append(1) or real_evaluate(*a, **k))
    dense = lambda: experiments.sweep(
        "cifar10/resnet18", [], [], root, weights=str(weights), progress=False
    ).accuracy.iloc[0]
    assert dense() == pytest.approx(before)
    swap_folders(root, first, second)  # the same files and folders, two classes relabelled
    assert dense() == pytest.approx(accuracy_after_swap(first, second)) and len(calls) == 2
    swap_folders(root, first, second)  # back: the first measurement is the cache's again
    assert dense() == pytest.approx(before) and len(calls) == 2


def test_an_imagenet_folder_is_known_by_its_files_contents(tmp_path, monkeypatch):
    import shutil

    from PIL import Image

    from haste.zoo.data import ImageNetVal, imagenet_val_samples

    for index, wnid in enumerate(["n01440764", "n01443537"]):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (40, 30), (index * 90, i * 60, 9)).save(tmp_path / "val" / wnid / f"{i}.JPEG")
    shutil.copytree(tmp_path / "val", tmp_path / "copy")
    fingerprint = lambda root: ImageNetVal(imagenet_val_samples(root), None).fingerprint()
    original = fingerprint(tmp_path / "val")
    assert fingerprint(tmp_path / "copy") == original  # the same files elsewhere: the same data
    image = tmp_path / "copy" / "n01443537" / "1.JPEG"
    data = bytearray(image.read_bytes())
    data[-10] ^= 1  # other contents, the same size, and the same time
    stat = image.stat()
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint(tmp_path / "copy") != original
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read again"))
    assert fingerprint(tmp_path / "val") == original  # from the cache: no file read twice


# --- 6: counts of images and batch sizes are checked where they are given --------------------------


@pytest.mark.parametrize(
    "options,message",
    [
        ({"limit": -3}, "limit must be None or an integer >= 1, not -3"),
        ({"limit": 0}, "limit must be None or an integer >= 1, not 0"),
        ({"limit": 2.5}, "limit must be None or an integer >= 1, not 2.5"),
        ({"batch_size": -1}, "batch_size must be an integer >= 1, not -1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, not 0"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, not True"),
    ],
)
def test_bad_counts_of_cifar10_batches_are_refused_in_one_line(options, message, tmp_path):
    from haste.zoo.data import cifar10_batches

    root = make_tree(tmp_path / "cifar", per_class=1)
    with pytest.raises(ValueError) as error:
        cifar10_batches(root, **options)
    assert str(error.value) == message


def test_bad_counts_of_imagenet_batches_and_subsets_are_refused(tmp_path):
    from haste.zoo.data import imagenet_val_loader, seeded_subset

    for options, message in [
        ({"batch_size": 0}, "batch_size must be an integer >= 1, not 0"),
        ({"limit": -3}, "limit must be None or an integer >= 1, not -3"),
        ({"num_workers": -1}, "num_workers must be an integer >= 0, not -1"),
        ({"crop": 0}, "crop must be an integer >= 1, not 0"),
        ({"resize": -256}, "resize must be None or an integer >= 1, not -256"),
    ]:
        with pytest.raises(ValueError) as error:  # before the folder is read: it does not exist
            imagenet_val_loader(tmp_path / "nowhere", **options)
        assert str(error.value) == message
    with pytest.raises(ValueError, match="limit must be None or an integer >= 1, not -3"):
        seeded_subset(10, -3)
    assert seeded_subset(10, 12) == list(range(10)) and len(seeded_subset(10, 3)) == 3


# --- 11: the result cache and row reuse tell measurements apart by one rule ------------------------


def with_threads(count, function):
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        return function()
    finally:
        torch.set_num_threads(threads)


def test_a_gpu_measurement_is_cached_whatever_the_cpu_thread_count():
    from haste.repro.result_cache import cached_measurement

    calls = []
    compute = lambda: calls.append(1) or {"accuracy": 50.0}
    key = {"model": "cifar10/resnet18", "weights_sha256": "ab" * 32, "num_hyperplanes": 8, "seed": 0}
    for threads in (1, 2):
        with_threads(threads, lambda: cached_measurement({**key, "device": "cuda"}, compute))
    assert len(calls) == 1  # the GPU's result does not depend on the CPU's threads
    for threads in (1, 2):
        with_threads(threads, lambda: cached_measurement(key, compute))
    assert len(calls) == 3  # the CPU's does


def test_rows_are_reused_only_under_the_batch_size_device_and_threads_they_record(
    tmp_path, tiny_weights, monkeypatch
):
    from haste.repro import experiments

    monkeypatch.setenv("HASTE_RESULT_CACHE", "0")  # only the CSV may spare an evaluation
    root = make_tree(tmp_path / "cifar", per_class=1)
    sweep = lambda **options: experiments.sweep(
        "cifar10/resnet18", [4], [0], root, weights=tiny_weights, progress=False, **options
    )
    committed = result_rows.save_rows(with_threads(1, lambda: sweep(batch_size=8)), tmp_path / "s.csv")
    assert committed[["batch_size", "device", "threads"]].drop_duplicates().values.tolist() == [[8, "cpu", 1]]
    assert committed.data_sha256.nunique() == 1 and len(committed.data_sha256[0]) == 64
    real_evaluate, calls = experiments.evaluate, []
    monkeypatch.setattr(
        experiments, "evaluate", lambda *a, **k: calls.append(k["description"]) or real_evaluate(*a, **k)
    )
    for threads, batch_size, evaluated in [(1, 8, 1), (1, 4, 2), (2, 8, 2)]:
        calls.clear()
        with_threads(threads, lambda size=batch_size: sweep(batch_size=size, reuse=committed))
        assert len(calls) == evaluated, (threads, batch_size, calls)  # the dense model always runs
    # on a GPU the thread count is recorded, not compared
    gpu = committed.assign(device="cuda", threads=8)
    sha = committed.weights_sha256[0]
    run = {"data_sha256": committed.data_sha256[0], "batch_size": 8, "device": "cuda", "threads": 2}
    found = result_rows.reusable_rows(gpu, "cifar10/resnet18", sha, 10, run=run)
    assert (4, 0) in found
    assert result_rows.reusable_rows(gpu.assign(device="cpu"), "cifar10/resnet18", sha, 10, run=run) == {}
    other_data = run | {"data_sha256": "0" * 64}
    assert result_rows.reusable_rows(gpu, "cifar10/resnet18", sha, 10, run=other_data) == {}
    # rows written before the thread count was recorded: CPU rows, for a CPU run of their batch size
    unrecorded = committed.assign(device=np.nan, threads=np.nan)
    cpu_run = run | {"device": "cpu", "threads": 2}
    assert (4, 0) in result_rows.reusable_rows(unrecorded, "cifar10/resnet18", sha, 10, run=cpu_run)
    for other in ({"batch_size": 4}, {"device": "cuda"}, {"data_sha256": "0" * 64}):
        assert result_rows.reusable_rows(unrecorded, "cifar10/resnet18", sha, 10, run=cpu_run | other) == {}
    # a dense row written once per patch size (one measurement, several rows) still counts; rows of
    # it that disagree do not
    dense = unrecorded[unrecorded.num_hyperplanes.isna()]
    twice = pd.concat([unrecorded, dense], ignore_index=True)
    assert (4, 0) in result_rows.reusable_rows(twice, "cifar10/resnet18", sha, 10, run=cpu_run)
    disagreeing = pd.concat([unrecorded, dense.assign(accuracy=dense.accuracy + 1)], ignore_index=True)
    assert result_rows.reusable_rows(disagreeing, "cifar10/resnet18", sha, 10, run=cpu_run) == {}


# --- 12: misuse of the command line and of downloads: one line where it happens, or it works ------


EVAL = ["eval", "--model", "cifar10/resnet18", "--hyperplanes", "8"]


@pytest.fixture
def no_evaluation(monkeypatch):
    from haste.repro import experiments

    monkeypatch.setattr(experiments, "sweep", lambda *a, **k: pytest.fail("the arguments should be refused"))


def test_weights_that_are_no_state_dict_of_tensors_are_refused_in_one_line(tmp_path, capsys, no_evaluation):
    root = make_tree(tmp_path / "cifar", per_class=1)
    torch.save({"conv1.weight": 1, "fc.bias": "text"}, tmp_path / "numbers.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    err = run_failing([*EVAL, "--data", str(root), "--weights", str(tmp_path / "numbers.pt")], capsys)
    assert "--weights" in err and "'conv1.weight' holds an int, not a tensor" in err
    err = run_failing([*EVAL, "--data", str(root), "--weights", str(tmp_path / "empty.pt")], capsys)
    assert f"--weights {tmp_path / 'empty.pt'}: the file is empty" in err


def test_a_seed_too_large_for_the_layers_generators_is_refused_before_any_evaluation(
    tmp_path, capsys, no_evaluation
):
    root = make_tree(tmp_path / "cifar", per_class=1)
    err = run_failing([*EVAL, "--data", str(root), "--weights", "random", "--seed", str(10**16)], capsys)
    assert f"--seed {10**16}: too large" in err


def test_train_into_a_folder_with_a_foreign_last_pt_is_refused_before_training(tmp_path, capsys, monkeypatch):
    from haste import zoo

    root = make_tree(tmp_path / "cifar", per_class=1)
    (tmp_path / "run").mkdir()
    torch.save(zoo.build("cifar10/resnet18").state_dict(), tmp_path / "run" / "last.pt")
    monkeypatch.setattr(
        training, "load_cifar10", lambda *a, **k: pytest.fail("the run was not checked first")
    )
    argv = ["train", "--model", "cifar10/resnet18", "--data", str(root), "--out", str(tmp_path / "run")]
    err = run_failing(argv, capsys)
    assert "last.pt: not a training run of `python -m haste train`" in err and "use another --out" in err


def pickled_zoo(path: Path, marker: Path) -> Path:
    """The zoo's layout, every member a pickle that runs a command when unpickled."""
    import io
    import zipfile

    from haste.zoo.paper_weights import PAPER_ARCHITECTURES

    buffer = io.BytesIO()
    torch.save({"conv1.weight": Payload(marker)}, buffer)
    with zipfile.ZipFile(path, "w") as archive:
        for arch in PAPER_ARCHITECTURES:
            archive.writestr(f"state_dicts/{arch}.pt", buffer.getvalue())
    return path


def test_torchs_refusal_to_unpickle_keeps_its_reason_in_the_one_line_error(tmp_path, capsys):
    marker = tmp_path / "marker"
    archive = pickled_zoo(tmp_path / "state_dicts.zip", marker)
    argv = ["download", "paper-weights", "--from", str(archive), "--dir", str(tmp_path / "out" / "paper")]
    err = run_failing(argv, capsys)
    assert "unsupported GLOBAL posix.system" in err and "could run code" in err
    assert not marker.exists()


def test_two_concurrent_downloads_both_end_with_the_complete_download(tmp_path, monkeypatch):
    import threading
    import time

    from haste.zoo import download

    archive = small_zoo(tmp_path / "zoo.zip")
    monkeypatch.setattr(download, "check_loads", lambda name, path: time.sleep(0.05))  # both unpacking
    results, errors = [], []
    barrier = threading.Barrier(2)

    def fetch():
        barrier.wait()
        try:
            results.append(download.fetch_paper_weights(tmp_path / "paper", str(archive), progress=False))
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert download.complete_manifest(tmp_path / "paper") == results[0]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["paper", "zoo.zip"]
    # the loser of the race to rename its folder into place, whichever way it got there
    assert download.extract_paper_weights(archive, tmp_path / "paper", "zoo.zip") == results[0]
