"""Magnitude filter pruning (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017), data-free
and without fine-tuning.

Each prunable conv loses the filters of smallest L1 norm (the sum of the absolute kernel weights),
ranked on the original weights of that conv alone (the paper's "independent" ranking), with their
BN entries and the next layer's matching input channels. Nothing is compensated: the compressed
model is a smaller dense model. How many filters each conv loses: :mod:`haste.baselines.pruning`.
"""

from __future__ import annotations

from torch import nn

from .pruning import compress_filters
from .record import Compression
from .structure import Chain, submodule

METHOD = "magnitude"


def smallest_filters(original: nn.Module, compressed: nn.Module, chain: Chain, count: int):
    """The ``count`` filters of the chain's producer of smallest L1 norm (ties: the lower index)."""
    weight = submodule(original, chain.producer, nn.Conv2d).weight.detach()
    norms = weight.abs().sum(dim=(1, 2, 3))
    removed = sorted(norms.argsort(stable=True)[:count].tolist())
    return removed, [-1] * count, [0.0] * count


def compress(
    model: nn.Module, target: float, input_shape: tuple[int, ...] = (3, 32, 32)
) -> tuple[nn.Module, Compression]:
    """A pruned copy of ``model`` (left unchanged) whose whole-model FLOPs fall by ``target`` percent
    or a little more, and the record of what was removed."""
    return compress_filters(model, target, METHOD, smallest_filters, input_shape)
