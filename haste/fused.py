"""CPU fast path of the GEMM path: one numba kernel from the padded input to merged im2col columns.

The torch version (:func:`haste.functional._merged_columns`) runs about ten whole-tensor passes
(window gather, projections, comparisons, sort, scatters, gathers); they are memory-bound and took
more time than the GEMM they feed. Here every tile is done in one go while its window sits in cache:
copy the window, project its channels on the hyperplanes, pack the codes, number the distinct codes
through a small hash table, average every bucket, and write the merged values straight into the
tile's im2col columns. Parallel over blocks of tiles, with torch's thread count. Non-finite values
are treated as in :mod:`haste.hashing` (their channels unmerged, 0 in the others' mean).
The codes are the same as the torch version's up to float rounding of projections within ~1e-7 of
zero (summation order differs); tests compare both with a per-patch loop.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch

try:  # numba is a dependency; without it the torch version runs
    import numba
except ImportError:  # pragma: no cover
    numba = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from .tiling import Tiling


def available(x: torch.Tensor, needs_grad: bool) -> bool:
    """Whether the fused kernel can run this input: CPU, float32/64, no gradient, numba installed."""
    return (
        numba is not None
        and x.device.type == "cpu"
        and not needs_grad
        and x.dtype in (torch.float32, torch.float64)
    )


@contextlib.contextmanager
def torch_threads() -> Iterator[int]:
    """Run numba's parallel loops on as many threads as torch uses (the kernels sit between torch ops).

    Yields that count. numba's OpenMP layer starts its thread pool at the first parallel kernel, and
    that resets the thread count torch reports (1 became 2), which would silently override a
    ``torch.set_num_threads`` for the rest of the process; torch's count is restored on exit.
    """
    count = torch.get_num_threads()
    threads = max(1, min(count, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    numba.set_num_threads(threads)
    try:
        yield threads
    finally:
        if torch.get_num_threads() != count:
            torch.set_num_threads(count)


def merged_columns(
    padded: torch.Tensor, tiling: Tiling, hyperplanes: torch.Tensor, centre: bool, columns: torch.Tensor
) -> torch.Tensor:
    """Fill ``columns`` ``[N * H_out * W_out, kh * kw * C]`` from ``padded`` ``[N, H_p, W_p, C]``.

    ``padded`` is :func:`haste.functional.pad_to_tiles`'s output. Returns the bucket count of every
    tile, ``[N, tiles]``.
    """
    n = padded.shape[0]
    (tiles_h, tiles_w), (win_h, win_w) = tiling.tiles, tiling.window
    num_buckets = torch.empty(n * tiles_h * tiles_w, dtype=torch.int64)
    with torch_threads() as threads:
        _fill_columns(
            padded.numpy(),
            hyperplanes.to(padded.dtype).contiguous().numpy(),
            centre,
            tiles_h,
            tiles_w,
            tiling.patch_size,
            tiling.stride[0],
            tiling.stride[1],
            win_h,
            win_w,
            tiling.kernel_size[0],
            tiling.kernel_size[1],
            tiling.out_size[0],
            tiling.out_size[1],
            columns.numpy(),
            num_buckets.numpy(),
            8 * threads,
        )
    return num_buckets.view(n, -1)


if numba is not None:

    @numba.njit(cache=True)
    def scratch(pixels, channels, num_planes, dtype):
        """Buffers of :func:`tile_buckets` for one tile at a time (allocate once, reuse per tile)."""
        slots = 4
        while slots < 2 * channels:
            slots *= 2
        return (
            np.empty((pixels, channels), dtype=dtype),  # window
            np.empty((num_planes, channels), dtype=dtype),  # projections
            np.empty(pixels, dtype=dtype),  # per-pixel channel sums
            np.empty(channels, dtype=np.int64),  # codes
            np.empty(channels, dtype=np.int64),  # bucket id of every channel
            np.empty(channels, dtype=dtype),  # channels per bucket
            np.empty(slots, dtype=np.int64),  # hash table: bucket id of a code, -1 where empty
            np.empty(slots, dtype=np.int64),
        )  # hash table: a channel holding that code

    @numba.njit(inline="always", cache=True)
    def tile_buckets(
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
        table,
        table_owner,
    ):
        """Hash one tile: copy its window from ``padded`` ``[N, H_p, W_p, C]`` into ``window``
        ``[pixels, C]``, fill ``ids`` (bucket of every channel, numbered by first appearance) and
        ``counts`` (channels per bucket). Returns the number of buckets.

        A channel with a NaN or an infinity in the window gets a bucket of its own, and the other
        channels' codes are those they would have if that value were 0: found from the per-pixel
        channel sums, so finite windows pay one check per pixel."""
        pixels, num_planes = planes.shape
        channels = window.shape[1]
        for a in range(win_h):
            for b in range(win_w):
                target, source = window[a * win_w + b], padded[image, top + a, left + b]
                for c in range(channels):
                    target[c] = source[c]
        # projections [L, C]; centring folded in: (x - mean) . R = x . R - mean . R
        for plane in range(num_planes):
            target = projections[plane]
            for c in range(channels):
                target[c] = 0.0
        for p in range(pixels):
            for plane in range(num_planes):
                weight = planes[p, plane]
                if weight != 0:
                    target, source = projections[plane], window[p]
                    for c in range(channels):
                        target[c] += weight * source[c]
        finite = True
        for p in range(pixels):
            pixel_sums[p] = window[p].sum()
            finite = finite and math.isfinite(pixel_sums[p])
        for c in range(channels):
            ids[c] = 0  # -1: the channel holds a non-finite value
        if not finite:
            for p in range(pixels):
                total = 0.0
                for c in range(channels):
                    value = window[p, c]
                    if math.isfinite(value):
                        total += value
                    else:
                        ids[c] = -1
                pixel_sums[p] = total
        if centre:
            for plane in range(num_planes):
                shift = 0.0
                for p in range(pixels):
                    shift += planes[p, plane] * pixel_sums[p]
                shift /= channels
                target = projections[plane]
                for c in range(channels):
                    target[c] -= shift
        for c in range(channels):
            codes[c] = 0
        for plane in range(num_planes):
            bit = np.int64(1) << plane
            row = projections[plane]
            for c in range(channels):
                if row[c] > 0:
                    codes[c] += bit
        # bucket ids by first appearance of each code, through an open-addressing hash table: O(C),
        # where a sort of the codes took a fifth of the kernel's time
        for slot in range(table.shape[0]):
            table[slot] = -1
        mask = table.shape[0] - 1
        buckets = 0
        for c in range(channels):
            if ids[c] < 0:  # non-finite: a bucket of its own
                ids[c] = buckets
                buckets += 1
                continue
            mixed = (codes[c] ^ (codes[c] >> 17)) * 0x9E3779B1  # high bits mixed into the low ones
            slot = (mixed ^ (mixed >> 29)) & mask
            while table[slot] >= 0 and codes[table_owner[slot]] != codes[c]:
                slot = (slot + 1) & mask
            if table[slot] < 0:
                table[slot] = buckets
                table_owner[slot] = c
                buckets += 1
            ids[c] = table[slot]
        for bucket in range(buckets):
            counts[bucket] = 0.0
        for c in range(channels):
            counts[ids[c]] += 1.0
        return buckets

    @numba.njit(inline="always", cache=True)
    def _merge_tile(
        padded,
        planes,
        centre,
        tiles_w,
        patch,
        stride_h,
        stride_w,
        win_h,
        win_w,
        kh,
        kw,
        out_h,
        out_w,
        columns,
        num_buckets,
        image,
        tile,
        r,
        window,
        projections,
        merged,
        pixel_sums,
        codes,
        ids,
        sums,
        counts,
        table,
        table_owner,
    ):
        pixels = planes.shape[0]
        channels = window.shape[1]
        tile_row, tile_col = tile // tiles_w, tile % tiles_w
        top, left = tile_row * patch * stride_h, tile_col * patch * stride_w
        buckets = tile_buckets(
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
            table,
            table_owner,
        )
        # per pixel one scatter-add and one gather over the channels (a loop per bucket and pixel
        # was 4x slower: most buckets hold one or two channels)
        for p in range(pixels):
            source, target = window[p], merged[p]
            for bucket in range(buckets):
                sums[bucket] = 0.0
            for c in range(channels):
                sums[ids[c]] += source[c]
            for c in range(channels):
                target[c] = sums[ids[c]] / counts[ids[c]]
        num_buckets[r] = buckets
        # im2col columns of the tile's valid outputs, kernel offsets in (kh, kw) order, channels last
        valid_rows = min(patch, out_h - tile_row * patch)
        valid_cols = min(patch, out_w - tile_col * patch)
        for i in range(valid_rows):
            for j in range(valid_cols):
                out_row = (image * out_h + tile_row * patch + i) * out_w + tile_col * patch + j
                target = columns[out_row]
                for u in range(kh):
                    for v in range(kw):
                        source = merged[(i * stride_h + u) * win_w + j * stride_w + v]
                        offset = (u * kw + v) * channels
                        for c in range(channels):
                            target[offset + c] = source[c]

    @numba.njit(parallel=True, cache=True)
    def _fill_columns(
        padded,
        planes,
        centre,
        tiles_h,
        tiles_w,
        patch,
        stride_h,
        stride_w,
        win_h,
        win_w,
        kh,
        kw,
        out_h,
        out_w,
        columns,
        num_buckets,
        blocks,
    ):
        """Fills ``columns`` and ``num_buckets``; tiles are split into ``blocks`` parallel blocks, and
        each block allocates its buffers once."""
        images, _, _, channels = padded.shape
        pixels, num_planes = planes.shape
        tiles = tiles_h * tiles_w
        total = images * tiles
        blocks = min(total, blocks)
        for block in numba.prange(blocks):
            window, projections, pixel_sums, codes, ids, counts, table, table_owner = scratch(
                pixels, channels, num_planes, padded.dtype
            )
            merged = np.empty((pixels, channels), dtype=padded.dtype)
            sums = np.empty(channels, dtype=padded.dtype)
            for r in range(block * total // blocks, (block + 1) * total // blocks):
                _merge_tile(
                    padded,
                    planes,
                    centre,
                    tiles_w,
                    patch,
                    stride_h,
                    stride_w,
                    win_h,
                    win_w,
                    kh,
                    kw,
                    out_h,
                    out_w,
                    columns,
                    num_buckets,
                    r // tiles,
                    r % tiles,
                    r,
                    window,
                    projections,
                    merged,
                    pixel_sums,
                    codes,
                    ids,
                    sums,
                    counts,
                    table,
                    table_owner,
                )
