"""``python -m haste download cifar10-jpeg``: the JPEG mirror the committed numbers use, fetched from
a local archive or a local server, whole or not at all."""

import io
import zipfile

import pytest
from PIL import Image
from test_download import closed_port, serve  # noqa: F401 (a fixture)

from haste.repro.cli import main
from haste.zoo import download
from haste.zoo.data import CIFAR10_CLASSES, load_cifar10

SMALL = {"train": 20, "test": 10}  # two and one image per class


def mirror_zip(path, per_split=None, extra=None):
    """An archive laid out as GitHub's archive of the mirror's repository, with a few images."""
    per_split = per_split or {"train": 2, "test": 1}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("CIFAR-10-images-master/README.md", "# CIFAR-10 images")
        for split, count in per_split.items():
            for label, name in enumerate(CIFAR10_CLASSES):
                for i in range(count):
                    buffer = io.BytesIO()
                    Image.new("RGB", (32, 32), (label * 20, i * 60, 9)).save(buffer, "JPEG")
                    archive.writestr(f"CIFAR-10-images-master/{split}/{name}/{i:04d}.jpg", buffer.getvalue())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(download, "CIFAR10_JPEG_IMAGES", SMALL)


def test_from_a_local_archive_as_the_cli_documents_it(small, tmp_path, capsys):
    archive = mirror_zip(
        tmp_path / "master.zip", extra={"CIFAR-10-images-master/train/cat/../../x.jpg": b"no"}
    )
    target = tmp_path / "data" / "cifar10-jpeg"
    assert main(["download", "cifar10-jpeg", "--from", str(archive), "--dir", str(target)]) == 0
    assert f"use it with --data {target}" in capsys.readouterr().out
    images, labels = load_cifar10(target, "test")
    assert images.shape == (10, 3, 32, 32) and labels.tolist() == list(range(10))
    assert sorted(p.name for p in target.iterdir()) == ["test", "train"]  # nothing else taken
    assert not list(tmp_path.joinpath("data").glob(".cifar10-jpeg.partial-*"))


def test_over_http_from_a_local_server(small, serve, tmp_path):  # noqa: F811
    url, _ = serve(mirror_zip(tmp_path / "master.zip").read_bytes())
    target = download.fetch_cifar10_jpeg(tmp_path / "jpeg", url)
    assert load_cifar10(target, "train")[0].shape[0] == 20


def test_an_incomplete_archive_leaves_nothing(small, tmp_path, capsys):
    archive = mirror_zip(tmp_path / "short.zip", per_split={"train": 2, "test": 0})
    target = tmp_path / "jpeg"
    assert main(["download", "cifar10-jpeg", "--from", str(archive), "--dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "train 20, test 0 images, where the JPEG mirror has train 20, test 10" in err
    )
    assert not target.exists() and not list(tmp_path.glob(".jpeg.partial-*"))


def test_offline_it_says_in_one_line_what_to_do(tmp_path, capsys):
    url = f"http://127.0.0.1:{closed_port()}/master.zip"
    target = tmp_path / "jpeg"
    assert main(["download", "cifar10-jpeg", "--from", url, "--dir", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from FILE" in err and "could not download" in err
    assert not target.exists()
