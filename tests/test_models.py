import urllib.error

import pytest
import torch
from safetensors.torch import save_file

from haste import models
from haste.models import ChecksumError, WeightsNotFoundError


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
    model = models.build(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_zoo_parameter_names():
    resnet = models.build("cifar10/resnet18").state_dict()
    assert resnet["conv1.weight"].shape == (64, 3, 3, 3)
    assert "layer2.0.downsample.0.weight" in resnet and "fc.weight" in resnet
    vgg = models.build("cifar10/vgg16_bn").state_dict()
    assert vgg["features.0.bias"].shape == (64,)  # the zoo's VGG convs have biases
    assert vgg["classifier.0.weight"].shape == (4096, 512)
    assert vgg["classifier.6.weight"].shape == (10, 4096)


def test_unknown_model_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        models.build("cifar10/resnet9000")


def write_stand_in(directory, name="cifar10/resnet18", corrupt=False):
    model = models.build(name)
    path = directory / "cifar10" / "resnet18.safetensors"
    path.parent.mkdir(parents=True)
    save_file({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, str(path))
    sha = models.sha256_file(path)
    if corrupt:
        sha = "0" * 64
    (directory / "manifest.csv").write_text(f"model,file,sha256\n{name},cifar10/resnet18.safetensors,{sha}\n")
    return model, path


def test_stand_in_loads_verified(tmp_path):
    original, path = write_stand_in(tmp_path)
    model, info = models.load("cifar10/resnet18", weights_dir=tmp_path)
    assert info.source == "stand-in" and info.sha256 == models.sha256_file(path)
    assert torch.allclose(model.fc.weight, original.fc.weight, atol=1e-3)


def test_hash_mismatch_is_an_error(tmp_path):
    write_stand_in(tmp_path, corrupt=True)
    with pytest.raises(ChecksumError, match="does not match"):
        models.load("cifar10/resnet18", weights_dir=tmp_path)


def test_missing_stand_in_says_what_to_do(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="python -m haste train"):
        models.load("cifar10/vgg13_bn", weights_dir=tmp_path)


def test_corrupt_user_file_is_an_error(tmp_path):
    path = tmp_path / "resnet18.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ChecksumError, match="cannot be read"):
        models.load("cifar10/resnet18", weights=path)


def test_user_pt_file_loads_strict_and_records_hash(tmp_path):
    model = models.build("cifar10/resnet34")
    path = tmp_path / "resnet34.pt"
    torch.save(model.state_dict(), path)
    loaded, info = models.load("cifar10/resnet34", weights=path)
    assert info.source == "user file" and info.sha256 == models.sha256_file(path)
    assert torch.equal(loaded.conv1.weight, model.conv1.weight)


def test_imagenet_weights_offline_fail_clearly(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError, match="put resnet18-f37072fd.pth into"):
        models.load("imagenet/resnet18", weights_dir=tmp_path)


def test_imagenet_weights_from_local_file_checked_by_hash_prefix(tmp_path):
    torch.save(models.build("imagenet/resnet18").state_dict(), tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(ChecksumError):  # random weights under the published name: hash differs
        models.load("imagenet/resnet18", weights_dir=tmp_path, download=False)


def test_random_init_is_reproducible():
    a, info = models.load("cifar10/resnet18", weights=None)
    b, _ = models.load("cifar10/resnet18", weights=None)
    assert info.source == "random init"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
