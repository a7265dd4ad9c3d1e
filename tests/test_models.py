import urllib.error

import pytest
import torch
from safetensors.torch import save_file

from haste import zoo
from haste.zoo import ChecksumError, WeightsNotFoundError


@pytest.mark.parametrize(
    "name,params",
    [
        ("cifar10/resnet18", 11_173_962),
        ("cifar10/resnet34", 21_282_122),
        ("cifar10/vgg11_bn", 28_149_514),
        ("cifar10/vgg19_bn", 38_958_922),
    ],
)
def test_cifar_architectures(name, params):
    model = zoo.build(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_zoo_parameter_names():
    resnet = zoo.build("cifar10/resnet18").state_dict()
    assert resnet["conv1.weight"].shape == (64, 3, 3, 3)
    assert "layer2.0.downsample.0.weight" in resnet and "fc.weight" in resnet
    vgg = zoo.build("cifar10/vgg16_bn").state_dict()
    assert vgg["features.0.bias"].shape == (64,)  # the zoo's VGG convs have biases
    assert vgg["classifier.0.weight"].shape == (4096, 512)
    assert vgg["classifier.6.weight"].shape == (10, 4096)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        zoo.build("cifar10/resnet9000")


def write_stand_in(directory, name="cifar10/resnet18", corrupt=False):
    model = zoo.build(name)
    path = directory / "cifar10" / "resnet18.safetensors"
    path.parent.mkdir(parents=True)
    save_file({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, str(path))
    sha = zoo.sha256_file(path)
    if corrupt:
        sha = "0" * 64
    (directory / "manifest.csv").write_text(f"model,file,sha256\n{name},cifar10/resnet18.safetensors,{sha}\n")
    return model, path


def test_stand_in_loads_verified(tmp_path):
    original, path = write_stand_in(tmp_path)
    model, info = zoo.load("cifar10/resnet18", weights_dir=tmp_path)
    assert info.source == "stand-in" and info.sha256 == zoo.sha256_file(path)
    assert torch.allclose(model.fc.weight, original.fc.weight, atol=1e-3)


def test_hash_mismatch_is_an_error(tmp_path):
    write_stand_in(tmp_path, corrupt=True)
    with pytest.raises(ChecksumError, match="does not match"):
        zoo.load("cifar10/resnet18", weights_dir=tmp_path)


def test_missing_stand_in_says_what_to_do(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="python -m haste train"):
        zoo.load("cifar10/vgg13_bn", weights_dir=tmp_path)


def test_corrupt_user_file_is_an_error(tmp_path):
    path = tmp_path / "resnet18.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ChecksumError, match="cannot be read"):
        zoo.load("cifar10/resnet18", weights=path)


def test_user_pt_file_loads_strict_and_records_hash(tmp_path):
    model = zoo.build("cifar10/resnet34")
    path = tmp_path / "resnet34.pt"
    torch.save(model.state_dict(), path)
    loaded, info = zoo.load("cifar10/resnet34", weights=path)
    assert info.source == "user file" and info.sha256 == zoo.sha256_file(path)
    assert torch.equal(loaded.conv1.weight, model.conv1.weight)


def test_imagenet_weights_offline_fail_clearly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError, match="put resnet18-f37072fd.pth into"):
        zoo.load("imagenet/resnet18", weights_dir=tmp_path)


def test_imagenet_weights_from_local_file_checked_by_hash_prefix(tmp_path):
    torch.save(zoo.build("imagenet/resnet18").state_dict(), tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(ChecksumError):  # random weights under the published name: hash differs
        zoo.load("imagenet/resnet18", weights_dir=tmp_path, download=False)


def test_random_init_is_reproducible():
    a, info = zoo.load("cifar10/resnet18", weights=None)
    b, _ = zoo.load("cifar10/resnet18", weights=None)
    assert info.source == "random init"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def file_server(tmp_path):
    """A folder served over HTTP on 127.0.0.1: yields (folder, base URL)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tiny_torchvision_model(monkeypatch):
    """Registers ``imagenet/tiny`` (one 1x1 conv) whose torchvision weights URL the test sets."""
    from types import SimpleNamespace

    import torchvision
    from torch import nn

    urls = {}
    spec = zoo.ModelSpec(
        "imagenet/tiny",
        lambda: nn.Conv2d(3, 2, 1),
        "imagenet",
        224,
        (0.5,) * 3,
        (0.5,) * 3,
        "Tiny.V1",
        weights=("torchvision",),
    )
    monkeypatch.setitem(zoo.MODELS, "imagenet/tiny", spec)
    monkeypatch.setattr(torchvision.models, "get_weight", lambda name: SimpleNamespace(url=urls[name]))
    return urls


def test_imagenet_weights_download_into_a_fresh_hub_folder(
    tmp_path, monkeypatch, file_server, tiny_torchvision_model
):
    import hashlib

    from torch import nn

    served, base = file_server
    weights = nn.Conv2d(3, 2, 1).state_dict()
    torch.save(weights, served / "tiny.pth")
    prefix = hashlib.sha256((served / "tiny.pth").read_bytes()).hexdigest()[:8]
    (served / "tiny.pth").rename(served / f"tiny-{prefix}.pth")  # torchvision's naming: <arch>-<sha>.pth
    tiny_torchvision_model["Tiny.V1"] = f"{base}/tiny-{prefix}.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "fresh"))  # no hub folder yet, as on a new machine
    model, info = zoo.load("imagenet/tiny")
    checkpoints = tmp_path / "fresh" / "hub" / "checkpoints"
    assert [p.name for p in checkpoints.iterdir()] == [f"tiny-{prefix}.pth"]
    assert info.source == "torchvision" and info.sha256.startswith(prefix)
    assert torch.equal(model.weight, weights["weight"])


def test_imagenet_download_with_a_wrong_hash_is_deleted(
    tmp_path, monkeypatch, file_server, tiny_torchvision_model
):
    from torch import nn

    served, base = file_server
    torch.save(nn.Conv2d(3, 2, 1).state_dict(), served / "tiny-00000000.pth")  # name promises another hash
    tiny_torchvision_model["Tiny.V1"] = f"{base}/tiny-00000000.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "fresh"))
    with pytest.raises(ChecksumError, match="not 00000000.*deleted"):
        zoo.load("imagenet/tiny")
    assert list((tmp_path / "fresh" / "hub" / "checkpoints").iterdir()) == []  # nothing left to load later


def test_imagenet_download_from_a_missing_url_says_where_to_put_the_file(
    tmp_path, monkeypatch, file_server, tiny_torchvision_model
):
    _, base = file_server
    tiny_torchvision_model["Tiny.V1"] = f"{base}/tiny-12345678.pth"  # not served: HTTP 404
    with pytest.raises(WeightsNotFoundError, match="put tiny-12345678.pth into"):
        zoo.load("imagenet/tiny", weights_dir=tmp_path / "new")


def test_file_of_another_architecture_is_summarised_in_one_line(tmp_path):
    state = zoo.build("cifar10/vgg11_bn").state_dict()
    torch.save(state, tmp_path / "vgg.pt")
    expected = set(zoo.build("cifar10/resnet18").state_dict())
    missing, unexpected = len(expected - set(state)), len(set(state) - expected)
    with pytest.raises(ValueError) as error:
        zoo.load("cifar10/resnet18", weights=tmp_path / "vgg.pt")
    message = str(error.value)
    assert (
        f"{missing} missing, {unexpected} unexpected keys: is this a checkpoint of cifar10/vgg11_bn?"
        in message
    )
    assert "\n" not in message and len(message) < 300


def test_file_with_other_shapes_names_the_first(tmp_path):
    state = zoo.build("cifar10/resnet18").state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(100, 512), torch.zeros(100)  # a CIFAR-100 head
    torch.save(state, tmp_path / "cifar100.pt")
    with pytest.raises(
        ValueError, match=r"2 tensors of another shape \(fc.weight: \[100, 512\] in the file, "
    ):
        zoo.load("cifar10/resnet18", weights=tmp_path / "cifar100.pt")


def test_reference_checkpoint_hashes(tmp_path):
    _, path = write_stand_in(tmp_path)
    assert zoo.reference_checkpoint("cifar10/resnet18", tmp_path) == (
        "the shipped cifar10/resnet18 checkpoint",
        zoo.sha256_file(path),
    )
    assert zoo.reference_checkpoint("cifar10/vgg13_bn", tmp_path) is None  # not in that manifest
    assert zoo.reference_checkpoint("imagenet/resnet18")[1] == "f37072fd"  # resnet18-f37072fd.pth


@pytest.mark.parametrize(
    "recorded", [lambda real: "", lambda real: real[:1], lambda real: real[:8], lambda real: "z" * 64]
)
def test_a_manifest_with_an_empty_or_short_hash_is_refused(tmp_path, recorded):
    # each a prefix of the file's hash (or not hex): a startswith check let them all pass
    _, path = write_stand_in(tmp_path)
    hash_text = recorded(zoo.sha256_file(path))
    (tmp_path / "manifest.csv").write_text(
        f"model,file,sha256\ncifar10/resnet18,cifar10/resnet18.safetensors,{hash_text}\n"
    )
    with pytest.raises(ChecksumError, match="not a full SHA-256"):
        zoo.load("cifar10/resnet18", weights_dir=tmp_path)


def test_verify_takes_full_hashes_and_torchvision_length_prefixes_only(tmp_path):
    from haste.zoo.weights import verify

    path = tmp_path / "file.bin"
    path.write_bytes(b"weights")
    actual = zoo.sha256_file(path)
    assert verify(path, actual) == actual and verify(path, actual.upper()) == actual
    assert verify(path, actual[:8]) == actual  # torchvision's file names carry 8 hex digits
    for too_short in ("", actual[:1], actual[:7]):
        with pytest.raises(ChecksumError, match="at least 8 hex digits"):
            verify(path, too_short)
    with pytest.raises(ChecksumError, match="does not match"):
        verify(path, "0" * 64)
    with pytest.raises(ChecksumError, match="at least 8 hex digits"):
        verify(path, actual + "00")


def test_load_state_dict_refuses_an_empty_file_and_values_that_are_not_tensors(tmp_path):
    from haste.zoo.weights import ChecksumError, load_state_dict

    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ChecksumError, match="empty.pt: the file is empty"):
        load_state_dict(tmp_path / "empty.pt")
    torch.save({"conv1.weight": torch.zeros(1), "conv1.bias": 3}, tmp_path / "numbers.pt")
    with pytest.raises(ChecksumError, match="'conv1.bias' holds an int, not a tensor"):
        load_state_dict(tmp_path / "numbers.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "good.pt")
    assert list(load_state_dict(tmp_path / "good.pt")) == ["conv1.weight"]
