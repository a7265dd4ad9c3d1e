"""Datasets: CIFAR-10 (torchvision download or an ImageFolder tree) and ImageNet validation.

CIFAR-10 is found by one rule everywhere (:func:`cifar10_root`). CIFAR-sized datasets are decoded
once and cached as a uint8 tensor, so repeated evaluation and every training epoch skip JPEG
decoding; batches are normalised and augmented as whole tensors.
"""

from __future__ import annotations

import hashlib
import numbers
import os
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import torch

from .files import atomic_save, atomic_write_text, cache_dir
from .transforms import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, imagenet_transform

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# a source checkout's CIFAR-10: the JPEG mirror in the shared folder beside the repository
CHECKOUT_CIFAR10 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpeg"
_TORCHVISION_FOLDER = "cifar-10-batches-py"  # what torchvision's CIFAR10 keeps under its root


def check_count(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, else a one-line ValueError."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def check_optional_count(name: str, value) -> int | None:
    """``value`` as ``None`` or an int >= 1 (a number of images, a size), else a one-line ValueError."""
    if value is None:
        return None
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be None or an integer >= 1, not {value!r}")
    return int(value)


def cifar10_root(data: str | os.PathLike | None = None) -> Path:
    """Where CIFAR-10 is: ``data`` if given, else ``$HASTE_DATA``, else the checkout's default
    ``<repository>/../shared/data/cifar10-jpeg`` (if it is there); an absolute path.

    Either location may be an ImageFolder tree (``<root>/{train,test}/<class>/*.jpg``) or a
    torchvision CIFAR-10 root. Raises a one-line FileNotFoundError when none is given or found.
    """
    if data is None and os.environ.get("HASTE_DATA"):
        data = os.environ["HASTE_DATA"]
    if data is None:
        if not CHECKOUT_CIFAR10.is_dir():
            raise FileNotFoundError(
                f"no CIFAR-10: pass --data DIR or set HASTE_DATA (the checkout's default {CHECKOUT_CIFAR10} "
                "is missing); to fetch it: `python -m haste download cifar10 --dir DIR`"
            )
        data = CHECKOUT_CIFAR10
    return Path(data).expanduser().resolve()


def check_cifar10(root: str | os.PathLike, split: str = "test", download: str = "") -> Path:
    """``root`` if it holds CIFAR-10's ``split`` (either layout), else a one-line FileNotFoundError.

    ``download``: the caller's own way to download it (``"--download"``, ``"download=True"``), which
    the message then offers; callers without one pass nothing, so the message names no option that
    does not exist where it is shown.
    """
    root = Path(root)
    if not (root / split).is_dir() and not (root / _TORCHVISION_FOLDER).is_dir():
        instead = f", or pass {download}" if download else ""
        raise FileNotFoundError(
            f"no CIFAR-10 at {root}{_origin(root)}: expected an ImageFolder tree "
            f"{root / split}/<class>/*.jpg or a torchvision CIFAR-10 root ({root / _TORCHVISION_FOLDER}); "
            f"fetch it with `python -m haste download cifar10 --dir DIR`{instead}"
        )
    return root


def _origin(root: Path) -> str:
    """Where a CIFAR-10 location that no argument named comes from, for the message that it is not
    there: a user who never typed the path is told which setting to change."""
    resolved = root.expanduser().resolve()
    environment = os.environ.get("HASTE_DATA")
    if environment and Path(environment).expanduser().resolve() == resolved:
        return " (the value of $HASTE_DATA)"
    if resolved == CHECKOUT_CIFAR10.resolve():
        return " (the checkout's default)"
    return ""


def _decode_image_folder(split_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image
    from torchvision.datasets import ImageFolder
    from tqdm import tqdm  # text: it reaches the terminal from notebooks run by papermill

    folder = ImageFolder(str(split_dir))
    if folder.classes != CIFAR10_CLASSES:
        raise ValueError(f"{split_dir}: class folders {folder.classes} are not CIFAR-10's")
    images = torch.empty(len(folder.samples), 3, 32, 32, dtype=torch.uint8)
    for index, (path, _) in enumerate(tqdm(folder.samples, desc=f"decoding {split_dir}")):
        with Image.open(path) as image:
            array = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8)
        if array.numel() != 3 * 32 * 32:
            raise ValueError(f"{path}: expected a 32x32 image")
        images[index] = array.view(32, 32, 3).permute(2, 0, 1)
    return images, torch.tensor(folder.targets, dtype=torch.int64)


def _file_state(path: Path) -> str:
    """What of a file's metadata changes when its contents may have: size, modification and change
    times, and the inode, which moves with the file when folders are renamed (two classes swapped)."""
    stat = path.stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"


def load_cifar10(root: str | os.PathLike | None = None, split: str = "test", download: bool = False):
    """CIFAR-10 as ``(images uint8 [N, 3, 32, 32], labels int64 [N])``.

    ``root`` (default: :func:`cifar10_root`) is either an ImageFolder tree
    (``root/{train,test}/<class>/*.jpg``, like the JPEG mirror in ``shared/data/cifar10-jpeg``) or a
    torchvision CIFAR-10 root (the lossless original, downloaded when ``download=True``). ImageFolder
    trees are decoded once and cached under ``$HASTE_CACHE``, keyed on their absolute path and each
    file's state (:func:`_file_state`), so replaced or relabelled images are decoded again.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = cifar10_root(root)  # absolute: one cache entry however the path was spelled
    split_dir = root / split
    if split_dir.is_dir():
        files = sorted(p for p in split_dir.rglob("*") if p.is_file())
        key = hashlib.sha256("\n".join(map(_file_state, files)).encode()).hexdigest()[:16]
        cached = cache_dir() / f"cifar10-{split}-{key}.pt"
        if cached.is_file():
            try:
                data = torch.load(cached, weights_only=True)
                return data["images"], data["labels"]
            except Exception:
                cached.unlink()  # a corrupt cache is rebuilt, not trusted
        images, labels = _decode_image_folder(split_dir)
        atomic_save({"images": images, "labels": labels}, cached)
        return images, labels
    from torchvision.datasets import CIFAR10

    if not download:
        check_cifar10(root, split, download="download=True")
    try:
        dataset = CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as error:  # torchvision's own checks: a missing or corrupt download
        raise FileNotFoundError(f"no usable CIFAR-10 at {root}: {error}") from error
    images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor(dataset.targets, dtype=torch.int64)


class TensorBatches:
    """Iterable of normalised ``(images float [B, 3, H, W], labels [B])`` batches from uint8 tensors.

    With ``augment=True`` each pass draws random 4-pixel-padded crops and horizontal flips from a
    generator seeded by ``seed`` and the pass number, so a run is reproducible and resumable.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        mean,
        std,
        augment: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
        channels_last: bool = False,
    ):
        batch_size = check_count("batch_size", batch_size)
        limit = check_optional_count("limit", limit)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if limit is not None and limit < len(labels):
            # a fixed random subset: the files are sorted by class, so a prefix would be one class
            subset = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:limit]
            images, labels = images[subset.sort().values], labels[subset.sort().values]
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.mean = torch.tensor(mean).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std).view(1, 3, 1, 1) * 255
        self.augment, self.shuffle, self.seed = augment, shuffle, seed
        self.channels_last = channels_last
        self.epoch = 0

    def __len__(self) -> int:
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def fingerprint(self) -> str:
        """SHA-256 of the images and labels these batches hold (before normalisation): what the
        result cache knows the data by."""
        return tensor_fingerprint(self.images, self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        count = len(self.labels)
        order = torch.randperm(count, generator=generator) if self.shuffle else torch.arange(count)
        for start in range(0, count, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images[index]
            if self.augment:
                images = _random_crop_flip(images, generator)
            images = (images.float() - self.mean) / self.std
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, self.labels[index]


def tensor_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """SHA-256 over ``images`` and ``labels``: their shapes, dtypes and values."""
    digest = hashlib.sha256()
    for tensor in (images, labels):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def data_fingerprint(batches) -> str:
    """SHA-256 of the images and labels that ``batches`` (:class:`TensorBatches`, or a loader over
    :class:`ImageNetVal`) yields, from the decoded tensors or the files' bytes, paths and labels."""
    source = getattr(batches, "dataset", batches)
    if not hasattr(source, "fingerprint"):
        raise TypeError(f"no fingerprint for the data of a {type(batches).__name__}")
    return source.fingerprint()


def _random_crop_flip(images: torch.Tensor, generator: torch.Generator, pad: int = 4):
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, 3, h, w + 2 * pad)
    crops = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, 3, h, w)
    crops = crops.gather(3, cols)
    flip = torch.rand(n, generator=generator) < 0.5
    crops[flip] = crops[flip].flip(3)
    return crops


def cifar10_batches(root=None, split="test", batch_size=256, limit=None, download=False, **kwargs):
    """CIFAR-10 batches normalised with the zoo's statistics (see ``haste.zoo.CIFAR10_MEAN``).

    ``root``: see :func:`cifar10_root`; ``limit``: a fixed random subset of that many images.
    """
    check_count("batch_size", batch_size)  # before the data is read
    check_optional_count("limit", limit)
    images, labels = load_cifar10(root, split, download)
    return TensorBatches(images, labels, batch_size, CIFAR10_MEAN, CIFAR10_STD, limit=limit, **kwargs)


IMAGENET_LABELS_FILE = "labels.csv"  # of a flat validation folder: columns file, wnid (, class_index)


@cache
def _wnid_index() -> dict[str, int]:
    from .imagenet_wnids import WNIDS

    return {wnid: index for index, wnid in enumerate(WNIDS)}


def _class_index(wnid: str, where: str) -> int:
    index = _wnid_index().get(wnid)
    if index is None:
        raise ValueError(f"{where}: {wnid!r} is not one of the 1,000 ImageNet-1k wnids")
    return index


def _flat_samples(root: Path) -> list[tuple[Path, int]]:
    import csv

    images = root / "images" if (root / "images").is_dir() else root
    with open(root / IMAGENET_LABELS_FILE, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"file", "wnid"} <= set(rows[0]):
        raise ValueError(f"{root / IMAGENET_LABELS_FILE}: expected columns file and wnid (and class_index)")
    samples, seen = [], set()
    for line, row in enumerate(rows, start=2):
        where = f"{root / IMAGENET_LABELS_FILE} line {line}"
        index = _class_index(row["wnid"], where)
        if row.get("class_index") not in (None, "") and int(row["class_index"]) != index:
            raise ValueError(f"{where}: class_index {row['class_index']}, but {row['wnid']} is class {index}")
        if row["file"] in seen:
            raise ValueError(f"{where}: {row['file']} is listed twice")
        seen.add(row["file"])
        samples.append((images / row["file"], index))
    missing = [str(path) for path, _ in samples if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} images listed in {IMAGENET_LABELS_FILE} are missing: {missing[0]}"
        )
    return sorted(samples)


def _image_folder_samples(root: Path) -> list[tuple[Path, int]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        index = _class_index(folder.name, f"{root}: class folder")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
        samples += [(path, index) for path in files]
    return samples


def imagenet_val_samples(root: str | os.PathLike) -> list[tuple[Path, int]]:
    """``(image path, class index)`` of every image of an ImageNet validation folder, in file order.

    Two layouts: an ImageFolder ``root/<wnid>/*.JPEG``, or a flat folder (how the validation set
    ships) with ``root/labels.csv`` (columns ``file``, ``wnid``, optionally ``class_index``, which
    is then checked) and the images in ``root/images/`` or ``root``. The class index is the wnid's
    position among all 1,000 sorted wnids (``haste.zoo.imagenet_wnids.WNIDS``), so a folder holding only
    some classes keeps the true indices (torchvision's ``ImageFolder`` would renumber them 0..k-1).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no ImageNet validation folder at {root}")
    flat = (root / IMAGENET_LABELS_FILE).is_file()
    samples = _flat_samples(root) if flat else _image_folder_samples(root)
    if not samples:
        raise FileNotFoundError(f"{root}: no images (expected <wnid>/*.JPEG or {IMAGENET_LABELS_FILE})")
    return samples


def seeded_subset(count: int, limit: int | None, seed: int = 0) -> list[int]:
    """``limit`` of ``range(count)`` drawn at random with ``seed``, in increasing order (all if None).

    Validation files are often sorted by class, so a prefix would hold few classes.
    """
    limit = check_optional_count("limit", limit)
    if limit is None or limit >= count:
        return list(range(count))
    return sorted(torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:limit].tolist())


class ImageNetVal(torch.utils.data.Dataset):
    """``(image tensor, class index)`` of :func:`imagenet_val_samples`, RGB through ``transform``."""

    def __init__(self, samples: list[tuple[Path, int]], transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def fingerprint(self) -> str:
        """SHA-256 over every sample's path (relative to the samples' common folder), label and file
        bytes. Reading the bytes is done once: the result is cached under ``$HASTE_CACHE``, keyed on
        the files' state (:func:`_file_state`)."""
        if not self.samples:
            return hashlib.sha256(b"no samples").hexdigest()
        key = hashlib.sha256(
            "\n".join(f"{_file_state(Path(path))}:{label}" for path, label in self.samples).encode()
        ).hexdigest()
        cached = cache_dir() / "data-fingerprints" / f"{key}.txt"
        if cached.is_file():
            text = cached.read_text().strip()
            if len(text) == 64:
                return text
        base = Path(os.path.commonpath([str(Path(path).parent) for path, _ in self.samples]))
        digest = hashlib.sha256()
        for path, label in self.samples:
            digest.update(f"{Path(path).relative_to(base).as_posix()}\0{label}\0".encode())
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
        atomic_write_text(digest.hexdigest() + "\n", cached)
        return digest.hexdigest()

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


def imagenet_val_loader(
    root,
    batch_size=32,
    limit=None,
    num_workers=2,
    mean=None,
    std=None,
    resize: int | None = 256,
    crop: int = 224,
):
    """ImageNet validation batches (either layout of :func:`imagenet_val_samples`), in file order.

    Default preprocessing: torchvision's (resize 256, centre crop 224, its mean and std); pass a
    model's ``mean``/``std`` (``haste.zoo.spec(name)``). ``limit``: a seeded random subset.
    """
    from torch.utils.data import DataLoader

    batch_size = check_count("batch_size", batch_size)
    check_optional_count("limit", limit)
    num_workers = check_count("num_workers", num_workers, minimum=0)
    check_optional_count("resize", resize)
    check_count("crop", crop)
    samples = imagenet_val_samples(root)
    samples = [samples[i] for i in seeded_subset(len(samples), limit)]
    transform = imagenet_transform(mean or IMAGENET_MEAN, std or IMAGENET_STD, resize, crop)
    return DataLoader(ImageNetVal(samples, transform), batch_size=batch_size, num_workers=num_workers)
