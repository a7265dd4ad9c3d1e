"""Tests on the real CIFAR-10 JPEG mirror and the shipped checkpoints (skipped when absent)."""

import pytest

import haste
from haste import models
from haste.data import cifar10_batches
from haste.models.weights import read_manifest, shipped_weights_dir

SHIPPED = read_manifest()


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_file_matches_manifest(name):
    entry = SHIPPED[name]
    assert models.sha256_file(shipped_weights_dir() / entry["file"]) == entry["sha256"]


@pytest.mark.integration
def test_haste_on_real_images(cifar_root):
    model = models.build("cifar10/resnet18").eval()
    converted = haste.convert(model, 14)
    result = haste.evaluate(converted, cifar10_batches(cifar_root, "test", 128, limit=256), progress=False)
    totals = result.to_dict()
    assert result.images == 256
    assert 0 < totals["flops_reduction"] < totals["flops_reduction_no_overhead"] < 100


@pytest.mark.integration
@pytest.mark.skipif(not SHIPPED, reason="no shipped checkpoint in weights/manifest.csv yet")
def test_shipped_checkpoint_reproduces_manifest_accuracy(cifar_root):
    by_cost = [
        "cifar10/resnet18",
        "cifar10/vgg11_bn",
        "cifar10/vgg13_bn",
        "cifar10/vgg16_bn",
        "cifar10/vgg19_bn",
        "cifar10/resnet34",
    ]  # cheapest evaluation first
    name = next(name for name in by_cost + sorted(SHIPPED) if name in SHIPPED)
    model, _ = models.load(name)
    result = haste.evaluate(model, cifar10_batches(cifar_root, "test", 500), progress=False)
    assert abs(result.accuracy - float(SHIPPED[name]["test_accuracy"])) <= 0.01
