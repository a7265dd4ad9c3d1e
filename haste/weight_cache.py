"""Rearranged copies of a layer's weight, kept until the weight changes or dies.

Both execution paths multiply by the weight in another layout than ``nn.Conv2d`` stores it (the
GEMM matrix of the eval path, the filter table of the compressed path's kernel). Rebuilt on every
call, the GEMM matrix made the eval path take 4.46x the dense time on a CIFAR-10 ResNet34 at batch 1
on a 2-core CPU; kept, 1.45x (``results/speed/models.csv`` and its predecessor at 5c1f961).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch

# (id(weight), name) -> (weak reference, version, copy); tensors cannot key a WeakKeyDictionary
_COPIES: dict = {}


def rearranged(weight: torch.Tensor, name: str, build: Callable[[torch.Tensor], Any], *settings) -> Any:
    """``build(weight)``, reused while ``weight`` and ``settings`` are unchanged.

    A change is seen through the tensor's version counter (in-place updates, ``load_state_dict``),
    its storage, dtype, shape and device. Inference tensors have no version counter: never kept.
    """
    # built from a detached tensor: a copy that is a view (a 1x1 conv's GEMM matrix) then holds the
    # storage, not the parameter, so the weak reference below still sees the parameter die
    if weight.is_inference():
        return build(weight.detach())
    version = (weight._version, weight.data_ptr(), weight.dtype, weight.shape, weight.device, settings)
    slot = (id(weight), name)
    kept = _COPIES.get(slot)
    if kept is not None and kept[0]() is weight and kept[1] == version:
        return kept[2]
    copy = build(weight.detach())
    _COPIES[slot] = (weakref.ref(weight, lambda _: _COPIES.pop(slot, None)), version, copy)
    return copy
