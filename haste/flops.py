"""FLOP accounting: HASTE's cost model, fvcore for the dense model, and the report combining them.

The cost model is one set of pure functions of shapes and bucket counts, one per term of a patch's
cost; ``HasteConv2d`` only accumulates the counts they take (``LayerStats``). fvcore only sees
shapes, and HASTE's cost depends on the data (the number of buckets ``m`` in every patch), which is
why the layers record them. Unit: 1 multiply-add = 1 FLOP (fvcore's convention); every figure of a
report is per image.

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

import warnings
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

OVERHEAD_TERMS = ("centre", "hash", "input_merge", "filter_merge")
TERMS = ("conv", *OVERHEAD_TERMS)
# fvcore's operator names of convolutions and linear layers (the "conv + linear" dense baseline)
CONV_LINEAR_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


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


def filter_merge_flops(in_channels: int, out_channels: int, kernel_area: int, buckets, patches=1):
    """``buckets``: ``m`` of a patch, or the sum of ``m`` over ``patches`` patches."""
    return (in_channels * patches - buckets) * out_channels * kernel_area


def tile_constants(tiling, nonzeros_per_pixel: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per tile (flattened, row-major): valid ``outputs``, valid window ``pixels`` and ``nonzeros``.

    ``tiling`` is a ``haste.functional.Tiling``; ``nonzeros_per_pixel`` ``[win_h, win_w]`` counts the
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

    in_channels: int = 0
    out_channels: int = 0
    kernel_area: int = 0
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


def dense_flops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """fvcore's FLOPs of one image through ``model`` run dense, by module name ("" is the total).

    ``input_shape`` is one image's ``(C, H, W)``. The entry ``CONV_LINEAR`` holds the FLOPs of the
    convolutions and linear layers alone (BN, pooling and the rest left out).
    """
    from .convert import merging_disabled  # convert -> module -> flops: imported when called

    with warnings.catch_warnings():  # fvcore's import uses the deprecated torch.jit.script
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    parameter = next(model.parameters())
    image = torch.zeros(1, *input_shape, dtype=parameter.dtype, device=parameter.device)
    was_training = model.training
    model.eval()
    try:
        with merging_disabled(model), torch.no_grad():
            analysis = FlopCountAnalysis(model, image)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            analysis.tracer_warnings("none")
            counts = dict(analysis.by_module())
            by_operator = analysis.by_operator()
    finally:
        model.train(was_training)
    counts[CONV_LINEAR] = sum(by_operator.get(name, 0) for name in CONV_LINEAR_OPERATORS)
    return counts


CONV_LINEAR = "<conv+linear>"  # a key no module name can take


def _reduction(dense: float, spent: float) -> float:
    return 100.0 * (1.0 - spent / dense) if dense else 0.0


# The reported reductions: dense baseline x which overhead terms are counted. A name is
# "flops_reduction" + baseline suffix + overhead suffix (see FlopReport.totals).
BASELINES = {"": "fvcore's whole model", "_convlinear": "convolutions and linear layers only"}
OVERHEAD_CONVENTIONS = {
    "": OVERHEAD_TERMS,  # every term counted
    "_no_filter_merge": tuple(t for t in OVERHEAD_TERMS if t != "filter_merge"),
    "_no_overhead": (),
}


EXCEEDS_DENSE_NOTE = "costs more than dense"


class LayerTable(pd.DataFrame):
    """:class:`FlopReport`'s per-layer DataFrame, which prints whole: the FLOP terms in one unit,
    short headers, no index, and a note on each layer that HASTE makes dearer than ``nn.Conv2d``
    (its overhead outweighs what merging saves there); a layer's columns are all in the frame."""

    _SHOWN = {
        "layer": "layer",
        "num_hyperplanes": "L",
        "flops_dense": "dense",
        "flops_conv": "conv",
        "flops_centre": "centre",
        "flops_hash": "hash",
        "flops_input_merge": "input merge",
        "flops_filter_merge": "filter merge",
        "flops_haste": "HASTE",
        "flops_reduction": "reduction (%)",
    }

    def __repr__(self) -> str:
        if self.empty or not set(self._SHOWN) | {"exceeds_dense"} <= set(self.columns):
            return super().__repr__()
        largest = float(self.flops_dense.max())
        scale, unit = next((s, u) for s, u in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")) if largest >= s)
        shown = self[list(self._SHOWN)].copy()
        for column in self._SHOWN:
            if column.startswith("flops_") and column != "flops_reduction":
                shown[column] = shown[column] / scale
        shown["note"] = self.exceeds_dense.map({True: EXCEEDS_DENSE_NOTE, False: ""})
        table = shown.to_string(
            index=False, header=[*self._SHOWN.values(), "note"], float_format=lambda v: f"{v:.2f}"
        )
        lines = [f"{unit}FLOPs per image, by layer:", table]
        dearer = int(self.exceeds_dense.sum())
        if dearer:
            lines.append(
                f"note: {dearer} of {len(self)} HASTE layers cost more than dense (a negative reduction): "
                "their hashing and merging outweigh what merging saves; haste.convert's skip can leave "
                "them dense"
            )
        return "\n".join(lines)


@dataclass
class FlopReport:
    """Per-layer and whole-model FLOPs per image. ``layers`` is a :class:`LayerTable` with one row per
    HASTE layer: the dense count, every term, ``flops_haste``, the reductions, and ``exceeds_dense``
    (HASTE costs more than dense in that layer, a negative ``flops_reduction``)."""

    layers: pd.DataFrame
    model_dense: float  # the whole unconverted model (fvcore)
    model_haste: float  # the whole model as run: dense layers + HASTE convs + overhead
    model_overhead: float
    dense_convlinear: float = 0.0  # the unconverted model's convolutions and linear layers
    overhead_terms: dict[str, float] = field(default_factory=dict)  # per term, summed over layers

    @property
    def reduction(self) -> float:
        return _reduction(self.model_dense, self.model_haste)

    @property
    def reduction_no_overhead(self) -> float:
        return _reduction(self.model_dense, self.model_haste - self.model_overhead)

    def spent(self, baseline: str = "", counted=OVERHEAD_TERMS) -> tuple[float, float]:
        """``(dense, spent)`` under a dense ``baseline`` (a key of ``BASELINES``), counting only the
        overhead terms in ``counted``."""
        if not counted:
            uncounted = self.model_overhead
        else:
            uncounted = sum(self.overhead_terms.get(t, 0.0) for t in OVERHEAD_TERMS if t not in counted)
        # the layers outside the baseline (BN, pooling, ...) run dense and unchanged under HASTE
        outside = self.model_dense - self.dense_convlinear if baseline == "_convlinear" else 0.0
        return self.model_dense - outside, self.model_haste - outside - uncounted

    def totals(self) -> dict[str, float]:
        totals = {
            "flops_dense": self.model_dense,
            "flops_haste": self.model_haste,
            "flops_overhead": self.model_overhead,
            "flops_filter_merge": self.overhead_terms.get("filter_merge", 0.0),
            "flops_dense_convlinear": self.dense_convlinear,
        }
        for baseline in BASELINES:
            for suffix, counted in OVERHEAD_CONVENTIONS.items():
                totals[f"flops_reduction{baseline}{suffix}"] = _reduction(*self.spent(baseline, counted))
        return totals


def flop_report(
    model: nn.Module, input_shape: tuple[int, ...], dense: dict[str, int] | None = None
) -> FlopReport:
    """Combine fvcore's dense count with the statistics the HASTE layers recorded since their reset.

    A HASTE layer that saw no image (merging off) is counted as dense.
    """
    from .convert import haste_layers

    dense = dense_flops(model, input_shape) if dense is None else dense
    rows = []
    for name, layer in haste_layers(model):
        stats = layer.stats
        fvcore_dense = float(dense.get(name, 0))
        if stats.images == 0:
            spent = {"conv": fvcore_dense, **dict.fromkeys(OVERHEAD_TERMS, 0.0)}
            kept = 1.0
        else:
            if stats.dense != fvcore_dense * stats.images:
                raise RuntimeError(
                    f"{name}: layer counted {stats.dense / stats.images} dense FLOPs "
                    f"per image, fvcore {fvcore_dense}; input shapes changed?"
                )
            spent = {term: getattr(stats, term) / stats.images for term in TERMS}
            kept = stats.conv / stats.dense
        overhead = sum(spent[term] for term in OVERHEAD_TERMS)
        rows.append(
            {
                "layer": name,
                "num_hyperplanes": layer.num_hyperplanes,
                "images": stats.images,
                "flops_dense": fvcore_dense,
                **{f"flops_{term}": spent[term] for term in TERMS},
                "flops_overhead": overhead,
                "flops_haste": spent["conv"] + overhead,
                "conv_fraction_kept": kept,
                "flops_reduction": _reduction(fvcore_dense, spent["conv"] + overhead),
                "flops_reduction_no_overhead": _reduction(fvcore_dense, spent["conv"]),
                "exceeds_dense": bool(spent["conv"] + overhead > fvcore_dense),
            }
        )
    layers = LayerTable(rows)
    total_dense = float(dense[""])
    convlinear = float(dense.get(CONV_LINEAR, 0))
    if layers.empty:
        return FlopReport(layers, total_dense, total_dense, 0.0, convlinear)
    model_haste = total_dense - layers["flops_dense"].sum() + layers["flops_haste"].sum()
    terms = {term: float(layers[f"flops_{term}"].sum()) for term in OVERHEAD_TERMS}
    return FlopReport(
        layers, total_dense, float(model_haste), float(layers["flops_overhead"].sum()), convlinear, terms
    )
