"""Rearranged copies of a layer's weight, kept while the weight's values stay the same.

Both execution paths multiply by the weight in another layout than ``nn.Conv2d`` stores it (the
GEMM matrix of the GEMM path, the filter table of the compressed path's kernel). Rebuilt on every
call, the GEMM matrix made the GEMM path take 4.46x the dense time on a CIFAR-10 ResNet34 at batch 1
on a 2-core CPU; kept, 1.45x (``results/speed/models.csv``).

A kept copy is used only while the weight is bit for bit the one it was built from. Version
counters cannot tell: ``weight.data.mul_(...)`` and ``weight.data.copy_(...)`` (EMA updates, pruning,
quantisation) change the values without bumping ``weight._version``, and ``weight.data`` hands out a
fresh counter on every access. So every use compares the weight's bytes with a snapshot taken when
the copy was built (``memcmp``: one contiguous pass over two copies of the weight). For the 32 HASTE
layers of a CIFAR-10 ResNet34 on a 2-core CPU that took 12.6 ms of CPU time where rebuilding the
GEMM matrices took 265 ms and ``torch.equal`` 60 ms (``benchmarks/weight_cache_check.py``). The
price is memory: the snapshot keeps a second copy of every weight that is used this way.
Only CPU tensors are kept: on an accelerator the comparison would wait for the device (a host
sync per layer), where rebuilding the copy is one fast kernel.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable
from typing import Any

import torch

# (id(weight), name) -> (weak reference, layout key, snapshot of the weight, copy); tensors cannot
# key a WeakKeyDictionary
_COPIES: dict = {}
_SAME_SIZE_INTEGERS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def rearranged(weight: torch.Tensor, name: str, build: Callable[[torch.Tensor], Any], *settings) -> Any:
    """``build(weight)``, reused while the values of ``weight`` and ``settings`` are unchanged.

    Any change is seen: in-place updates through ``weight.data`` or under ``no_grad``,
    ``load_state_dict``, ``copy_``, a new parameter in the layer, another dtype, shape or device.
    Inference tensors and tensors off the CPU are never kept.
    """
    # built from a detached tensor: a copy that is a view (a 1x1 conv's GEMM matrix) then holds the
    # storage, not the parameter, so the weak reference below still sees the parameter die
    values = weight.detach()
    if weight.is_inference() or weight.device.type != "cpu":
        return build(values)
    layout = (weight.dtype, weight.shape, settings)
    slot = (id(weight), name)
    kept = _COPIES.get(slot)
    if kept is not None and kept[0]() is weight and kept[1] == layout and same_bits(kept[2], values):
        return kept[3]
    copy = build(values)
    snapshot = values.clone(memory_format=torch.contiguous_format)
    _COPIES[slot] = (weakref.ref(weight, lambda _: _COPIES.pop(slot, None)), layout, snapshot, copy)
    return copy


def _memcmp():
    try:  # the C library's memcmp: the fastest comparison of two buffers
        function = ctypes.CDLL(None).memcmp
    except (OSError, AttributeError, TypeError):  # no C library to find (Windows): torch.equal
        return None
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return function


_MEMCMP = _memcmp()


def same_bits(snapshot: torch.Tensor, values: torch.Tensor) -> bool:
    """Bitwise equality (``torch.equal`` on floats would take -0.0 for 0.0 and never match a NaN)."""
    if _MEMCMP is not None and values.is_contiguous() and snapshot.is_contiguous():
        size = values.numel() * values.element_size()
        return _MEMCMP(snapshot.data_ptr(), values.data_ptr(), size) == 0
    integers = _SAME_SIZE_INTEGERS.get(values.element_size())
    if integers is None or values.is_complex():
        return torch.equal(snapshot, values)
    return torch.equal(snapshot.view(integers), values.view(integers))
