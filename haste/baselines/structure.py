"""Where a static method may cut: the prunable conv -> BN -> consumer chains and the convs a low-rank
method may factorise, in the two architecture families of ``haste.zoo.cifar``, and the surgery
that replaces a module by a smaller copy.

A filter of a conv may be removed only where its output channel is read by one layer alone. In a
residual network the block outputs are summed with the shortcut, so only the inner convs qualify:
``conv1`` of a BasicBlock (read only by ``conv2``, through ``bn1`` and the ReLU), and ``conv1`` and
``conv2`` of a Bottleneck. The stem, the last conv of every block and the shortcut convs stay whole.
In a VGG every conv qualifies: its channels go through its BN, ReLU and max-pool to the next conv,
and the last conv's through global average pooling to the classifier's first linear layer.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn
from torchvision.models import resnet as tv_resnet

from ..zoo.cifar import CifarVGG

M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class Chain:
    """``producer`` (a conv) -> ``norm`` (its BatchNorm2d) -> ``between`` -> ``consumer``.

    ``between``: the modules between the norm and the consumer that carry these channels only (ReLU,
    pooling); a module shared with other channels (a BasicBlock's one ReLU) is left out, and needs
    no change, being channel-wise. ``consumer``: the conv or linear layer that reads the channels,
    and nothing else does.
    """

    producer: str
    norm: str
    consumer: str
    between: tuple[str, ...] = ()


def _unsupported(model: nn.Module) -> ValueError:
    return ValueError(
        f"no known structure for a {type(model).__name__}: the baselines know torchvision-style ResNets "
        "(BasicBlock, Bottleneck) and the VGG-BNs of haste.zoo.cifar"
    )


def prunable_chains(model: nn.Module) -> list[Chain]:
    """Every chain whose producer's filters may be removed, in the order the model runs them."""
    if isinstance(model, tv_resnet.ResNet):
        chains = []
        for name, block in model.named_modules():
            if isinstance(block, tv_resnet.BasicBlock):
                chains.append(Chain(f"{name}.conv1", f"{name}.bn1", f"{name}.conv2"))
            elif isinstance(block, tv_resnet.Bottleneck):
                chains.append(Chain(f"{name}.conv1", f"{name}.bn1", f"{name}.conv2"))
                chains.append(Chain(f"{name}.conv2", f"{name}.bn2", f"{name}.conv3"))
        return chains
    if isinstance(model, CifarVGG):
        return _vgg_chains(model)
    raise _unsupported(model)


def _vgg_chains(model: CifarVGG) -> list[Chain]:
    layers = list(model.features)
    convs = [index for index, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    chains = []
    for position, index in enumerate(convs):
        if not isinstance(layers[index + 1], nn.BatchNorm2d):
            raise ValueError(f"features.{index} is not followed by a BatchNorm2d")
        last = position == len(convs) - 1
        stop = len(layers) if last else convs[position + 1]
        between = tuple(f"features.{i}" for i in range(index + 2, stop))
        if last:
            head = model.classifier[0]
            channels = layers[index].out_channels
            pooled = model.avgpool.output_size in (1, (1, 1))
            if not (isinstance(head, nn.Linear) and head.in_features == channels and pooled):
                raise ValueError(
                    "the last conv's channels must reach the classifier through a 1x1 average pool"
                )
            chains.append(
                Chain(f"features.{index}", f"features.{index + 1}", "classifier.0", (*between, "avgpool"))
            )
        else:
            chains.append(
                Chain(
                    f"features.{index}", f"features.{index + 1}", f"features.{convs[position + 1]}", between
                )
            )
    return chains


def following_norms(model: nn.Module) -> dict[str, str]:
    """Every conv of the model, in order, with the BatchNorm2d that normalises its output."""
    if isinstance(model, tv_resnet.ResNet):
        norms = {"conv1": "bn1"}
        for name, block in model.named_modules():
            if isinstance(block, tv_resnet.BasicBlock | tv_resnet.Bottleneck):
                for index in (1, 2, 3) if isinstance(block, tv_resnet.Bottleneck) else (1, 2):
                    norms[f"{name}.conv{index}"] = f"{name}.bn{index}"
                if block.downsample is not None:
                    norms[f"{name}.downsample.0"] = f"{name}.downsample.1"
        return norms
    if isinstance(model, CifarVGG):
        return {chain.producer: chain.norm for chain in _vgg_chains(model)}
    raise _unsupported(model)


def factorisable_convs(model: nn.Module) -> list[str]:
    """The convs a low-rank method factorises: every conv but the stem, whose three input channels
    leave little rank to cut (HASTE leaves it dense too)."""
    names = list(following_norms(model))
    return names[1:]


def submodule(model: nn.Module, name: str, kind: type[M]) -> M:
    """``model``'s submodule ``name``, checked to be a ``kind``."""
    module = model.get_submodule(name)
    if not isinstance(module, kind):
        raise TypeError(f"{name} is a {type(module).__name__}, not a {kind.__name__}")
    return module


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _parameter(values: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(values.detach().clone())


# The smaller copies are deep copies of the module with their tensors replaced: every other
# attribute (stride, padding, padding mode, eps, training flag, device, dtype) stays as it was.


@torch.no_grad()
def conv_outputs(conv: nn.Conv2d, kept: torch.Tensor) -> nn.Conv2d:
    """A copy of ``conv`` with only the output filters ``kept`` (indices, in order)."""
    if conv.groups != 1:
        raise ValueError("grouped convolutions are not supported")
    new = copy.deepcopy(conv)
    new.out_channels = len(kept)
    new.weight = _parameter(conv.weight[kept])
    if conv.bias is not None:
        new.bias = _parameter(conv.bias[kept])
    return new


@torch.no_grad()
def layer_inputs(layer: nn.Conv2d | nn.Linear, kept: torch.Tensor) -> nn.Conv2d | nn.Linear:
    """A copy of a conv or linear layer that reads only its input channels ``kept``."""
    new = copy.deepcopy(layer)
    if isinstance(new, nn.Linear):
        new.in_features = len(kept)
    else:
        if new.groups != 1:
            raise ValueError("grouped convolutions are not supported")
        new.in_channels = len(kept)
    new.weight = _parameter(layer.weight[:, kept])
    return new


@torch.no_grad()
def norm_channels(norm: nn.BatchNorm2d, kept: torch.Tensor) -> nn.BatchNorm2d:
    """A copy of ``norm`` with only the channels ``kept``, its stored statistics included."""
    new = copy.deepcopy(norm)
    new.num_features = len(kept)
    if norm.weight is not None and norm.bias is not None:
        new.weight = _parameter(norm.weight[kept])
        new.bias = _parameter(norm.bias[kept])
    if norm.running_mean is not None and norm.running_var is not None:
        new.running_mean = norm.running_mean[kept].clone()
        new.running_var = norm.running_var[kept].clone()
    return new
