"""Compressed execution: every tile is convolved at its merged depth, as the paper describes it.

Per tile, the ``C_in`` channels fall into ``m`` buckets; the tile's inputs are averaged and its
filter slices summed per bucket, and the tile's outputs come from a convolution of depth ``m``.
The work is ``C_in * k^2 * C_out`` additions to merge the filters plus ``P_valid * m * k^2 * C_out``
multiply-adds, against the dense ``P_valid * C_in * k^2 * C_out``.

Two backends give the same outputs as :func:`haste.functional.haste_conv2d`:

* ``"numba"`` (CPU): two kernels. The first hashes every tile (the per-tile hashing of
  :mod:`haste.fused`), sorts its channels by bucket and writes the im2col columns of its bucket means.
  The second runs block of output channels by block: it keeps one cache-sized slab of the filters
  (:func:`filter_table`) while it goes through the tiles, and per bucket sums the members' filter
  slices (a lone channel's are used as they are) and multiplies them into the tile's outputs, so
  merged filters never travel through memory.
* ``"torch"`` (any device): tiles sorted by ``m`` and batched in groups padded to the group's
  largest ``m``; the merged filters are materialised by ``scatter_add``.

``"auto"`` takes numba for CPU tensors when numba is installed and no gradient is needed.
Half types run the torch backend in float32 (the output has the input's dtype).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from . import fused
from .functional import empty_batch, extract_windows, overflow_scale, pad_to_tiles, run_scaled
from .fused import numba  # None where numba is not installed: the torch backend still works
from .grouping import Grouping, fallback_notice, grouped, resolve
from .hashing import bucket_means
from .tiling import checked_tiling
from .weight_cache import rearranged

BACKENDS = ("auto", "numba", "torch")


def haste_conv2d_compressed(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int] | str,
    hyperplanes: torch.Tensor,
    patch_size: int,
    centre: bool = True,
    backend: str = "auto",
    grouping: str | Grouping = "lsh",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """HASTE convolution computed at the merged depth; arguments as :func:`~haste.functional.haste_conv2d`.

    The numba backend computes LSH only: ``"auto"`` runs any other ``grouping`` on the torch backend.

    Returns the output ``[N, C_out, H_out, W_out]`` (channels-last memory) and the bucket count of
    every tile ``[N, tiles]``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    tiling = checked_tiling(x, weight, stride, padding, hyperplanes, patch_size)
    stride, padding = tiling.stride, tiling.padding
    if x.shape[0] == 0:
        return empty_batch(x, weight, None if bias is None else bias.to(x.dtype), stride, padding, tiling)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    numba_fits = fused.available(x, needs_grad)
    scheme = resolve(grouping)
    if backend == "numba":
        if numba is None:
            raise ImportError("backend='numba' needs numba: pip install numba")
        if not numba_fits:
            raise ValueError("backend='numba' runs float32/float64 CPU tensors without gradients only")
        if not scheme.numba:
            raise ValueError(f"backend='numba' computes LSH only, not grouping {scheme.name!r}")
    if backend == "auto" and numba_fits and not scheme.numba:
        fallback_notice(scheme)
    use_numba = backend == "numba" or (backend == "auto" and numba_fits and scheme.numba)
    arguments = (stride, padding, hyperplanes, patch_size, centre, use_numba, scheme, seed)
    return run_scaled(_compressed, overflow_scale(x, hyperplanes), x, weight, bias, *arguments)


def _compressed(x, weight, bias, stride, padding, hyperplanes, patch_size, centre, use_numba, scheme, seed):
    if use_numba:
        return _compressed_numba(x, weight, bias, stride, padding, hyperplanes, patch_size, centre)
    grouping = (scheme, seed)
    if x.dtype not in (torch.float32, torch.float64):  # merged filters summed in bfloat16 lose too much
        bias = None if bias is None else bias.float()
        out, num_buckets = _compressed_torch(
            x.float(), weight.float(), bias, stride, padding, hyperplanes, patch_size, centre, *grouping
        )
        return out.to(x.dtype), num_buckets
    weight = weight.to(x.dtype)
    bias = None if bias is None else bias.to(x.dtype)
    return _compressed_torch(x, weight, bias, stride, padding, hyperplanes, patch_size, centre, *grouping)


def _grouped_windows(x, weight, stride, padding, hyperplanes, patch_size, centre, scheme, seed):
    tiling = checked_tiling(x, weight, stride, padding, hyperplanes, patch_size)
    windows = extract_windows(x, tiling)  # [N, T, pixels, C]
    ids, num_buckets = grouped(scheme, windows, hyperplanes, centre, seed)
    n, tiles, pixels, channels = windows.shape
    return tiling, windows.view(n * tiles, pixels, channels), ids, num_buckets


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
    tiling = checked_tiling(x, weight, stride, padding, hyperplanes, patch_size)
    (tiles_h, tiles_w), (win_h, win_w), (out_h, out_w) = tiling.tiles, tiling.window, tiling.out_size
    table = filter_table(weight, x.dtype)  # the products run in the input's dtype
    blocks = table.shape[0]
    rows, cols = (offsets.numpy() for offsets in _kernel_offsets(tiling, patch_size))
    out = x.new_empty(n, out_h, out_w, c_out)
    shift = (bias.detach() if bias is not None else x.new_zeros(c_out)).to(x.dtype).contiguous().numpy()
    with fused.torch_threads() as threads:
        padded = pad_to_tiles(x, tiling).detach().numpy()
        planes = hyperplanes.to(x.dtype).contiguous().numpy()
        tiles = tiles_h * tiles_w
        num_buckets = torch.empty(n * tiles, dtype=torch.int64)
        columns_per_bucket = patch_size * patch_size * kh * kw
        chunk = max(1, HASHED_CHUNK_FLOATS // (tiles * channels * (columns_per_bucket + 2)))  # images
        runs = max(1, math.ceil(8 * threads / blocks))  # tasks enough to balance the threads
        for image in range(0, n, chunk):
            images = min(chunk, n - image)
            members = np.empty((images * tiles, channels), dtype=np.int32)
            starts = np.empty((images * tiles, channels + 1), dtype=np.int32)
            columns = np.empty((images * tiles, channels, columns_per_bucket), dtype=padded.dtype)
            counts = num_buckets[image * tiles : (image + images) * tiles].numpy()
            _hash_tiles(
                padded,
                planes,
                centre,
                image,
                tiles,
                tiles_w,
                patch_size,
                stride[0],
                stride[1],
                win_h,
                win_w,
                rows,
                cols,
                members,
                starts,
                columns,
                counts,
            )
            _merged_products(
                table,
                members,
                starts,
                columns,
                counts,
                image,
                tiles,
                tiles_w,
                patch_size,
                c_out,
                runs,
                shift,
                out.numpy(),
            )
    return out.permute(0, 3, 1, 2), num_buckets.view(n, -1)


def filter_table(weight: torch.Tensor, dtype: torch.dtype | None = None) -> np.ndarray:
    """The weights as ``[blocks, C_in, k^2, width]`` in ``dtype`` (default the weight's): each block of
    ``width`` output channels (the last one zero-padded) one contiguous, cache-sized slab. Kept per
    weight tensor (a copy of the weights) until the tensor changes or dies: rebuilding it took a third
    of a 512-channel layer's time."""
    dtype = weight.dtype if dtype is None else dtype
    build = functools.partial(_build_filter_table, dtype=dtype)
    return rearranged(weight, "filter_table", build, TABLE_BLOCK_FLOATS, dtype)


def _build_filter_table(weight: torch.Tensor, dtype: torch.dtype | None = None) -> np.ndarray:
    c_out, c_in, kh, kw = weight.shape
    width = block_width(c_in * kh * kw, c_out)
    blocks = math.ceil(c_out / width)
    table = weight.detach().to(dtype or weight.dtype).permute(1, 2, 3, 0).reshape(c_in, kh * kw, c_out)
    table = torch.nn.functional.pad(table, (0, blocks * width - c_out))
    return table.view(c_in, kh * kw, blocks, width).permute(2, 0, 1, 3).contiguous().numpy()


# Images are hashed in chunks whose hashed tiles (channel order, im2col columns of the bucket means)
# take about this many floats (64 MB).
HASHED_CHUNK_FLOATS = 1 << 24
# Floats of one block of the filter table [C, k^2, width] (1 MB of float32). Every tile's merge
# rereads the block, so it should sit in a core's cache; wider blocks make longer, faster inner loops.
# Measured on a trained ResNet34's 512-channel 2x2 layer (batch 32, Xeon with 2 MB L2 per core):
# 1 << 17: 10.0 ms, 1 << 18 and 1 << 19: 5.3 ms, 1 << 20: 8.8 ms.
TABLE_BLOCK_FLOATS = 1 << 18


def block_width(rows: int, c_out: int) -> int:
    """Output channels per block: a ``rows x width`` slab of the filter table takes at most
    TABLE_BLOCK_FLOATS; a multiple of 16 (one AVX-512 register of float32), at least 16, at most
    ``c_out``."""
    return min(c_out, max(16, TABLE_BLOCK_FLOATS // rows // 16 * 16))


# fastmath without the no-NaN / no-Inf assumptions: the non-finite checks of the hashing must stay
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

if numba is not None:

    @numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
    def _hash_tiles(
        padded,
        planes,
        centre,
        first_image,
        tiles,
        tiles_w,
        patch,
        stride_h,
        stride_w,
        win_h,
        win_w,
        rows,
        cols,
        members,
        starts,
        columns,
        num_buckets,
    ):
        """Hash the tiles of images ``first_image, ...`` (``tiles`` per image). Tile ``r`` gets its
        channels grouped by bucket (bucket ``b`` holds ``members[r, starts[r, b]:starts[r, b + 1]]``),
        the im2col columns of its bucket means ``columns[r, b, position * k^2 + q]`` and its bucket
        count ``num_buckets[r]``. Parallel over runs of tiles, each with its own scratch buffers."""
        channels = padded.shape[3]
        pixels, num_planes = planes.shape
        count = members.shape[0]
        runs = min(count, 64)
        per_run = (count + runs - 1) // runs
        for run in numba.prange(runs):
            window, projections, pixel_sums, codes, ids, counts, hash_table, owner = fused.scratch(
                pixels, channels, num_planes, padded.dtype
            )
            mean = np.empty(pixels, dtype=padded.dtype)
            fill = np.empty(channels, dtype=np.int32)
            for r in range(run * per_run, min(count, (run + 1) * per_run)):
                image, tile = first_image + r // tiles, r % tiles
                top, left = (tile // tiles_w) * patch * stride_h, (tile % tiles_w) * patch * stride_w
                buckets = fused.tile_buckets(
                    padded,
                    planes,
                    centre,
                    image,
                    top,
                    left,
                    win_h,
                    win_w,
                    window,
                    projections,
                    pixel_sums,
                    codes,
                    ids,
                    counts,
                    hash_table,
                    owner,
                )
                num_buckets[r] = buckets
                _group_tile(
                    window,
                    ids,
                    counts,
                    buckets,
                    patch,
                    win_w,
                    rows,
                    cols,
                    mean,
                    fill,
                    starts[r],
                    members[r],
                    columns[r],
                )

    @numba.njit(inline="always", cache=True)
    def _group_tile(
        window, ids, counts, buckets, patch, win_w, rows, cols, mean, fill, bounds, order, merged
    ):
        """Sort one tile's channels by bucket (a counting sort) and write its buckets' im2col columns."""
        channels, pixels, k2 = window.shape[1], window.shape[0], rows.shape[1]
        for bucket in range(buckets + 1):
            bounds[bucket] = 0
        for c in range(channels):
            bounds[ids[c] + 1] += 1
        for bucket in range(buckets):
            bounds[bucket + 1] += bounds[bucket]
        fill[:buckets] = bounds[:buckets]
        for c in range(channels):
            order[fill[ids[c]]] = c
            fill[ids[c]] += 1
        for bucket in range(buckets):
            for p in range(pixels):
                mean[p] = 0.0
            for j in range(bounds[bucket], bounds[bucket + 1]):
                c = order[j]
                for p in range(pixels):
                    mean[p] += window[p, c]
            scale = 1.0 / counts[bucket]
            target = merged[bucket]
            for position in range(patch * patch):
                i, jj = position // patch, position % patch
                for q in range(k2):
                    target[position * k2 + q] = mean[rows[i, q] * win_w + cols[jj, q]] * scale

    @numba.njit(parallel=True, fastmath=FASTMATH, cache=True)
    def _merged_products(
        table,
        members,
        starts,
        columns,
        num_buckets,
        first_image,
        tiles,
        tiles_w,
        patch,
        c_out,
        runs,
        bias,
        out,
    ):
        """Outputs of every hashed tile, block of output channels by block: per bucket, sum the
        members' filter slices (``table [blocks, C, k^2, width]``) and multiply them into the tile.

        Parallel over (block, run of tiles): a task keeps one slab of the table in cache for all its
        tiles, where tile-by-tile work would stream the whole table from memory for every tile.
        """
        blocks, k2, width = table.shape[0], table.shape[2], table.shape[3]
        out_h, out_w = out.shape[1], out.shape[2]
        count = members.shape[0]
        per_run = (count + runs - 1) // runs
        for task in numba.prange(blocks * runs):
            block, run = task // runs, task % runs
            first = block * width
            valid_width = min(c_out, first + width) - first
            slab = table[block]
            flat_slab = slab.reshape(slab.shape[0], k2 * width)
            acc = np.empty((patch * patch, width), dtype=out.dtype)
            merged_filter = np.empty((k2, width), dtype=out.dtype)
            for r in range(run * per_run, min(count, (run + 1) * per_run)):
                image, tile = first_image + r // tiles, r % tiles
                top, left = (tile // tiles_w) * patch, (tile % tiles_w) * patch
                valid_rows, valid_cols = min(patch, out_h - top), min(patch, out_w - left)
                bounds, order, merged = starts[r], members[r], columns[r]
                acc[:] = 0.0
                for bucket in range(num_buckets[r]):
                    begin, end = bounds[bucket], bounds[bucket + 1]
                    if end - begin == 1:  # a lone channel: its own filter slices, nothing to sum
                        filters = slab[order[begin]]
                    else:
                        filters = merged_filter
                        flat = merged_filter.reshape(k2 * width)
                        source = flat_slab[order[begin]]
                        for f in range(k2 * width):
                            flat[f] = source[f]
                        for j in range(begin + 1, end):  # one long loop per member: it vectorises
                            source = flat_slab[order[j]]
                            for f in range(k2 * width):
                                flat[f] += source[f]
                    inputs = merged[bucket]
                    for i in range(valid_rows):
                        for jj in range(valid_cols):
                            position = i * patch + jj
                            row = acc[position]
                            for q in range(k2):
                                value, weights = inputs[position * k2 + q], filters[q]
                                for o in range(width):
                                    row[o] += value * weights[o]
                for i in range(valid_rows):
                    for jj in range(valid_cols):
                        row, target = acc[i * patch + jj], out[image, top + i, left + jj]
                        for o in range(valid_width):
                            target[first + o] = row[o] + bias[first + o]


# torch backend: tiles are processed in groups whose merged filters take about this many floats.
COMPRESSED_GROUP_FLOATS = 1 << 20
# On a GPU every group costs a host sync (its largest m) and a few launches: far larger groups.
ACCELERATOR_GROUP_FLOATS = 1 << 26


def _compressed_torch(x, weight, bias, stride, padding, hyperplanes, patch_size, centre, scheme, seed):
    n, channels = x.shape[:2]
    c_out, c_in, kh, kw = weight.shape
    grouping = (centre, scheme, seed)
    tiling, windows, ids, num_buckets = _grouped_windows(
        x, weight, stride, padding, hyperplanes, patch_size, *grouping
    )
    (tiles_h, tiles_w), win_w, (out_h, out_w) = tiling.tiles, tiling.window[1], tiling.out_size
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
    group_floats = COMPRESSED_GROUP_FLOATS if x.device.type == "cpu" else ACCELERATOR_GROUP_FLOATS
    group = max(1, group_floats // (kh * kw * c_in * c_out))
    while start < len(order):
        members = order[start : start + group]
        depth = int(num_buckets[members].max())
        group_ids = ids[members]  # [G, C_in]
        merged_filters = x.new_zeros(len(members), kh * kw, depth, c_out)
        merged_filters.scatter_add_(
            2,
            group_ids[:, None, :, None].expand(-1, kh * kw, -1, c_out),
            filters.unsqueeze(0).expand(len(members), -1, -1, -1),
        )  # sum of each bucket's slices
        merged_inputs = means[members, :, :depth]  # [G, pixels, m]
        columns = merged_inputs[:, local_index].reshape(len(members), patch_size * patch_size, -1)
        out_tiles[members] = columns @ merged_filters.view(len(members), kh * kw * depth, c_out)
        start += len(members)
    if bias is not None:
        out_tiles += bias
    out = out_tiles.view(n, tiles_h, tiles_w, patch_size, patch_size, c_out)
    out = out.permute(0, 1, 3, 2, 4, 5).reshape(n, tiles_h * patch_size, tiles_w * patch_size, c_out)
    return out[:, :out_h, :out_w].permute(0, 3, 1, 2), num_buckets.view(n, -1)
