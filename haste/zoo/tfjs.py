"""A reader for TF.js layers-format models, and the mapping of their Keras layers onto a torch model.

A TF.js layers model is ``model.json`` (the Keras topology and a weights manifest) and binary shards
of little-endian float32, concatenated in manifest order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class TfjsLayersModel:
    """A TF.js layers-format model: its Keras layers (by name) and weights (``"layer/param"``)."""

    layers: dict[str, dict]
    weights: dict[str, np.ndarray]


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
