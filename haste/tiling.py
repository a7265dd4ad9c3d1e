"""How a HASTE conv cuts its output into tiles, and which input window each tile reads."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .settings import check_patch_size, is_int


@dataclass(frozen=True)
class Tiling:
    """How a conv's output is cut into ``patch_size`` tiles and which input window each tile reads."""

    in_size: tuple[int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    patch_size: int

    def _dim(self, axis: int):
        size, k, s, p = (self.in_size[axis], self.kernel_size[axis], self.stride[axis], self.padding[axis])
        out = (size + 2 * p - k) // s + 1
        if out < 1:
            raise ValueError(f"input of size {self.in_size} is smaller than the kernel")
        tiles = math.ceil(out / self.patch_size)
        window = (self.patch_size - 1) * s + k
        return out, tiles, window

    @property
    def out_size(self) -> tuple[int, int]:
        return self._dim(0)[0], self._dim(1)[0]

    @property
    def tiles(self) -> tuple[int, int]:
        return self._dim(0)[1], self._dim(1)[1]

    @property
    def window(self) -> tuple[int, int]:
        return self._dim(0)[2], self._dim(1)[2]

    def valid_outputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Output rows and columns of each tile row / tile column (edge tiles have fewer)."""
        result = []
        for axis in (0, 1):
            out, tiles, _ = self._dim(axis)
            result.append(torch.clamp(out - self.patch_size * torch.arange(tiles), max=self.patch_size))
        return result[0], result[1]

    def valid_window(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows and columns of the input window that each tile row / column actually reads."""
        rows, cols = self.valid_outputs()
        return (
            (rows - 1) * self.stride[0] + self.kernel_size[0],
            (cols - 1) * self.stride[1] + self.kernel_size[1],
        )


def _int_pair(name: str, value) -> tuple[int, int]:
    """An int or a pair of ints (as ``F.conv2d`` takes them) as a pair of ints >= 0."""
    pair = (value, value) if is_int(value) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(is_int(v) and v >= 0 for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints >= 0, not {value!r}")
    return int(pair[0]), int(pair[1])


def conv_geometry(kernel_size: tuple[int, int], stride, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """``stride`` and ``padding`` as pairs of ints; both as ``F.conv2d`` takes them (an int, a pair,
    or for the padding ``"valid"``, and ``"same"`` where it is symmetric: odd kernels, stride 1)."""
    stride = _int_pair("stride", stride)
    if 0 in stride:
        raise ValueError(f"stride must be >= 1, not {stride}")
    if isinstance(padding, str):
        if padding == "valid":
            return stride, (0, 0)
        if padding == "same" and all(k % 2 == 1 for k in kernel_size) and stride == (1, 1):
            return stride, (kernel_size[0] // 2, kernel_size[1] // 2)
        raise ValueError(
            f"padding={padding!r} with kernel {tuple(kernel_size)} and stride {stride} is not supported"
        )
    return stride, _int_pair("padding", padding)


def checked_tiling(x, weight, stride, padding, hyperplanes, patch_size) -> Tiling:
    """The tiling of a HASTE conv, after checking that input, weight and hyperplanes fit together.

    ``stride`` and ``padding`` may be given as ``F.conv2d`` takes them; the tiling holds them as pairs.
    """
    if not x.is_floating_point():  # nn.Conv2d refuses them too; cast to float, they would hash as 0
        raise TypeError(f"HASTE convolutions take floating-point inputs, not {x.dtype}")
    c_out, c_in, kh, kw = weight.shape
    if x.ndim != 4 or x.shape[1] != c_in:
        raise ValueError(
            f"expected input [N, {c_in}, H, W] ({c_in} input channels), got shape {tuple(x.shape)}"
        )
    stride, padding = conv_geometry((kh, kw), stride, padding)
    tiling = Tiling(tuple(x.shape[-2:]), (kh, kw), stride, padding, check_patch_size(patch_size))
    win_h, win_w = tiling.window
    if hyperplanes.shape[0] != win_h * win_w:
        raise ValueError(f"hyperplanes have {hyperplanes.shape[0]} rows, windows {win_h * win_w} pixels")
    return tiling
