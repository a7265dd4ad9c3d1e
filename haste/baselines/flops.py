"""FLOPs of plain models: fvcore's whole-model count, and the same count module by module from shapes.

:func:`fvcore_flops` is the count a result row records: ``haste.report.dense_flops``, the call that
gives HASTE its dense baseline, so a static model and HASTE are counted by the same code (1
multiply-add = 1 FLOP, per image). A method finds the per-layer amounts that reach a FLOPs target
with :func:`module_flops` instead: fvcore's rule for each module type, applied to the shapes that
:func:`module_calls` records, with a channel count changed where the method changes it. That is
cheap enough to search over, and it is a count of its own: the tests compare it with fvcore
tracing the compressed model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..report import dense_flops

# leaf modules fvcore counts nothing for (ReLU, max-pooling, flatten and dropout are on its ignore list)
UNCOUNTED = (nn.ReLU, nn.MaxPool2d, nn.Dropout, nn.Identity, nn.Flatten)


def fvcore_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """fvcore's FLOPs of one image ``input_shape`` ``(C, H, W)`` through ``model``, whole model."""
    return int(dense_flops(model, input_shape)[""])


@dataclass(frozen=True)
class Call:
    """The input and output shapes of one call of a module, for one image (batch dimension 1)."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    def with_channels(self, inputs: int | None = None, outputs: int | None = None, dim: int = 1) -> Call:
        """This call with ``inputs`` / ``outputs`` channels in dimension ``dim`` (None: unchanged;
        ``dim=-1`` for a linear layer's features)."""

        def swap(shape: tuple[int, ...], value: int | None) -> tuple[int, ...]:
            if value is None:
                return shape
            at = dim % len(shape)
            return (*shape[:at], value, *shape[at + 1 :])

        return Call(swap(self.input_shape, inputs), swap(self.output_shape, outputs))


def module_calls(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, list[Call]]:
    """Every call of every leaf module of ``model`` on one zero image, by module name, in call order.

    Shapes only: the image is zeros, no data is read. A module called twice (torchvision's
    BasicBlock calls one ReLU after both of its convs) has two entries.
    """
    calls: dict[str, list[Call]] = {}
    hooks = []
    for name, module in model.named_modules():
        if next(module.children(), None) is None:

            def record(module, args, output, name=name):
                calls.setdefault(name, []).append(Call(tuple(args[0].shape), tuple(output.shape)))

            hooks.append(module.register_forward_hook(record))
    parameter = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=parameter.dtype, device=parameter.device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return calls


def conv_flops(in_channels: int, out_channels: int, kernel_area: int, outputs: int, groups: int = 1) -> int:
    """fvcore's count of a convolution: every weight once per output pixel (the bias is not counted)."""
    return out_channels * (in_channels // groups) * kernel_area * outputs


def module_flops(module: nn.Module, call: Call) -> int:
    """fvcore's FLOPs of one ``call`` of the leaf ``module`` in eval mode, from the call's shapes.

    The channel counts are the call's, not the module's, so that a call with fewer channels
    (:meth:`Call.with_channels`) gives the count of the module a method would leave there.
    """
    if isinstance(module, nn.Conv2d):
        kernel_area = module.kernel_size[0] * module.kernel_size[1]
        outputs = math.prod(call.output_shape[2:])
        return conv_flops(call.input_shape[1], call.output_shape[1], kernel_area, outputs, module.groups)
    if isinstance(module, nn.BatchNorm2d):  # fvcore's eval-mode batch norm: scale and shift
        return math.prod(call.input_shape) * (2 if module.affine else 1)
    if isinstance(module, nn.Linear):
        return math.prod(call.input_shape) * call.output_shape[-1]
    if isinstance(module, nn.AdaptiveAvgPool2d):  # one addition per input element
        return math.prod(call.input_shape)
    if isinstance(module, UNCOUNTED):
        return 0
    raise NotImplementedError(f"no FLOP rule for a {type(module).__name__}")


def smallest_ratio(reduction_at: Callable[[float], float], target: float, steps: int = 60) -> float:
    """The smallest per-layer ratio in ``[0, 1]`` at which ``reduction_at(ratio)`` (the whole
    model's FLOPs reduction in percent, non-decreasing in the ratio) reaches ``target``, by bisection.

    Per-layer amounts are whole channels or ranks, so the reduction is a staircase of the ratio and
    the one reached is the first step at or above the target.
    """
    if reduction_at(0.0) >= target:
        return 0.0
    most = reduction_at(1.0)
    if most < target:
        raise ValueError(f"a FLOPs reduction of {target:g}% is out of reach: this rule reaches {most:.2f}%")
    low, high = 0.0, 1.0  # reduction_at(low) < target <= reduction_at(high)
    for _ in range(steps):
        middle = (low + high) / 2
        if reduction_at(middle) >= target:
            high = middle
        else:
            low = middle
    return high
