"""Fetching the paper's checkpoints and CIFAR-10, offline: a fake zoo archive, a local HTTP server and a
closed port stand in for the internet."""

import csv
import hashlib
import http.server
import io
import os
import socket
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_data import make_tree

from haste import zoo
from haste.repro.cli import main
from haste.zoo.download import DownloadError, download_file, fetch_paper_weights
from haste.zoo.paper_weights import OPTIONAL_ARCHITECTURES, PAPER_ARCHITECTURES

ROOT = Path(__file__).resolve().parents[1]
ZOO = PAPER_ARCHITECTURES + OPTIONAL_ARCHITECTURES


def fake_state_dict(arch: str, seed: int) -> dict[str, torch.Tensor]:
    """``cifar10/<arch>``'s keys and shapes with random values. Each tensor of two or more dimensions
    is a broadcast view of a random row, which ``torch.save`` stores as that row: the archive takes
    megabytes instead of the zoo's 740, and strict loading checks keys and shapes, not values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):  # shapes only, no initialisation
        layout = zoo.build(f"cifar10/{arch}").state_dict()
    state = {}
    for key, value in layout.items():
        if not value.is_floating_point():
            state[key] = torch.zeros(value.shape, dtype=value.dtype)  # num_batches_tracked
            continue
        row = torch.rand(value.shape[-1:], generator=generator) * 0.1 + (0.5 if value.ndim == 1 else -0.05)
        state[key] = row.expand(value.shape) if value.ndim > 1 else row
    return state


def write_zip(path: Path, members: dict[str, object]) -> Path:
    """A zip of ``{name: state dict or bytes}``, state dicts saved with ``torch.save``."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if isinstance(content, dict):
                buffer = io.BytesIO()
                torch.save(content, buffer)
                content = buffer.getvalue()
            archive.writestr(name, content)
    return path


@pytest.fixture(scope="module")
def zoo_states():
    return {arch: fake_state_dict(arch, seed) for seed, arch in enumerate(ZOO)}


@pytest.fixture(scope="module")
def zoo_zip(zoo_states, tmp_path_factory):
    """The zoo's state_dicts.zip in its layout (state_dicts/<arch>.pt), plus a model the paper did not use."""
    members = {f"state_dicts/{arch}.pt": state for arch, state in zoo_states.items()}
    members["state_dicts/mobilenet_v2.pt"] = b"not one of the paper's models"
    return write_zip(tmp_path_factory.mktemp("zoo") / "state_dicts.zip", members)


@pytest.fixture(scope="module")
def paper_dir(zoo_zip, tmp_path_factory):
    directory = tmp_path_factory.mktemp("fetched") / "paper-weights"
    fetch_paper_weights(directory, str(zoo_zip), progress=False)
    return directory


def read_manifest(directory: Path) -> list[dict]:
    with open(directory / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_fake_archive_has_the_zoos_key_names(zoo_states):
    # From the zoo's model code: VGG's make_layers appends conv, BN, ReLU per channel count and one
    # max-pool per "M", so VGG11-BN's convs are features.0, 4, 8, 11, 15, 18, 22, 25; the classifier
    # is Linear(512, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout, Linear(4096, 10).
    vgg = zoo_states["vgg11_bn"]
    conv_indices = sorted(
        int(key.split(".")[1]) for key in vgg if key.endswith(".weight") and vgg[key].ndim == 4
    )
    assert conv_indices == [0, 4, 8, 11, 15, 18, 22, 25]
    assert vgg["features.26.running_var"].shape == (512,) and "features.26.num_batches_tracked" in vgg
    assert [tuple(vgg[f"classifier.{i}.weight"].shape) for i in (0, 3, 6)] == [
        (4096, 512),
        (4096, 4096),
        (10, 4096),
    ]
    # ResNets: torchvision's names with the 3x3 stem, no bias in the convs
    resnet = zoo_states["resnet18"]
    assert resnet["conv1.weight"].shape == (64, 3, 3, 3) and "conv1.bias" not in resnet
    assert resnet["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert resnet["fc.weight"].shape == (10, 512)
    assert zoo_states["resnet50"]["layer1.0.conv3.weight"].shape == (256, 64, 1, 1)
    assert zoo_states["resnet50"]["fc.weight"].shape == (10, 2048)


def test_download_from_a_local_zip_extracts_hashes_and_loads(zoo_zip, zoo_states, tmp_path, capsys):
    directory = tmp_path / "paper"
    assert main(["download", "paper-weights", "--from", str(zoo_zip), "--dir", str(directory)]) == 0
    out = capsys.readouterr().out
    rows = read_manifest(directory)
    assert [row["model"] for row in rows] == [f"cifar10/{arch}" for arch in ZOO]
    assert sorted(p.name for p in directory.iterdir()) == sorted([f"{a}.pt" for a in ZOO] + ["manifest.csv"])
    archive_sha = hashlib.sha256(zoo_zip.read_bytes()).hexdigest()
    for row in rows:
        data = (directory / row["file"]).read_bytes()
        assert row["sha256"] == hashlib.sha256(data).hexdigest() and int(row["size_bytes"]) == len(data)
        assert row["archive_sha256"] == archive_sha and row["sha256"] in out and row["file"] in out
    assert zoo_zip.is_file()  # the user's file is kept
    assert [p.name for p in tmp_path.iterdir()] == ["paper"]  # no temporary folder left
    for arch in ("resnet18", "vgg19_bn"):
        model, info = zoo.load(f"cifar10/{arch}", weights="paper", weights_dir=directory)
        assert info.source == "paper" and info.sha256 == rows[ZOO.index(arch)]["sha256"]
        for key, value in model.state_dict().items():
            assert torch.equal(value, zoo_states[arch][key]), key
    # a second run finds the download complete and leaves it as it is
    mtime = (directory / "manifest.csv").stat().st_mtime_ns
    assert main(["download", "paper-weights", "--from", str(zoo_zip), "--dir", str(directory)]) == 0
    assert (directory / "manifest.csv").stat().st_mtime_ns == mtime
    assert rows[0]["sha256"] in capsys.readouterr().out


def test_a_changed_checkpoint_fails_its_manifest(paper_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "manifest.csv").write_bytes((paper_dir / "manifest.csv").read_bytes())
    data = bytearray((paper_dir / "resnet18.pt").read_bytes())
    data[-100] ^= 1
    (copy / "resnet18.pt").write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError, match="does not match"):
        zoo.load("cifar10/resnet18", weights="paper", weights_dir=copy)


def test_missing_paper_weights_say_how_to_fetch_them(tmp_path):
    with pytest.raises(zoo.WeightsNotFoundError, match="python -m haste download paper-weights"):
        zoo.load("cifar10/resnet34", weights="paper", weights_dir=tmp_path)
    # the paper's ImageNet models are torchvision's: "paper" looks for torchvision's file
    with pytest.raises(zoo.WeightsNotFoundError, match="resnet18-f37072fd.pth"):
        zoo.load("imagenet/resnet18", weights="paper", weights_dir=tmp_path, download=False)


def _small_members(names, content=b"x" * 4000):
    return {f"state_dicts/{name}.pt": content for name in names}


def _damaged_crc(path: Path) -> Path:
    write_zip(path, _small_members(PAPER_ARCHITECTURES))
    data = bytearray(path.read_bytes())
    data[data.index(b"x" * 4000) + 10] ^= 1  # the first member's data, after its header
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda path: path.write_bytes(os.urandom(5000)) and path, "is not a readable zip archive"),
        (
            lambda path: path.write_bytes(_damaged_crc(path).read_bytes()[:3000]) and path,
            "not a readable zip",
        ),
        (_damaged_crc, "CRC"),
        (lambda path: write_zip(path, _small_members(PAPER_ARCHITECTURES[:-1])), "lacks resnet34.pt"),
        (lambda path: write_zip(path, _small_members(PAPER_ARCHITECTURES)), "cannot be read as a state dict"),
        (
            lambda path: write_zip(
                path, {f"state_dicts/{a}.pt": fake_state_dict("resnet18", 0) for a in PAPER_ARCHITECTURES}
            ),
            "Missing key",
        ),
    ],
    ids=["not-a-zip", "truncated", "bad-crc", "missing-architecture", "not-state-dicts", "wrong-keys"],
)
def test_bad_archives_are_refused_and_leave_nothing_behind(make, message, tmp_path, capsys):
    archive = make(tmp_path / "state_dicts.zip")
    target = tmp_path / "out" / "paper"
    target.parent.mkdir()
    assert main(["download", "paper-weights", "--from", str(archive), "--dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(target.parent.iterdir()) == []  # no folder, complete or partial


def test_a_folder_that_is_no_complete_download_is_not_touched(zoo_zip, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["download", "paper-weights", "--from", str(zoo_zip), "--dir", str(tmp_path / "mine")]) == 2
    assert "holds no complete download" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("what", ["paper-weights", "cifar10"])
def test_offline_download_fails_with_one_line(what, tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}/archive"
    target = tmp_path / "out"
    assert main(["download", what, "--from", url, "--dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "could not download" in err and url in err and str(target) in err  # what, and where to put it
    assert ("--from PATH/state_dicts.zip" if what == "paper-weights" else "cifar-10-python.tar.gz") in err
    assert list(tmp_path.iterdir()) == []


class Server(http.server.BaseHTTPRequestHandler):
    """Serves ``payload``; answers range requests if ``ranges``; sends only ``cut`` bytes if set."""

    payload, ranges, cut, seen = b"", True, None, []

    def do_GET(self):
        requested = self.headers.get("Range")
        type(self).seen.append(requested)
        start = int(requested.split("=")[1].rstrip("-")) if requested and self.ranges else 0
        self.send_response(206 if start else 200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body if self.cut is None else body[: self.cut])

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    servers = []

    def start(payload: bytes, ranges=True, cut=None) -> tuple[str, type]:
        handler = type("Handler", (Server,), {"payload": payload, "ranges": ranges, "cut": cut, "seen": []})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/state_dicts.zip", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_download_resumes_from_a_partial_file(serve, tmp_path):
    payload = os.urandom(3 << 20)
    destination = tmp_path / "file.zip"
    url, handler = serve(payload, cut=1 << 20)
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(url, destination, progress=False)
    assert not destination.exists() and (tmp_path / "file.zip.partial").stat().st_size == 1 << 20
    url, handler = serve(payload)
    download_file(url, destination, progress=False)
    assert handler.seen == [f"bytes={1 << 20}-"] and destination.read_bytes() == payload
    assert not (tmp_path / "file.zip.partial").exists()


def test_download_starts_over_when_the_server_ignores_ranges(serve, tmp_path):
    payload = os.urandom(1 << 20)
    (tmp_path / "file.zip.partial").write_bytes(b"stale bytes")
    url, _ = serve(payload, ranges=False)
    assert download_file(url, tmp_path / "file.zip", progress=False).read_bytes() == payload


def test_paper_weights_over_http_after_an_interrupted_download(serve, zoo_zip, tmp_path, capsys):
    payload = zoo_zip.read_bytes()
    target = tmp_path / "paper"
    url, handler = serve(payload, cut=len(payload) // 2)
    assert main(["download", "paper-weights", "--from", url, "--dir", str(target)]) == 2
    assert "run again to resume" in capsys.readouterr().err and not target.exists()
    handler.cut = None  # the connection holds this time
    assert main(["download", "paper-weights", "--from", url, "--dir", str(target)]) == 0
    assert handler.seen == [None, f"bytes={len(payload) // 2}-"]
    assert [p.name for p in tmp_path.iterdir()] == ["paper"]  # the downloaded archive is gone
    assert len(read_manifest(target)) == len(ZOO)


def test_quick_sweep_on_paper_weights_writes_to_its_own_folder(paper_dir, tmp_path, monkeypatch):
    from haste.repro import notebooks, tables

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the kernel imports this checkout's haste
    data = make_tree(tmp_path / "cifar", per_class=2)
    notebooks.run(
        ["01_cifar10_sweep"],
        quick=True,
        out_dir=tmp_path / "executed",
        log_output=False,
        results_dir=str(tmp_path / "results"),
        data=str(data),
        weights=str(paper_dir),
        device="cpu",
    )
    out = tmp_path / "results" / "paper-weights" / "quick"
    sweep = pd.read_csv(out / "cifar10_sweep.csv", dtype={"weights_sha256": str})
    sha = {row["model"]: row["sha256"] for row in read_manifest(paper_dir)}
    assert (sweep.weights_source == "paper").all() and sweep.model.unique().tolist() == ["cifar10/resnet18"]
    assert (sweep.weights_sha256 == sha["cifar10/resnet18"]).all()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["paper-weights"]  # no stand-in files
    # the main table (02_cifar10_main_table) compares them with the paper as it does the stand-ins
    with pytest.warns(UserWarning, match="cifar10/resnet18"):  # random weights: no operating point
        table = tables.main_table(sweep, pd.read_csv(out / "cifar10_sweep_summary.csv")).set_index("model")
    row = table.loc["cifar10/resnet18"]
    assert row.weights_sha256 == sha["cifar10/resnet18"] and not row.bracketed
    assert table.paper_flops_reduction.dropna().index.tolist() == ["cifar10/resnet34", "cifar10/vgg19_bn"]
