"""HASTE convolution as a function of tensors: tiling, hashing, merging, convolving.

GEMM path (``execution="gemm"``): every channel of every patch window is replaced by the mean of its
bucket, and the window is convolved with the original filter. Because convolution is linear in the
input channels, ``sum_c W_c * mean_{B(c)} X == sum_B (sum_{c in B} W_c) * mean_B X``: exactly the
merged-depth convolution of the paper. It runs as one GEMM per layer (and chunk of images) with the
im2col columns of the merged windows (``[outputs, kh * kw * C]``, made for the valid output pixels
only). The columns come from the fused numba kernel of :mod:`haste.fused` for CPU inference in
float32 or float64, and from the torch ops below otherwise (gradients, GPU, half types, groupings
other than LSH: :mod:`haste.grouping`). Hashing and merging run in float32 at least; the GEMM in the
input's dtype.

Inputs near the dtype's maximum: hashing sums a window's values over channels (centring) and pixels
(projections), merging over a bucket's channels, and such sums of finite values can overflow where
``nn.Conv2d``'s do not. On the CPU such an input is run scaled by a power of two (which changes no
code, no bucket and no rounding) and the output scaled back; ordinary inputs are not touched. On
other devices finding out would wait for the device, so there the finite inputs must stay below
``finfo.max / (2 * C_in * window_pixels * max|hyperplanes|)`` (about 1e34 in float32 for a
512-channel 3x3 conv at P = 3).
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from . import fused
from .grouping import Grouping, fallback_notice, grouped, resolve
from .hashing import at_least_float32, merge_channels
from .tiling import Tiling, checked_tiling
from .weight_cache import rearranged


def pad_to_tiles(x: torch.Tensor, tiling: Tiling) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` zero-padded so every tile has a full window, channels last.

    Returns ``[N, H_padded, W_padded, C]``: the conv's padding plus filler zeros on the bottom and
    right (cropped where no tile reads). The filler leaves hashing and merging unchanged: a zero
    pixel stays zero after centring, projects to 0, and feeds only outputs that are cropped.
    Padding and the change to channels-last happen in one copy.
    """
    (tiles_h, tiles_w), (win_h, win_w) = tiling.tiles, tiling.window
    need_h = (tiles_h - 1) * tiling.patch_size * tiling.stride[0] + win_h
    need_w = (tiles_w - 1) * tiling.patch_size * tiling.stride[1] + win_w
    n, channels, height, width = x.shape
    pad_h, pad_w = tiling.padding
    padded = x.new_zeros(n, need_h, need_w, channels)
    rows, cols = min(height, need_h - pad_h), min(width, need_w - pad_w)
    padded[:, pad_h : pad_h + rows, pad_w : pad_w + cols] = x[:, :, :rows, :cols].permute(0, 2, 3, 1)
    return padded


@functools.lru_cache(maxsize=256)
def _gather_indices(tiling: Tiling) -> tuple[torch.Tensor, torch.Tensor]:
    """Index maps of a tiling, computed once per shape.

    ``window_index [tiles * window_pixels]``: position in the padded input (flattened H x W) of every
    pixel of every tile window. ``column_index [H_out * W_out * kh * kw]``: for every output pixel and
    kernel offset, the position in the stacked windows (``tile * window_pixels + pixel``) it reads.
    """
    (tiles_h, tiles_w), (win_h, win_w) = tiling.tiles, tiling.window
    (out_h, out_w), (kh, kw) = tiling.out_size, tiling.kernel_size
    (sh, sw), patch = tiling.stride, tiling.patch_size
    padded_w = (tiles_w - 1) * patch * sw + win_w
    tile_top = torch.arange(tiles_h) * patch * sh
    tile_left = torch.arange(tiles_w) * patch * sw
    rows = tile_top[:, None, None, None] + torch.arange(win_h)[None, None, :, None]
    cols = tile_left[None, :, None, None] + torch.arange(win_w)[None, None, None, :]
    window_index = (rows * padded_w + cols).flatten()
    y, x = torch.arange(out_h), torch.arange(out_w)
    tile = (y // patch)[:, None] * tiles_w + (x // patch)[None, :]  # [H_out, W_out]
    local_row = ((y % patch) * sh)[:, None, None, None] + torch.arange(kh)[None, None, :, None]
    local_col = ((x % patch) * sw)[None, :, None, None] + torch.arange(kw)[None, None, None, :]
    column_index = tile[:, :, None, None] * (win_h * win_w) + local_row * win_w + local_col
    return window_index, column_index.flatten()


def _batched(index: torch.Tensor, batch: int, stride: int) -> torch.Tensor:
    """``index`` repeated for every sample of a batch whose rows are ``stride`` apart."""
    offsets = torch.arange(batch, device=index.device) * stride
    return (offsets[:, None] + index[None, :]).flatten()


def extract_windows(x: torch.Tensor, tiling: Tiling) -> torch.Tensor:
    """Tile windows of ``x`` ``[N, C, H, W]``, channels last: ``[N, tiles, window_pixels, C]``."""
    n, channels = x.shape[:2]
    padded = pad_to_tiles(x, tiling).view(-1, channels)  # [N * pixels, C]
    window_index, _ = _gather_indices(tiling)
    # index_select on dim 0 copies whole channel rows: much faster than indexing dim 1
    windows = padded.index_select(0, _batched(window_index.to(x.device), n, padded.shape[0] // n))
    return windows.view(n, -1, tiling.window[0] * tiling.window[1], channels)


def overflow_scale(x: torch.Tensor, hyperplanes: torch.Tensor) -> float | None:
    """A power of two that brings ``x``'s finite values below where hashing and merging can overflow,
    or None where they cannot (every ordinary input, and every input off the CPU: see the module's
    docstring)."""
    if x.device.type != "cpu" or x.numel() == 0:
        return None
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32  # hashing's dtype
    pixels = max(1, hyperplanes.shape[0])
    plane_max = max(1.0, float(hyperplanes.detach().abs().amax())) if hyperplanes.numel() else 1.0
    # sums of at most C_in * pixels terms of size |x| * |hyperplane entry| (fused: the channel sums
    # of every pixel, projected); a factor of two for the projections subtracted from them
    limit = torch.finfo(dtype).max / (2.0 * x.shape[1] * pixels * plane_max)
    values = x.detach()
    peak = max(float(values.amax()), -float(values.amin()))  # NaN where x holds one
    if peak < limit:
        return None
    if not math.isfinite(peak):  # the largest finite value decides
        peak = float(values.abs().where(torch.isfinite(values), 0).amax())
        if peak < limit:
            return None
    return 2.0 ** -math.ceil(math.log2(peak / limit) + 1)  # a power of two: exact scaling


def run_scaled(function, scale: float | None, x, weight, bias, *args):
    """``function(x, weight, bias, *args)`` on ``x * scale``, its output scaled back: exact for a
    power of two (up to subnormals), and the intermediate sums stay finite."""
    if scale is None:
        return function(x, weight, bias, *args)
    out, num_buckets = function(x * scale, weight, None if bias is None else bias * scale, *args)
    return out / scale, num_buckets


# Images are processed in chunks whose tile windows take about this many bytes: the merging passes
# are memory-bound, and chunks that stay in cache (and below glibc's mmap threshold, so no fresh
# page faults per call) ran 1.3-2x faster than whole batches on a 2-core CPU.
CHUNK_BYTES = 4 << 20
# On a GPU the same passes are bound by kernel launches, not by cache: chunks of up to this many
# bytes of windows (whole batches of the benchmarks here) cost a dozen launches a layer, not a dozen
# per few images.
ACCELERATOR_CHUNK_BYTES = 512 << 20


def haste_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int] | str,
    hyperplanes: torch.Tensor,
    patch_size: int,
    centre: bool = True,
    grouping: str | Grouping = "lsh",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """HASTE convolution of ``x`` ``[N, C_in, H, W]`` with ``weight`` ``[C_out, C_in, kh, kw]``.

    ``hyperplanes``: ``[win_h * win_w, L]`` with ``win = (patch_size - 1) * stride + k``.
    ``grouping``: how channels fall into buckets, ``"lsh"`` (HASTE), ``"random"`` (a control, see
    :class:`haste.grouping.RandomGroups`) or a :class:`haste.grouping.Grouping` of your own; ``seed``
    is handed to it. The weight and bias may have another dtype than ``x``: the output has ``x``'s.
    ``stride`` and ``padding``: as ``F.conv2d`` takes them (an int or a pair; "valid", or "same" for
    odd kernels at stride 1). Returns the output ``[N, C_out, H_out, W_out]`` (channels-last memory)
    and the number of buckets of every tile ``[N, tiles_h * tiles_w]``.
    """
    tiling = checked_tiling(x, weight, stride, padding, hyperplanes, patch_size)
    arguments = (tiling, hyperplanes, centre, resolve(grouping), seed)
    return run_scaled(_haste_conv2d, overflow_scale(x, hyperplanes), x, weight, bias, *arguments)


def _haste_conv2d(x, weight, bias, tiling: Tiling, hyperplanes, centre, scheme: Grouping, seed: int):
    n, channels = x.shape[:2]
    c_out, c_in, kh, kw = weight.shape
    (win_h, win_w), (tiles_h, tiles_w), (out_h, out_w) = tiling.window, tiling.tiles, tiling.out_size
    bias = None if bias is None else bias.to(x.dtype)
    if n == 0:
        return empty_batch(x, weight, bias, tiling.stride, tiling.padding, tiling)
    image_bytes = tiles_h * tiles_w * win_h * win_w * channels * x.element_size()
    chunk = max(1, (CHUNK_BYTES if x.device.type == "cpu" else ACCELERATOR_CHUNK_BYTES) // image_bytes)
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    # ordered (kh, kw, c), as the im2col columns; a kept copy where no gradient flows through it
    if needs_grad:
        matrix = _gemm_matrix(weight, x.dtype)
    else:
        matrix = rearranged(weight, "gemm_matrix", functools.partial(_gemm_matrix, dtype=x.dtype), x.dtype)
    use_kernel = fused.available(x, needs_grad)
    if use_kernel and not scheme.numba:
        fallback_notice(scheme)
        use_kernel = False
    out = None if needs_grad else x.new_empty(n * out_h * out_w, c_out)
    outs, buckets = [], []
    if use_kernel:  # one buffer for every chunk's columns: fresh ones cost page faults (~15% of the kernel)
        column_buffer = x.new_empty(min(chunk, n) * out_h * out_w, kh * kw * channels)
    for start in range(0, n, chunk):
        part = x[start : start + chunk]
        if use_kernel:  # CPU inference: hashing, merging and im2col in one pass per tile
            columns = column_buffer[: len(part) * out_h * out_w]
            padded = pad_to_tiles(part, tiling)
            buckets.append(fused.merged_columns(padded, tiling, hyperplanes, centre, columns))
        else:
            columns, part_buckets = _merged_columns(part, tiling, hyperplanes, centre, scheme, seed)
            buckets.append(part_buckets)
        if out is None:  # with gradients (out= is not differentiable)
            outs.append(columns @ matrix if bias is None else torch.addmm(bias, columns, matrix))
            continue
        outputs = out[start * out_h * out_w : (start + len(part)) * out_h * out_w]  # no concatenation
        if bias is None:
            torch.mm(columns, matrix, out=outputs)
        else:
            torch.addmm(bias, columns, matrix, out=outputs)
    if out is None:
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
    return out.view(n, out_h, out_w, c_out).permute(0, 3, 1, 2), torch.cat(buckets)


def _gemm_matrix(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    c_out, c_in, kh, kw = weight.shape
    return weight.to(dtype).permute(2, 3, 1, 0).reshape(kh * kw * c_in, c_out)


def empty_batch(x, weight, bias, stride, padding, tiling: Tiling) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``nn.Conv2d`` returns for a batch of no images, and no bucket counts."""
    out = F.conv2d(x, weight.to(x.dtype), bias, stride, padding)
    tiles = tiling.tiles[0] * tiling.tiles[1]
    return out, torch.zeros(0, tiles, dtype=torch.int64, device=x.device)


def _merged_columns(x: torch.Tensor, tiling: Tiling, hyperplanes: torch.Tensor, centre: bool, scheme, seed):
    """im2col columns ``[N * H_out * W_out, kh * kw * C]`` of the merged windows, and bucket counts."""
    n, channels = x.shape[:2]
    windows = at_least_float32(extract_windows(x, tiling))  # [N, T, pixels, C]; half types merged in float32
    tiles, pixels = windows.shape[1:3]
    ids, num_buckets = grouped(scheme, windows, hyperplanes, centre, seed)
    merged = merge_channels(windows.view(n * tiles, pixels, channels), ids)
    # only the valid output pixels of every tile get columns: edge tiles cost no wasted multiply-adds
    _, column_index = _gather_indices(tiling)
    column_index = _batched(column_index.to(x.device), n, tiles * pixels)
    columns = merged.view(-1, channels).index_select(0, column_index).to(x.dtype)
    kh, kw = tiling.kernel_size
    return columns.view(-1, kh * kw * channels), num_buckets.view(n, tiles)
