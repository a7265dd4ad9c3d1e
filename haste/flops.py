"""FLOP accounting: fvcore for the dense model, the HASTE layers' own records for what they spent.

fvcore only sees shapes, and HASTE's cost depends on the data (the number of buckets in every
patch), so each ``HasteConv2d`` records what it actually did; this module combines the two.
Unit: 1 multiply-add = 1 FLOP (fvcore's convention); everything is reported per image.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from .convert import haste_layers, merging_disabled


def dense_flops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """fvcore's FLOPs of one image through ``model`` run dense, by module name ("" is the total).

    ``input_shape`` is one image's ``(C, H, W)``.
    """
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
    finally:
        model.train(was_training)
    return counts


def _reduction(dense: float, spent: float) -> float:
    return 100.0 * (1.0 - spent / dense) if dense else 0.0


@dataclass
class FlopReport:
    """Per-layer and whole-model FLOPs per image. ``layers`` is a DataFrame with one row per layer."""

    layers: pd.DataFrame
    model_dense: float  # the whole unconverted model
    model_haste: float  # the whole model as run: dense layers + HASTE convs + overhead
    model_overhead: float

    @property
    def reduction(self) -> float:
        return _reduction(self.model_dense, self.model_haste)

    @property
    def reduction_no_overhead(self) -> float:
        return _reduction(self.model_dense, self.model_haste - self.model_overhead)

    def totals(self) -> dict[str, float]:
        return {
            "flops_dense": self.model_dense,
            "flops_haste": self.model_haste,
            "flops_overhead": self.model_overhead,
            "flops_reduction": self.reduction,
            "flops_reduction_no_overhead": self.reduction_no_overhead,
        }


def flop_report(
    model: nn.Module, input_shape: tuple[int, ...], dense: dict[str, int] | None = None
) -> FlopReport:
    """Combine fvcore's dense count with the statistics the HASTE layers recorded since their reset.

    A HASTE layer that saw no image (merging off) is counted as dense.
    """
    dense = dense_flops(model, input_shape) if dense is None else dense
    rows = []
    for name, layer in haste_layers(model):
        stats = layer.stats
        fvcore_dense = float(dense.get(name, 0))
        if stats.images == 0:
            spent = {"conv": fvcore_dense, "centre": 0, "hash": 0, "input_merge": 0, "filter_merge": 0}
            kept = 1.0
        else:
            if stats.dense != fvcore_dense * stats.images:
                raise RuntimeError(
                    f"{name}: layer counted {stats.dense / stats.images} dense FLOPs "
                    f"per image, fvcore {fvcore_dense}; input shapes changed?"
                )
            spent = {
                key: getattr(stats, key) / stats.images
                for key in ("conv", "centre", "hash", "input_merge", "filter_merge")
            }
            kept = stats.conv / stats.dense
        overhead = spent["centre"] + spent["hash"] + spent["input_merge"] + spent["filter_merge"]
        rows.append(
            {
                "layer": name,
                "num_hyperplanes": layer.num_hyperplanes,
                "images": stats.images,
                "flops_dense": fvcore_dense,
                "flops_conv": spent["conv"],
                **{f"flops_{key}": spent[key] for key in ("centre", "hash", "input_merge", "filter_merge")},
                "flops_overhead": overhead,
                "flops_haste": spent["conv"] + overhead,
                "conv_fraction_kept": kept,
                "flops_reduction": _reduction(fvcore_dense, spent["conv"] + overhead),
                "flops_reduction_no_overhead": _reduction(fvcore_dense, spent["conv"]),
            }
        )
    layers = pd.DataFrame(rows)
    total_dense = float(dense[""])
    if layers.empty:
        return FlopReport(layers, total_dense, total_dense, 0.0)
    model_haste = total_dense - layers["flops_dense"].sum() + layers["flops_haste"].sum()
    return FlopReport(layers, total_dense, float(model_haste), float(layers["flops_overhead"].sum()))
