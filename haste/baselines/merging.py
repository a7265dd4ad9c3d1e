"""Filter merging: remove redundant filters and fold each into a kept, similar one (after Neuron
Merging, Kim et al., NeurIPS 2020), from the weights and stored BN statistics alone, no fine-tuning.

After its BN, filter ``j`` computes the affine function ``y_j = w_j . x + b_j`` of its input window
``x`` (the BN folded in: ``w_j = g_j weight_j``, ``b_j = beta_j + g_j (bias_j - mean_j)``, ``g_j =
gamma_j / sqrt(var_j + eps)``). Where ``y_j = s y_k`` with ``s >= 0``, ``relu(y_j) = s relu(y_k)``,
and max and average pooling keep the factor, so removing ``j`` and adding ``s`` times the next
layer's weights of input ``j`` to those of input ``k`` leaves the outputs as they were: a duplicate
filter, up to a positive scale, goes without loss. Otherwise the next layer reads ``s relu(y_k)``
for ``relu(y_j)``, off by at most ``|y_j - s y_k| <= ||a_j - s a_k|| ||(x, 1)||`` (ReLU is
1-Lipschitz; ``a_j = (w_j, b_j)``), which the next layer scales by at most the norm of its weights of
input ``j``. The input's norm is common to every filter of the layer, so within a layer

    cost_j = ||next layer's weights of input j|| * min_k ||a_j - s_jk a_k||,
    s_jk = max(0, a_j . a_k / ||a_k||^2)      (least squares, never negative)

ranks the filters without data. Greedy: the filter of least cost goes, merged into its best
partner (with ``s = 0`` it is only pruned); the partner's next-layer weights, now its own plus ``s``
times the removed filter's, set its own cost from then on, and later merges carry earlier ones
along. Neuron Merging chooses the filters by L1 norm and merges each into the most similar kept one;
choosing by the merge's error bound instead makes duplicates go first whatever their norm.

Chains are compressed in the order the model runs them, each on the weights the one before left (a
VGG conv is the next layer of one chain and the producer of the following). How many filters each
conv loses: :mod:`haste.baselines.pruning`.
"""

from __future__ import annotations

import torch
from torch import nn

from .pruning import compress_filters
from .record import Compression
from .structure import Chain, submodule

METHOD = "merging"


@torch.no_grad()
def folded_filters(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> torch.Tensor:
    """Per filter, ``a_j = (w_j, b_j)``: the conv's weights and bias with the BN folded in, float64
    ``[C_out, C_in * k_h * k_w + 1]``."""
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("a BatchNorm2d without stored statistics cannot be folded")
    gain = (norm.running_var.double() + norm.eps).rsqrt()
    shift = torch.zeros_like(gain)
    if norm.weight is not None and norm.bias is not None:
        gain = gain * norm.weight.double()
        shift = norm.bias.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(gain)
    shift = shift + gain * (bias - norm.running_mean.double())
    return torch.cat([conv.weight.double().flatten(1) * gain[:, None], shift[:, None]], dim=1)


def merge_factors(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every pair ``(j, k)`` of rows ``a``: ``s_jk = max(0, a_j . a_k / ||a_k||^2)`` (0 where
    ``a_k = 0``) and ``||a_j - s_jk a_k||``, each ``[C, C]``."""
    gram = vectors @ vectors.T
    square = gram.diagonal()
    factors = torch.where(square[None, :] > 0, gram / square[None, :].clamp(min=1e-300), 0.0).clamp(min=0)
    squared = square[:, None] - 2 * factors * gram + factors**2 * square[None, :]
    return factors, squared.clamp(min=0).sqrt()


@torch.no_grad()
def redundant_filters(original: nn.Module, compressed: nn.Module, chain: Chain, count: int):
    """Remove ``count`` filters of the chain's producer of ``compressed`` greedily by least merge
    cost, adding each one's next-layer weights into its partner's; returns what went where."""
    producer = submodule(compressed, chain.producer, nn.Conv2d)
    norm = submodule(compressed, chain.norm, nn.BatchNorm2d)
    weight = submodule(compressed, chain.consumer, nn.Module).weight
    assert isinstance(weight, torch.Tensor)
    factors, residuals = merge_factors(folded_filters(producer, norm))
    columns = weight.double().transpose(0, 1).flatten(1).clone()  # per input channel [C, O * k_h * k_w]
    column_norms = columns.norm(dim=1)
    channels = len(columns)
    alive = torch.ones(channels, dtype=torch.bool, device=weight.device)
    residuals.fill_diagonal_(float("inf"))  # a filter is no partner of itself
    removed, merged_into, scales = [], [], []
    for _ in range(count):  # count < channels: every alive filter has an alive partner
        partner_residual, partner = residuals.masked_fill(~alive[None, :], float("inf")).min(dim=1)
        cost = (column_norms * partner_residual).masked_fill(~alive, float("inf"))
        gone = int(cost.argmin())
        into = int(partner[gone])
        scale = float(factors[gone, into])
        if scale > 0:
            columns[into] += scale * columns[gone]
            column_norms[into] = columns[into].norm()
        alive[gone] = False
        removed.append(gone)
        merged_into.append(into if scale > 0 else -1)
        scales.append(scale)
    shape = (weight.shape[1], weight.shape[0], *weight.shape[2:])
    weight.copy_(columns.view(shape).transpose(0, 1))
    return removed, merged_into, scales


def compress(
    model: nn.Module, target: float, input_shape: tuple[int, ...] = (3, 32, 32)
) -> tuple[nn.Module, Compression]:
    """A merged copy of ``model`` (left unchanged) whose whole-model FLOPs fall by ``target`` percent
    or a little more, and the record of what was removed and where it went."""
    return compress_filters(model, target, METHOD, redundant_filters, input_shape)
