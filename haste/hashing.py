"""Locality-sensitive hashing of channels: pure tensor functions that know no model.

A channel of a patch is a vector of the patch's pixels. After centring across channels, it is
projected on ``L`` sparse ternary hyperplanes; bit ``l`` of its code is 1 where projection ``l`` is
strictly positive. Channels with equal codes share a bucket.

Non-finite values: a channel that holds a NaN or an infinity in a patch gets a bucket of its own
there (see :func:`isolate_channels`), and the other channels are hashed as if those values were 0,
so a non-finite input changes no output that ``nn.Conv2d`` leaves finite. Hashing always runs in
float32 or float64, whatever the input's dtype.
"""

from __future__ import annotations

import torch

from .settings import DEFAULTS, check_num_hyperplanes, check_projection, check_seed, check_sparsity


def draw_hyperplanes(
    window_pixels: int,
    num_hyperplanes: int,
    sparsity: float = DEFAULTS.sparsity,
    seed: int = 0,
    projection: str = DEFAULTS.projection,
) -> torch.Tensor:
    """Random hyperplanes ``[window_pixels, num_hyperplanes]`` (float32), reproducible from ``seed``.

    ``ternary``: entries +1 and -1 with probability ``(1 - sparsity) / 2`` each, 0 with probability
    ``sparsity`` (hashing then needs additions only). ``gaussian``: dense N(0, 1) entries (ablation).
    Hyperplanes are drawn one after another, so the first ``L`` columns are the same for every total
    ``L``: raising ``L`` only refines the buckets of a smaller ``L``.
    """
    num_hyperplanes = check_num_hyperplanes(num_hyperplanes)
    sparsity, projection = check_sparsity(sparsity), check_projection(projection)
    generator = torch.Generator().manual_seed(check_seed(seed))
    columns = []
    for _ in range(num_hyperplanes):
        if projection == "gaussian":
            columns.append(torch.randn(window_pixels, generator=generator))
            continue
        uniform = torch.rand(window_pixels, generator=generator)
        half = (1.0 - sparsity) / 2
        column = torch.zeros(window_pixels)
        column[uniform < half] = 1.0
        column[(uniform >= half) & (uniform < 2 * half)] = -1.0
        columns.append(column)
    return torch.stack(columns, dim=1)


def codes_from_projections(projections: torch.Tensor) -> torch.Tensor:
    """Codes ``sum_l [projection_l > 0] * 2**l`` over the last dim (the ``L`` projections).

    The codes are integers held in a float tensor, exact up to 24 bits in float32 and 53 in float64,
    because a matrix product is the fastest way to pack bits on every device.
    """
    num_hyperplanes = projections.shape[-1]
    dtype = torch.float32 if num_hyperplanes <= 24 else torch.float64
    powers = 2 ** torch.arange(num_hyperplanes, device=projections.device, dtype=dtype)
    return (projections > 0).to(dtype) @ powers


def isolate_channels(codes: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
    """``codes`` ``[..., channels]`` where ``finite``, else a code no other channel has (``-1 - c``).

    Codes are never negative, so a channel with a non-finite value is never merged with another.
    """
    channel = torch.arange(codes.shape[-1], device=codes.device, dtype=codes.dtype)
    return torch.where(finite, codes, -1 - channel)


def bucket_ids(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bucket of every channel and bucket count, for each row of ``codes`` ``[rows, channels]``.

    Returns ``(ids [rows, channels], counts [rows])``: ``ids`` are ``0 .. counts - 1``, numbered in
    increasing code order; channels share an id exactly when their codes are equal.
    """
    sorted_codes, order = codes.sort(dim=1)
    starts = torch.ones_like(sorted_codes, dtype=torch.bool)
    starts[:, 1:] = sorted_codes[:, 1:] != sorted_codes[:, :-1]
    sorted_ids = starts.long().cumsum(1) - 1
    ids = torch.empty_like(sorted_ids).scatter_(1, order, sorted_ids)
    return ids, sorted_ids[:, -1] + 1


def bucket_means(windows: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean of every bucket of ``windows`` ``[rows, pixels, channels]`` grouped by ``ids``.

    Returns ``[rows, pixels, channels]`` with bucket ``b``'s mean in column ``b`` and zeros in the
    columns of unused bucket ids. Channels last: the scatter runs along the contiguous dimension.
    """
    index = ids.unsqueeze(1).expand(-1, windows.shape[1], -1)
    sums = torch.zeros_like(windows).scatter_add_(2, index, windows)
    ones = torch.ones_like(ids, dtype=windows.dtype)
    counts = torch.zeros_like(ones).scatter_add_(1, ids, ones)  # channels per bucket
    return sums.div_(counts.clamp(min=1).unsqueeze(1))


def merge_channels(windows: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Replace every channel of ``windows`` ``[rows, pixels, channels]`` by the mean of its bucket.

    ``ids`` ``[rows, channels]`` are bucket ids in ``0 .. channels - 1`` (see :func:`bucket_ids`).
    Returns a tensor shaped like ``windows``.
    """
    index = ids.unsqueeze(1).expand(-1, windows.shape[1], -1)
    return bucket_means(windows, ids).gather(2, index)


def hash_windows(
    windows: torch.Tensor, hyperplanes: torch.Tensor, centre: bool = DEFAULTS.centre
) -> torch.Tensor:
    """Codes of every channel of every window ``[N, tiles, pixels, C]``: ``[N, tiles, C]``.

    Centring is applied to the projections, ``(X - mean) R = X R - mean R``, which equals projecting
    the centred windows without materialising them. Half types are hashed in float32. A channel with
    a non-finite value gets a code of its own, and counts as 0 in the others' mean.
    """
    windows = at_least_float32(windows)
    finite = torch.isfinite(windows)
    planes = hyperplanes.to(windows.dtype)
    projections = windows.transpose(-1, -2) @ planes  # [N, T, C, L]
    if centre:
        mean = windows.where(finite, 0).mean(dim=-1)
        projections = projections - (mean @ planes).unsqueeze(-2)
    return isolate_channels(codes_from_projections(projections), finite.all(dim=-2))


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    # bfloat16's 8-bit mantissa put projections near zero on the wrong side: codes off, outputs 0.2 off
    return x if x.dtype in (torch.float32, torch.float64) else x.float()
