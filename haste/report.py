"""The FLOP report of a model: fvcore's count of the dense model, combined with what the HASTE
layers recorded (:mod:`haste.cost`), per layer and for the whole model, under every accounting
convention (:mod:`haste.conventions`). Every figure is per image.

fvcore only sees shapes; HASTE's cost depends on the data, which is why the layers record it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from .conventions import BY_NAME, CONVENTIONS, Convention, dense_and_spent, reduction
from .convert import haste_layers, merging_disabled
from .cost import OVERHEAD_TERMS, TERMS
from .module import HasteConv2d

# fvcore's operator names of convolutions and linear layers (the "conv + linear" dense baseline)
CONV_LINEAR_OPERATORS = ("conv", "linear", "addmm", "matmul", "bmm", "einsum")


def dense_flops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """fvcore's FLOPs of one image through ``model`` run dense, by module name ("" is the total).

    ``input_shape`` is one image's ``(C, H, W)``. The entry ``CONV_LINEAR`` holds the FLOPs of the
    convolutions and linear layers alone (BN, pooling and the rest left out).
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
            by_operator = analysis.by_operator()
    finally:
        model.train(was_training)
    counts[CONV_LINEAR] = sum(by_operator.get(name, 0) for name in CONV_LINEAR_OPERATORS)
    return counts


CONV_LINEAR = "<conv+linear>"  # a key no module name can take

_DENSE_COUNTS: dict[tuple, dict[str, int]] = {}  # dense_flops by architecture and input shape


def architecture(model: nn.Module) -> tuple:
    """What fvcore's dense count of ``model`` depends on: every module's name, class, configuration
    and parameter shapes (a HASTE layer as the ``nn.Conv2d`` it runs dense; its settings left out)."""
    parts = []
    for name, module in model.named_modules():
        kind = type(module)
        own = nn.Conv2d.extra_repr(module) if isinstance(module, HasteConv2d) else module.extra_repr()
        shapes = tuple((key, tuple(p.shape)) for key, p in module.named_parameters(recurse=False))
        parts.append((name, kind.__module__, kind.__qualname__, own, shapes))
    return tuple(parts)


def cached_dense_flops(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """:func:`dense_flops`, traced once per architecture and input shape."""
    key = (architecture(model), tuple(input_shape))
    if key not in _DENSE_COUNTS:
        _DENSE_COUNTS[key] = dense_flops(model, input_shape)
    return dict(_DENSE_COUNTS[key])


def _reduction(dense: float, spent: float) -> float:
    return reduction(dense, spent) if dense else 0.0


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
        units = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
        scale, unit = next(((s, u) for s, u in units if largest >= s), (1, ""))  # 0: a layer never run
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
    dense_convlinear: float  # the unconverted model's convolutions and linear layers
    overhead_terms: dict[str, float] = field(default_factory=dict)  # per term, summed over layers

    @property
    def reduction(self) -> float:
        return self.reduction_under(BY_NAME["flops_reduction"])

    @property
    def reduction_no_overhead(self) -> float:
        return self.reduction_under(BY_NAME["flops_reduction_no_overhead"])

    def spent(self, convention: Convention) -> tuple[float, float]:
        """``(dense, spent)`` under ``convention`` (one of :data:`haste.conventions.CONVENTIONS`)."""
        return dense_and_spent(
            convention,
            self.model_dense,
            self.model_haste,
            self.model_overhead,
            self.dense_convlinear,
            self.overhead_terms,
        )

    def reduction_under(self, convention: Convention) -> float:
        return _reduction(*self.spent(convention))

    def totals(self) -> dict[str, float]:
        """The whole-model figures of a result row: counts, and the reduction under every convention."""
        totals = {
            "flops_dense": self.model_dense,
            "flops_haste": self.model_haste,
            "flops_overhead": self.model_overhead,
            "flops_filter_merge": self.overhead_terms.get("filter_merge", 0.0),
            "flops_dense_convlinear": self.dense_convlinear,
        }
        for convention in CONVENTIONS:
            totals[convention.name] = self.reduction_under(convention)
        return totals


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
        fvcore_dense = float(dense[name])  # fvcore counts every module, 0 for one never called
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
    convlinear = float(dense[CONV_LINEAR])
    if layers.empty:
        return FlopReport(layers, total_dense, total_dense, 0.0, convlinear)
    model_haste = total_dense - layers["flops_dense"].sum() + layers["flops_haste"].sum()
    terms = {term: float(layers[f"flops_{term}"].sum()) for term in OVERHEAD_TERMS}
    return FlopReport(
        layers, total_dense, float(model_haste), float(layers["flops_overhead"].sum()), convlinear, terms
    )
