"""HASTE's cost model: one pure function per term of a patch's cost, and the counts they take.

A layer's cost depends on the data (the number of buckets ``m`` in every patch), so every layer
keeps a :class:`CostRecorder` that accumulates the counts of what it ran (``LayerStats``); the FLOP
terms are the functions below of those counts. Unit: 1 multiply-add = 1 FLOP (fvcore's convention).
This module imports nothing else from ``haste``: the model-level report (:mod:`haste.report`) and
the layers build on it.

Per patch (tile of output pixels) of a conv with ``C_in`` inputs, ``C_out`` outputs and a
``k_h x k_w`` kernel, with ``outputs`` valid output pixels, ``pixels`` valid window pixels and
``nonzeros`` nonzero hyperplane entries over those pixels (edge tiles count only what they read):

=============  =====================================  ==========================================
term           FLOPs                                  what
=============  =====================================  ==========================================
dense          ``C_in * C_out * k_h * k_w * outputs`` what ``nn.Conv2d`` spends
conv           ``m * C_out * k_h * k_w * outputs``    the convolution at the merged depth
centre         ``2 * C_in * pixels``                  per-pixel channel mean, subtracted
hash           ``C_in * nonzeros``                    additions of the nonzero hyperplane entries
input_merge    ``C_in * pixels``                      average the channels of each bucket
filter_merge   ``(C_in - m) * C_out * k_h * k_w``     sum the filter slices of each bucket
=============  =====================================  ==========================================

All terms are linear in the per-patch quantities, so the same functions give sums over patches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

OVERHEAD_TERMS = ("centre", "hash", "input_merge", "filter_merge")
TERMS = ("conv", *OVERHEAD_TERMS)


def dense_conv_flops(in_channels: int, out_channels: int, kernel_area: int, outputs):
    return in_channels * out_channels * kernel_area * outputs


def conv_flops(buckets_times_outputs, out_channels: int, kernel_area: int):
    """``buckets_times_outputs``: ``m * outputs`` of a patch (or its sum over patches)."""
    return out_channels * kernel_area * buckets_times_outputs


def centre_flops(in_channels: int, pixels):
    return 2 * in_channels * pixels


def hash_flops(in_channels: int, nonzeros):
    return in_channels * nonzeros


def input_merge_flops(in_channels: int, pixels):
    return in_channels * pixels


def filter_merge_flops(in_channels: int, out_channels: int, kernel_area: int, buckets, patches):
    """``buckets``: the sum of ``m`` over ``patches`` patches (``m`` of one patch: ``patches=1``)."""
    return (in_channels * patches - buckets) * out_channels * kernel_area


def tile_constants(tiling, nonzeros_per_pixel: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per tile (flattened, row-major): valid ``outputs``, valid window ``pixels`` and ``nonzeros``.

    ``tiling`` is a ``haste.tiling.Tiling``; ``nonzeros_per_pixel`` ``[win_h, win_w]`` counts the
    nonzero hyperplane entries of every window pixel. Edge tiles read only the top-left corner of
    their window, so their nonzeros are the sums over that corner.
    """
    out_rows, out_cols = tiling.valid_outputs()
    win_rows, win_cols = tiling.valid_window()
    corner = nonzeros_per_pixel.cumsum(0).cumsum(1)
    return {
        "outputs": (out_rows[:, None] * out_cols[None, :]).flatten(),
        "pixels": (win_rows[:, None] * win_cols[None, :]).flatten(),
        "nonzeros": corner[win_rows[:, None] - 1, win_cols[None, :] - 1].flatten(),
    }


@dataclass
class LayerStats:
    """What a HASTE layer saw since its last reset, and the FLOPs it spent on it (summed over images).

    The layer accumulates counts (images, patches and the sums of per-patch quantities); the FLOP
    terms are the cost model's functions of them.
    """

    in_channels: int
    out_channels: int
    kernel_area: int
    images: int = 0
    patches: int = 0
    outputs: int = 0  # valid output pixels, summed over patches
    pixels: int = 0  # valid window pixels, summed over patches
    nonzeros: int = 0  # nonzero hyperplane entries over the valid window pixels, summed over patches
    buckets: int = 0  # m, summed over patches
    buckets_times_outputs: int = 0  # m * outputs, summed over patches
    kept_fraction: list[torch.Tensor] = field(default_factory=list)  # m / C_in per patch, if recorded

    @property
    def dense(self) -> int:
        return dense_conv_flops(self.in_channels, self.out_channels, self.kernel_area, self.outputs)

    @property
    def conv(self) -> int:
        return conv_flops(self.buckets_times_outputs, self.out_channels, self.kernel_area)

    @property
    def centre(self) -> int:
        return centre_flops(self.in_channels, self.pixels)

    @property
    def hash(self) -> int:
        return hash_flops(self.in_channels, self.nonzeros)

    @property
    def input_merge(self) -> int:
        return input_merge_flops(self.in_channels, self.pixels)

    @property
    def filter_merge(self) -> int:
        return filter_merge_flops(
            self.in_channels, self.out_channels, self.kernel_area, self.buckets, self.patches
        )

    @property
    def overhead(self) -> int:
        return sum(getattr(self, term) for term in OVERHEAD_TERMS)

    @property
    def total(self) -> int:
        return self.conv + self.overhead

    def counts(self) -> dict[str, int]:
        """The FLOP terms and counts as plain integers (``kept_fraction`` left out)."""
        names = ("images", "patches", "outputs", "pixels", "nonzeros", "buckets", "dense", *TERMS)
        return {name: int(getattr(self, name)) for name in names}


class CostRecorder:
    """The accounting of one HASTE layer: counts of what it ran, summed since the last :meth:`reset`.

    The per-tile constants of an input size are computed once and kept until :meth:`forget_tiles`
    (the layer calls it when its hyperplanes change). The bucket sums stay on the counts' device
    until the statistics are read: reading them at every call made every layer wait for the GPU to
    finish (a host sync per layer).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_area: int):
        self._shape = (in_channels, out_channels, kernel_area)
        self._tiles: dict = {}  # tile constants by tiling
        self.reset()

    def reset(self) -> None:
        self._stats = LayerStats(*self._shape)
        self._pending_sums: torch.Tensor | None = None  # [sum of m, sum of m x outputs], not yet read

    def forget_tiles(self) -> None:
        self._tiles.clear()

    def _constants(self, tiling, hyperplanes: torch.Tensor) -> dict:
        if tiling not in self._tiles:
            nonzeros = (hyperplanes != 0).sum(1).view(*tiling.window).cpu()
            constants = tile_constants(tiling, nonzeros)
            self._tiles[tiling] = {
                **constants,
                **{f"{name}_sum": int(value.sum()) for name, value in constants.items()},
            }
        return self._tiles[tiling]

    def record(
        self, tiling, hyperplanes: torch.Tensor, num_buckets: torch.Tensor, keep_patches: bool
    ) -> None:
        """Count one call: ``num_buckets`` ``[N, tiles]`` of an input cut by ``tiling`` and hashed
        with ``hyperplanes``; ``keep_patches`` also keeps every patch's kept fraction ``m / C_in``."""
        n = num_buckets.shape[0]
        constants = self._constants(tiling, hyperplanes)
        stats = self._stats
        stats.images += n
        stats.patches += num_buckets.numel()
        stats.outputs += n * constants["outputs_sum"]
        stats.pixels += n * constants["pixels_sum"]
        stats.nonzeros += n * constants["nonzeros_sum"]
        key = ("outputs", num_buckets.device)
        if key not in constants:
            constants[key] = constants["outputs"].to(num_buckets.device)
        sums = torch.stack([num_buckets.sum(), (num_buckets * constants[key]).sum()])
        if self._pending_sums is not None and self._pending_sums.device != sums.device:
            self._fold_pending_sums()  # the layer moved to another device
        self._pending_sums = sums if self._pending_sums is None else self._pending_sums + sums
        if keep_patches:
            stats.kept_fraction.append(num_buckets.cpu().float() / stats.in_channels)

    def _fold_pending_sums(self) -> None:
        if self._pending_sums is None:
            return
        buckets, buckets_times_outputs = self._pending_sums.tolist()
        self._pending_sums = None
        self._stats.buckets += int(buckets)
        self._stats.buckets_times_outputs += int(buckets_times_outputs)

    @property
    def stats(self) -> LayerStats:
        """The counts and FLOPs since the last reset (reading them waits for queued device work)."""
        self._fold_pending_sums()
        return self._stats
