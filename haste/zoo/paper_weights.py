"""The paper's CIFAR-10 checkpoints: the huyvnphan/PyTorch_CIFAR10 zoo's ``<arch>.pt`` state dicts.

``python -m haste download paper-weights`` puts them, with a ``manifest.csv`` of their SHA-256 and
sizes, into :func:`paper_weights_dir`; ``haste.zoo.load(name, weights="paper")`` loads them from
there (or from ``weights_dir``), checked against that manifest. A folder of ``<arch>.pt`` files
unpacked by hand, without a manifest, loads too; its files' SHA-256 are computed and recorded.
"""

from __future__ import annotations

import os
from pathlib import Path

from .files import cache_dir
from .weights import WeightsNotFoundError, read_manifest, sha256_file, verify

# the architectures of the paper's CIFAR-10 table; the zoo's ResNet50 is taken too when present
PAPER_ARCHITECTURES = ("vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "resnet18", "resnet34")
OPTIONAL_ARCHITECTURES = ("resnet50",)
MANIFEST = "manifest.csv"


def paper_weights_dir() -> Path:
    """``$HASTE_PAPER_WEIGHTS`` if set, else ``<cache>/paper-weights`` (see ``haste.zoo.files.cache_dir``)."""
    return Path(os.environ.get("HASTE_PAPER_WEIGHTS") or cache_dir() / "paper-weights")


def paper_checkpoint(name: str, weights_dir=None) -> Path:
    """The file ``weights="paper"`` loads for ``name``: ``<weights_dir>/<arch>.pt``; an error if absent."""
    directory = Path(weights_dir) if weights_dir else paper_weights_dir()
    dataset, _, arch = name.partition("/")
    if dataset != "cifar10":
        raise ValueError(f"{name}: the paper's checkpoints (weights='paper') are CIFAR-10 models only")
    path = directory / f"{arch}.pt"
    if not path.is_file():
        where = "" if weights_dir is None else f" --dir {directory}"
        raise WeightsNotFoundError(
            f"{name}: no paper checkpoint {path}; fetch the zoo's weights with "
            f"`python -m haste download paper-weights{where}`, or unpack {arch}.pt from its "
            f"state_dicts.zip into {directory}"
        )
    return path


def verified_paper_checkpoint(name: str, weights_dir=None) -> tuple[Path, str]:
    """``name``'s paper checkpoint and its SHA-256, checked against its folder's manifest if it has one."""
    path = paper_checkpoint(name, weights_dir)
    entry = read_manifest(path.parent / MANIFEST).get(name)
    return path, verify(path, entry["sha256"]) if entry else sha256_file(path)
