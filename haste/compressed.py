"""Compressed execution: every tile is convolved at its merged depth, as the paper describes it.

Per tile, the ``C_in`` channels fall into ``m`` buckets; the tile's inputs are averaged and its
filter slices summed per bucket, and the tile's outputs come from a convolution of depth ``m``.
The work is ``C_in * k^2 * C_out`` additions to merge the filters plus ``P_valid * m * k^2 * C_out``
multiply-adds, against the dense ``P_valid * C_in * k^2 * C_out``.

Two backends give the same outputs as :func:`haste.functional.haste_conv2d`:

* ``"numba"`` (CPU): one fused kernel, parallel over (tile, block of output channels). It hashes
  the tile itself (the per-tile hashing of :mod:`haste.fused`), then for each bucket sums the filter
  slices into a small cache-resident buffer and immediately multiplies them into the tile's
  outputs, so merged filters never travel through memory.
* ``"torch"`` (any device): tiles sorted by ``m`` and batched in groups padded to the group's
  largest ``m``; the merged filters are materialised by ``scatter_add``.

``"auto"`` takes numba for CPU tensors when numba is installed and no gradient is needed.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import fused
from .functional import _checked_tiling, extract_windows, hash_windows, pad_to_tiles
from .fused import numba  # None where numba is not installed: the torch backend still works
from .hashing import bucket_ids, bucket_means

BACKENDS = ("auto", "numba", "torch")
# Narrowest block of output channels a kernel task gets.
MIN_BLOCK = 64


def haste_conv2d_compressed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                            stride: tuple[int, int], padding: tuple[int, int], hyperplanes: torch.Tensor,
                            patch_size: int, centre: bool = True, backend: str = "auto",
                            ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """HASTE convolution computed at the merged depth; arguments as :func:`~haste.functional.haste_conv2d`.

    Returns the output ``[N, C_out, H_out, W_out]`` (channels-last memory) and the bucket count of
    every tile ``[N, tiles]``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    numba_fits = fused.available(x, needs_grad)
    if backend == "numba":
        if numba is None:
            raise ImportError("backend='numba' needs numba: pip install numba")
        if not numba_fits:
            raise ValueError("backend='numba' runs float32/float64 CPU tensors without gradients only")
    if backend == "numba" or (backend == "auto" and numba_fits):
        return _compressed_numba(x, weight, bias, stride, padding, hyperplanes, patch_size, centre)
    return _compressed_torch(x, weight, bias, stride, padding, hyperplanes, patch_size, centre)


def _hashed_windows(x, weight, stride, padding, hyperplanes, patch_size, centre):
    tiling = _checked_tiling(x, weight, stride, padding, hyperplanes, patch_size)
    windows = extract_windows(x, tiling)  # [N, T, pixels, C]
    codes = hash_windows(windows, hyperplanes, centre)
    n, tiles, pixels, channels = windows.shape
    return tiling, windows.view(n * tiles, pixels, channels), codes.view(n * tiles, channels)


def _kernel_offsets(tiling, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Window row / column read by output row / column ``i`` of a tile at kernel offset ``q``."""
    (kh, kw), (sh, sw) = tiling.kernel_size, tiling.stride
    u, v = torch.arange(kh).repeat_interleave(kw), torch.arange(kw).repeat(kh)  # q = u * kw + v
    rows = torch.arange(patch_size)[:, None] * sh + u[None, :]
    cols = torch.arange(patch_size)[:, None] * sw + v[None, :]
    return rows.to(torch.int64), cols.to(torch.int64)


def _compressed_numba(x, weight, bias, stride, padding, hyperplanes, patch_size, centre):
    n, channels = x.shape[:2]
    c_out, _, kh, kw = weight.shape
    tiling = _checked_tiling(x, weight, stride, padding, hyperplanes, patch_size)
    (tiles_h, tiles_w), (win_h, win_w), (out_h, out_w) = tiling.tiles, tiling.window, tiling.out_size
    table = weight.detach().permute(1, 2, 3, 0).reshape(channels, kh * kw, c_out).contiguous()
    rows, cols = _kernel_offsets(tiling, patch_size)
    out = x.new_empty(n, out_h, out_w, c_out)
    num_buckets = torch.empty(n * tiles_h * tiles_w, dtype=torch.int64)
    shift = bias.detach() if bias is not None else x.new_zeros(c_out)
    threads = fused.torch_threads()
    # Wide blocks of output channels run fastest (the inner loops run longer: 2.7x from 64 to 512
    # channels on a 512-channel layer); split only as far as needed to give every thread work.
    per_tile = min(math.ceil(4 * threads / num_buckets.numel()), math.ceil(c_out / MIN_BLOCK))
    block = math.ceil(c_out / per_tile)
    _tile_kernel(pad_to_tiles(x, tiling).detach().numpy(), hyperplanes.to(x.dtype).contiguous().numpy(),
                 centre, table.numpy(), rows.numpy(), cols.numpy(), tiles_h, tiles_w, patch_size,
                 stride[0], stride[1], win_h, win_w, block, shift.to(x.dtype).contiguous().numpy(),
                 out.numpy(), num_buckets.numpy())  # fmt: skip
    return out.permute(0, 3, 1, 2), num_buckets.view(n, -1)


if numba is not None:

    @numba.njit(parallel=True, fastmath=True, cache=True)
    def _tile_kernel(padded, planes, centre, table, rows, cols, tiles_h, tiles_w, patch, stride_h, stride_w,
                     win_h, win_w, block, bias, out, num_buckets):  # fmt: skip
        """Hash, merge and convolve every tile; writes ``out`` ``[N, H_out, W_out, C_out]``.

        ``padded [N, H_p, W_p, C]`` from :func:`~haste.functional.pad_to_tiles`,
        ``table [C, k^2, C_out]``, ``rows``/``cols [P, k^2]`` from :func:`_kernel_offsets`.
        Parallel over (tile, block of ``block`` output channels).
        """
        channels = padded.shape[3]
        pixels, num_planes = planes.shape
        k2, c_out = table.shape[1], table.shape[2]
        out_h, out_w = out.shape[1], out.shape[2]
        tiles = tiles_h * tiles_w
        blocks = (c_out + block - 1) // block
        for task in numba.prange(num_buckets.shape[0] * blocks):
            r, first = task // blocks, (task % blocks) * block
            width = min(c_out, first + block) - first
            image, tile = r // tiles, r % tiles
            tile_row, tile_col = tile // tiles_w, tile % tiles_w
            top, left = tile_row * patch, tile_col * patch
            window, projections, pixel_sums, codes, ids, counts, hash_table, owner = fused.scratch(
                pixels, channels, num_planes, padded.dtype)
            buckets = fused.tile_buckets(padded, planes, centre, image, top * stride_h, left * stride_w,
                                         win_h, win_w, window, projections, pixel_sums, codes, ids,
                                         counts, hash_table, owner)  # fmt: skip
            if first == 0:
                num_buckets[r] = buckets
            # channels grouped by bucket (a counting sort): bucket b holds members[starts[b]:starts[b + 1]]
            starts = np.zeros(buckets + 1, dtype=np.int64)
            for c in range(channels):
                starts[ids[c] + 1] += 1
            for bucket in range(buckets):
                starts[bucket + 1] += starts[bucket]
            fill = starts[:-1].copy()
            members = np.empty(channels, dtype=np.int64)
            for c in range(channels):
                members[fill[ids[c]]] = c
                fill[ids[c]] += 1
            valid_rows, valid_cols = min(patch, out_h - top), min(patch, out_w - left)
            acc = np.zeros((patch * patch, width), dtype=out.dtype)
            merged_filter = np.empty((k2, width), dtype=out.dtype)
            merged_input = np.empty(pixels, dtype=out.dtype)
            for bucket in range(buckets):
                merged_filter[:] = 0.0
                merged_input[:] = 0.0
                for j in range(starts[bucket], starts[bucket + 1]):
                    c = members[j]
                    for q in range(k2):  # 1-D row views: the loops vectorise (2x measured)
                        source, target = table[c, q, first : first + width], merged_filter[q]
                        for o in range(width):
                            target[o] += source[o]
                    for p in range(pixels):
                        merged_input[p] += window[p, c]
                scale = 1.0 / counts[bucket]
                for i in range(valid_rows):
                    for jj in range(valid_cols):
                        row = acc[i * patch + jj]
                        for q in range(k2):
                            value = merged_input[rows[i, q] * win_w + cols[jj, q]] * scale
                            weights = merged_filter[q]
                            for o in range(width):
                                row[o] += value * weights[o]
            for i in range(valid_rows):
                for jj in range(valid_cols):
                    for o in range(width):
                        out[image, top + i, left + jj, first + o] = acc[i * patch + jj, o] + bias[first + o]


# torch backend: tiles are processed in groups whose merged filters take about this many floats.
COMPRESSED_GROUP_FLOATS = 1 << 20


def _compressed_torch(x, weight, bias, stride, padding, hyperplanes, patch_size, centre):
    n, channels = x.shape[:2]
    c_out, c_in, kh, kw = weight.shape
    tiling, windows, codes = _hashed_windows(x, weight, stride, padding, hyperplanes, patch_size, centre)
    (tiles_h, tiles_w), win_w, (out_h, out_w) = tiling.tiles, tiling.window[1], tiling.out_size
    ids, num_buckets = bucket_ids(codes)
    means = bucket_means(windows, ids)  # merged inputs, zero-padded
    # im2col inside a tile: output pixel (i, j) and kernel offset (u, v) read window pixel
    # (i * sh + u, j * sw + v); the same for every tile
    rows = (torch.arange(patch_size) * stride[0])[:, None, None, None] + torch.arange(kh)[None, None, :, None]
    cols = (torch.arange(patch_size) * stride[1])[None, :, None, None] + torch.arange(kw)[None, None, None, :]
    local_index = (rows * win_w + cols).flatten().to(x.device)  # [P * P * kh * kw]
    filters = weight.permute(2, 3, 1, 0).reshape(kh * kw, c_in, c_out)  # [k^2, C_in, C_out]
    out_tiles = x.new_empty(windows.shape[0], patch_size * patch_size, c_out)
    order = num_buckets.argsort()
    start = 0
    group = max(1, COMPRESSED_GROUP_FLOATS // (kh * kw * c_in * c_out))
    while start < len(order):
        members = order[start : start + group]
        depth = int(num_buckets[members].max())
        group_ids = ids[members]  # [G, C_in]
        merged_filters = x.new_zeros(len(members), kh * kw, depth, c_out)
        merged_filters.scatter_add_(
            2, group_ids[:, None, :, None].expand(-1, kh * kw, -1, c_out),
            filters.unsqueeze(0).expand(len(members), -1, -1, -1))  # sum of each bucket's slices
        merged_inputs = means[members, :, :depth]  # [G, pixels, m]
        columns = merged_inputs[:, local_index].reshape(len(members), patch_size * patch_size, -1)
        out_tiles[members] = columns @ merged_filters.view(len(members), kh * kw * depth, c_out)
        start += len(members)
    if bias is not None:
        out_tiles += bias
    out = out_tiles.view(n, tiles_h, tiles_w, patch_size, patch_size, c_out)
    out = out.permute(0, 1, 3, 2, 4, 5).reshape(n, tiles_h * patch_size, tiles_w * patch_size, c_out)
    return out[:, :out_h, :out_w].permute(0, 3, 1, 2), num_buckets.view(n, -1)
