import pytest
import torch
from PIL import Image

import haste.zoo.data
from haste.zoo.data import (
    CIFAR10_CLASSES,
    TensorBatches,
    check_cifar10,
    cifar10_batches,
    cifar10_root,
    load_cifar10,
)


def make_tree(root, per_class=2):
    for split in ("train", "test"):
        for index, name in enumerate(CIFAR10_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (index * 20, i * 50, 7)).save(folder / f"{i:04d}.png")
    return root


def test_image_folder_is_decoded_and_cached(tmp_path):
    root = make_tree(tmp_path / "cifar")
    images, labels = load_cifar10(root, "test")
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [i // 2 for i in range(20)]
    assert images[2, 0, 0, 0].item() == 20 and images[1, 1, 5, 5].item() == 50
    cached = list((tmp_path / "cache").glob("cifar10-test-*.pt"))
    assert len(cached) == 1
    again, _ = load_cifar10(root, "test")
    assert torch.equal(again, images)


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CIFAR-10.*python -m haste download cifar10"):
        load_cifar10(tmp_path / "nowhere", "test")
    with pytest.raises(ValueError, match="split"):
        load_cifar10(tmp_path, "validation")


def test_batches_normalise_and_augment_reproducibly(tmp_path):
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(10)
    plain = TensorBatches(images, labels, 4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    first, first_labels = next(iter(plain))
    assert len(plain) == 3 and first.shape == (4, 3, 32, 32)
    assert torch.allclose(first, (images[:4].float() / 255 - 0.5) / 0.25, atol=1e-5)
    augmented = TensorBatches(images, labels, 4, (0.5,) * 3, (0.25,) * 3, augment=True, shuffle=True, seed=1)
    a = [b for b, _ in augmented]
    b = [b for b, _ in augmented]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    augmented.set_epoch(1)
    assert not torch.equal(next(iter(augmented))[0], a[0])


def test_cifar10_batches_limit(tmp_path):
    root = make_tree(tmp_path / "cifar")
    batches = cifar10_batches(root, "train", batch_size=8, limit=12)
    labels = torch.cat([labels for _, labels in batches])
    assert len(labels) == 12
    assert len(labels.unique()) > 3  # a random subset, not the first (class-sorted) files


def test_cifar10_location_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = tmp_path / "shared" / "data" / "cifar10-jpeg"
    monkeypatch.setattr(haste.zoo.data, "CHECKOUT_CIFAR10", default)
    monkeypatch.delenv("HASTE_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as error:  # nothing given, nothing found
        cifar10_root()
    message = str(error.value)
    assert "\n" not in message
    assert "--data" in message and "HASTE_DATA" in message
    assert "python -m haste download cifar10 --dir DIR" in message
    default.mkdir(parents=True)
    assert cifar10_root() == default  # the checkout's default
    monkeypatch.setenv("HASTE_DATA", "from-env")
    assert cifar10_root() == tmp_path / "from-env"  # $HASTE_DATA before it, made absolute
    assert cifar10_root("given") == tmp_path / "given"  # an explicit location before both
    assert cifar10_root(tmp_path / "x" / ".." / "given") == tmp_path / "given"


def test_either_layout_passes_the_check(tmp_path):
    (tmp_path / "jpeg" / "test").mkdir(parents=True)
    (tmp_path / "torchvision" / "cifar-10-batches-py").mkdir(parents=True)
    assert check_cifar10(tmp_path / "jpeg") == tmp_path / "jpeg"
    assert check_cifar10(tmp_path / "torchvision") == tmp_path / "torchvision"
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 at"):
        check_cifar10(tmp_path / "jpeg", "train")


def test_decoded_cache_keys_on_the_resolved_path(tmp_path, monkeypatch):
    make_tree(tmp_path / "data" / "cifar", per_class=1)
    monkeypatch.chdir(tmp_path / "data")
    relative, _ = load_cifar10("../data/cifar", "test")
    absolute, _ = load_cifar10(tmp_path / "data" / "cifar", "test")
    assert torch.equal(relative, absolute)
    assert len(list((tmp_path / "cache").glob("cifar10-test-*.pt"))) == 1  # decoded once, not twice
