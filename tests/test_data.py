import pytest
import torch
from PIL import Image

from haste.data import CIFAR10_CLASSES, TensorBatches, cifar10_batches, load_cifar10


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
    with pytest.raises(FileNotFoundError, match="no CIFAR-10"):
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
