"""Low-rank factorisation of every conv by a truncated SVD of its weights, data-free, no fine-tuning.

A ``k x k`` conv with weights ``W`` (``C_out x C_in k^2`` as a matrix) becomes a ``k x k`` conv from
``C_in`` to ``r`` channels (weights ``V_r^T``, with the original stride, padding and dilation) and a
1x1 conv from ``r`` to ``C_out`` (weights ``W V_r``, with the original bias): the rows of ``W``
projected onto ``r`` directions of its input space. Convolution is linear in the kernel, so at
full rank (``min(C_out, C_in k^2)``) this is the original conv. The directions are the leading right
singular vectors of ``D W`` (a truncated SVD), ``D`` the gains ``|gamma| / sqrt(var + eps)`` of the
BN that follows: the truncation then loses least where the network reads it, after the BN (``D =
I``: the plain SVD). No BN statistic is changed.

Per-layer rule: one uniform FLOPs ratio. Every conv but the stem (:func:`~haste.baselines.structure.
factorisable_convs`) takes the largest rank whose two convs cost at most ``1 - ratio`` of its dense
FLOPs, ``r = floor((1 - ratio) C_out C_in k^2 / (C_in k^2 + C_out))`` (at least 1), and stays dense
where that rank is its full rank or more; the ratio is the smallest at which the whole model's
FLOPs reduction reaches the target.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .flops import Call, conv_flops, fvcore_flops, module_calls, module_flops, smallest_ratio
from .record import Compression, Factorised
from .structure import factorisable_convs, following_norms, set_submodule, submodule

METHOD = "lowrank"
RULE = (
    "uniform FLOPs ratio: every conv but the stem takes the largest rank costing at most (1 - ratio) "
    "of its FLOPs, and stays dense where that is its full rank"
)


def full_rank(conv: nn.Conv2d) -> int:
    return min(conv.out_channels, conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1])


def output_gains(norm: nn.BatchNorm2d) -> torch.Tensor:
    """``|gamma| / sqrt(var + eps)``: how much the BN scales each of its input channels."""
    if norm.running_var is None:
        raise ValueError("a BatchNorm2d without stored statistics has no fixed gains")
    gains = (norm.running_var.double() + norm.eps).rsqrt()
    return gains * norm.weight.double().abs() if norm.weight is not None else gains


def leading_directions(matrix: torch.Tensor, rank: int) -> torch.Tensor:
    """The ``rank`` leading right singular vectors of ``matrix`` ``[M, N]``, as orthonormal rows
    ``[rank, N]`` (a basis of their span: the order and signs within it are of no consequence here).

    From the eigenvectors of the smaller Gram matrix: several times faster than an SVD of a wide
    matrix, and exact enough in float64 for the directions kept.
    """
    rows, columns = matrix.shape
    if columns <= rows:
        return torch.linalg.eigh(matrix.T @ matrix).eigenvectors[:, -rank:].flip(1).T
    left = torch.linalg.eigh(matrix @ matrix.T).eigenvectors[:, -rank:].flip(1)  # [M, rank]
    # M^T u_i = s_i v_i: the leading left vectors mapped back span the leading right ones
    return torch.linalg.qr(matrix.T @ left).Q.T


@torch.no_grad()
def factorise(conv: nn.Conv2d, rank: int, gains: torch.Tensor | None = None) -> nn.Sequential:
    """``conv`` as a ``k x k`` conv to ``rank`` channels then a 1x1 conv, from the leading right
    singular vectors of its weights with output channel ``i`` scaled by ``gains[i]`` (None: 1)."""
    if conv.groups != 1 or conv.padding_mode != "zeros":
        raise ValueError("only ungrouped, zero-padded convolutions are factorised")
    if not 1 <= rank <= full_rank(conv):
        raise ValueError(f"rank {rank} outside [1, {full_rank(conv)}]")
    weight = conv.weight.double().flatten(1)  # [C_out, C_in k_h k_w]
    scaled = weight if gains is None else weight * gains[:, None]
    basis = leading_directions(scaled, rank)  # [rank, C_in k_h k_w]
    # the first conv is the original's copy (stride, padding, dilation, device, dtype kept) with
    # new weights and no bias
    first = copy.deepcopy(conv)
    first.out_channels = rank
    first.weight = nn.Parameter(basis.view(rank, *conv.weight.shape[1:]).to(conv.weight))
    first.bias = None
    second = nn.Conv2d(rank, conv.out_channels, 1, bias=conv.bias is not None)
    second = second.to(conv.weight).train(conv.training)
    second.weight.copy_((weight @ basis.T)[:, :, None, None])
    if conv.bias is not None and second.bias is not None:
        second.bias.copy_(conv.bias)
    return nn.Sequential(first, second)


def factorised_flops(conv: nn.Conv2d, call: Call, rank: int) -> int:
    """fvcore's count of :func:`factorise`'s two convs for this call of ``conv``."""
    outputs = math.prod(call.output_shape[2:])
    kernel_area = conv.kernel_size[0] * conv.kernel_size[1]
    return conv_flops(conv.in_channels, rank, kernel_area, outputs) + conv_flops(
        rank, conv.out_channels, 1, outputs
    )


def rank_at(conv: nn.Conv2d, ratio: float) -> int | None:
    """The rule's rank for ``conv`` at ``ratio``; None where it stays dense."""
    if ratio <= 0:
        return None
    inner = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    rank = max(1, math.floor((1 - ratio) * conv.out_channels * inner / (inner + conv.out_channels)))
    return rank if rank < full_rank(conv) else None


def apply_ranks(
    model: nn.Module, ranks: dict[str, int], input_shape: tuple[int, ...] = (3, 32, 32), weighted: bool = True
) -> tuple[nn.Module, list[Factorised], int]:
    """A copy of ``model`` with each conv of ``ranks`` factorised at its rank; the per-layer records
    and the copy's FLOPs per image (fvcore's count of ``model`` less what the factorisations save)."""
    calls = module_calls(model, input_shape)
    norms = following_norms(model)
    compressed = copy.deepcopy(model)
    flops = fvcore_flops(model, input_shape)
    layers = []
    for name, rank in ranks.items():
        conv = submodule(model, name, nn.Conv2d)
        norm = submodule(model, norms[name], nn.BatchNorm2d) if weighted and name in norms else None
        gains = None if norm is None else output_gains(norm)
        set_submodule(compressed, name, factorise(conv, rank, gains))
        before = sum(module_flops(conv, call) for call in calls[name])
        after = sum(factorised_flops(conv, call, rank) for call in calls[name])
        flops -= before - after
        layers.append(Factorised(name, rank, full_rank(conv), before, after))
    return compressed, layers, flops


def compress(
    model: nn.Module, target: float, input_shape: tuple[int, ...] = (3, 32, 32), weighted: bool = True
) -> tuple[nn.Module, Compression]:
    """A factorised copy of ``model`` (left unchanged) whose whole-model FLOPs fall by ``target``
    percent or a little more, and the record of the ranks kept. ``weighted``: SVD of the BN-scaled
    weights (False: of the weights as they are)."""
    calls = module_calls(model, input_shape)
    flops_dense = fvcore_flops(model, input_shape)
    convs = {name: submodule(model, name, nn.Conv2d) for name in factorisable_convs(model)}
    dense = {name: sum(module_flops(conv, call) for call in calls[name]) for name, conv in convs.items()}

    def ranks_at(ratio: float) -> dict[str, int]:
        ranks = {name: rank_at(conv, ratio) for name, conv in convs.items()}
        return {name: rank for name, rank in ranks.items() if rank is not None}

    def reduction_at(ratio: float) -> float:
        saved = sum(
            dense[name] - sum(factorised_flops(convs[name], call, rank) for call in calls[name])
            for name, rank in ranks_at(ratio).items()
        )
        return 100.0 * saved / flops_dense

    ratio = smallest_ratio(reduction_at, target)
    compressed, layers, flops = apply_ranks(model, ranks_at(ratio), input_shape, weighted)
    return compressed, Compression(METHOD, target, RULE, ratio, flops_dense, flops, layers)
