"""Filter removal shared by the methods that remove whole filters (``magnitude``, ``merging``): the
per-layer rule that reaches a FLOPs target, the FLOPs of the pruned model, and the surgery.

The rule is one uniform ratio: every prunable chain (:func:`~haste.baselines.structure.prunable_chains`)
removes ``round(ratio * C)`` of its producer's ``C`` filters, keeping at least one, and the ratio is
the smallest at which the whole model's FLOPs reduction reaches the target. So both methods give
the same architecture at a target, and differ only in which filters go and where their weights go.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .flops import Call, fvcore_flops, module_calls, module_flops, smallest_ratio
from .record import Compression, RemovedFilters
from .structure import (
    Chain,
    conv_outputs,
    layer_inputs,
    norm_channels,
    prunable_chains,
    set_submodule,
    submodule,
)

RULE = "uniform ratio: every prunable conv loses round(ratio x its filters), keeping at least one"

# (original model, model being compressed, chain, how many filters to remove) -> the removed
# filters, and per removed filter the kept one its consumer weights were added to (-1: none) with
# the factor. A chooser may change the consumer's weights of the model being compressed (merging
# does); the surgery then drops the removed filters' columns.
Chooser = Callable[[nn.Module, nn.Module, Chain, int], tuple[list[int], list[int], list[float]]]


def removal_count(channels: int, ratio: float) -> int:
    return min(round(ratio * channels), channels - 1)


def pruned_flops(
    model: nn.Module,
    calls: dict[str, list[Call]],
    chains: list[Chain],
    kept: dict[str, int],
    flops_dense: int,
) -> int:
    """FLOPs per image of ``model`` once each chain's producer keeps ``kept[producer]`` filters:
    ``flops_dense`` less what every module on a chain no longer computes, by fvcore's rules."""
    modules = dict(model.named_modules())
    outputs, inputs, channels = {}, {}, {}
    for chain in chains:
        outputs[chain.producer] = inputs[chain.consumer] = kept[chain.producer]
        for name in (chain.norm, *chain.between):
            channels[name] = kept[chain.producer]
    removed = 0
    for name in outputs.keys() | inputs.keys() | channels.keys():
        module = modules[name]
        for call in calls[name]:
            if name in channels:
                changed = call.with_channels(channels[name], channels[name])
            elif isinstance(module, nn.Linear):
                changed = call.with_channels(inputs=inputs[name], dim=-1)
            else:
                changed = call.with_channels(inputs.get(name), outputs.get(name))
            removed += module_flops(module, call) - module_flops(module, changed)
    return flops_dense - removed


def remove_filters(model: nn.Module, chain: Chain, kept: list[int]) -> None:
    """Replace the chain's producer, norm and consumer of ``model`` by copies without the filters,
    BN entries and input channels not in ``kept``."""
    producer = submodule(model, chain.producer, nn.Conv2d)
    index = torch.tensor(kept, dtype=torch.long, device=producer.weight.device)
    consumer = submodule(model, chain.consumer, nn.Module)
    if not isinstance(consumer, nn.Conv2d | nn.Linear):
        raise TypeError(f"{chain.consumer} is a {type(consumer).__name__}, not a conv or linear layer")
    set_submodule(model, chain.producer, conv_outputs(producer, index))
    set_submodule(model, chain.norm, norm_channels(submodule(model, chain.norm, nn.BatchNorm2d), index))
    set_submodule(model, chain.consumer, layer_inputs(consumer, index))


def compress_filters(
    model: nn.Module, target: float, method: str, choose: Chooser, input_shape: tuple[int, ...]
) -> tuple[nn.Module, Compression]:
    """A compressed copy of ``model`` whose FLOPs reduction reaches ``target`` (percent) by the
    uniform rule, the filters to remove and their compensation chosen by ``choose``; and its record."""
    chains = prunable_chains(model)
    calls = module_calls(model, input_shape)
    flops_dense = fvcore_flops(model, input_shape)
    channels = {chain.producer: submodule(model, chain.producer, nn.Conv2d).out_channels for chain in chains}

    def kept_at(ratio: float) -> dict[str, int]:
        return {name: count - removal_count(count, ratio) for name, count in channels.items()}

    def reduction_at(ratio: float) -> float:
        return 100.0 * (1.0 - pruned_flops(model, calls, chains, kept_at(ratio), flops_dense) / flops_dense)

    ratio = smallest_ratio(reduction_at, target)
    kept = kept_at(ratio)
    compressed = copy.deepcopy(model)
    layers = []
    for chain in chains:
        count = channels[chain.producer]
        removed, merged_into, scales = choose(model, compressed, chain, count - kept[chain.producer])
        if removed:
            remove_filters(compressed, chain, sorted(set(range(count)) - set(removed)))
        layers.append(
            RemovedFilters(
                chain.producer,
                chain.norm,
                chain.consumer,
                count,
                tuple(removed),
                tuple(merged_into),
                tuple(scales),
            )
        )
    flops = pruned_flops(model, calls, chains, kept, flops_dense)
    return compressed, Compression(method, target, RULE, ratio, flops_dense, flops, layers)
