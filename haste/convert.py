"""Model surgery: replace ``nn.Conv2d`` layers by ``HasteConv2d``, steer them, and undo it."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fnmatch
import warnings
from collections.abc import Iterator

import pandas as pd
from torch import nn

from .module import HasteConv2d, unsupported_reason
from .settings import (
    DEFAULT_NUM_HYPERPLANES,
    DEFAULTS,
    LAYER_SEED_STRIDE,
    HasteSettings,
    check_execution,
    check_flag,
    check_model_seed,
    check_num_hyperplanes,
    user_stacklevel,
)

_SKIP_REASONS = "_haste_skipped"  # attribute on the converted root module: {layer name: reason}


def haste_layers(model: nn.Module) -> Iterator[tuple[str, HasteConv2d]]:
    """``(name, layer)`` of every HASTE layer in ``model`` (the model itself if it is one)."""
    for name, module in model.named_modules():
        if isinstance(module, HasteConv2d):
            yield name, module


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def convert(
    model: nn.Module,
    num_hyperplanes: int = DEFAULT_NUM_HYPERPLANES,
    settings: HasteSettings | None = None,
    *,
    seed: int = 0,
    inplace: bool = False,
    **overrides,
) -> nn.Module:
    """A copy of ``model`` whose ``nn.Conv2d`` layers are ``HasteConv2d`` (weights shared with none).

    ``settings``: a :class:`haste.HasteSettings` (default: the paper's). Any of its fields may also
    be given as a keyword (``sparsity=0.5``, ``patch_size=2``, ``skip=["conv1"]``, ...), which
    overrides the one in ``settings``; invalid values are refused before anything is converted.
    ``skip``: the number of leading convs to leave dense (default 1: the stem, as in the paper), or
    names / glob patterns of convs to leave dense (a warning names a pattern that matches none, or a
    count beyond the model's convs). 1x1 convs stay dense unless ``include_pointwise``. Subclasses of
    ``nn.Conv2d`` with a forward of their own (weight standardisation, QAT) and convs with a
    parametrised or hook-computed weight stay dense too: HASTE would not compute what they do.
    Layer ``i`` (in module order) draws its hyperplanes from seed ``seed * 10_000 + i``.
    ``haste.summary(model)`` lists what was replaced and why the rest was not.
    """
    settings = _settings(settings, overrides)
    num_hyperplanes = check_num_hyperplanes(num_hyperplanes)
    inplace = check_flag("inplace", inplace)
    skip = settings.skip
    if not inplace:
        model = copy.deepcopy(model)
    convs = [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and not isinstance(m, HasteConv2d)
    ]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d layer to convert")
    seed = check_model_seed(seed, len(convs))
    patterns = [] if isinstance(skip, int) else list(skip)
    _warn_about_skip(skip, patterns, [name for name, _ in convs])
    options = settings.layer_options()
    reasons: dict[str, str] = {}
    for index, (name, conv) in enumerate(convs):
        if isinstance(skip, int) and index < skip:
            reasons[name] = f"first {skip} conv(s) (skip)"
        elif any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            reasons[name] = "named in skip"
        elif conv.kernel_size == (1, 1) and not settings.include_pointwise:
            reasons[name] = "1x1 (pointwise)"
        elif (reason := unsupported_reason(conv)) is not None:
            reasons[name] = reason
        if name in reasons:
            continue
        layer = HasteConv2d.from_conv(conv, num_hyperplanes, seed=seed * LAYER_SEED_STRIDE + index, **options)
        if name == "":
            return layer
        _set_submodule(model, name, layer)
    if "" in reasons:  # the model is one conv, and it stays as it is
        warnings.warn(
            f"convert: the model is a single conv, left dense ({reasons['']}); skip=0 converts it",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    setattr(model, _SKIP_REASONS, reasons)
    return model


def _warn_about_skip(skip, patterns: list[str], names: list[str]) -> None:
    """A warning for a ``skip`` that cannot mean what it says: a count beyond the convs, a pattern
    that matches no conv."""
    if isinstance(skip, int) and skip > len(names):
        warnings.warn(
            f"convert: skip={skip} is more than the model's {len(names)} convs: none is converted",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
            warnings.warn(
                f"convert: skip pattern {pattern!r} matches no conv (their names: {names[0]!r}, ...)",
                UserWarning,
                stacklevel=user_stacklevel(),
            )


def _settings(settings: HasteSettings | None, overrides: dict) -> HasteSettings:
    if settings is None:
        settings = DEFAULTS
    if not isinstance(settings, HasteSettings):
        raise TypeError(
            f"settings must be a haste.HasteSettings, not {settings!r} (give sparsity=... as a keyword)"
        )
    unknown = set(overrides) - set(HasteSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"convert() got unknown settings {sorted(unknown)}")
    return dataclasses.replace(settings, **overrides)


def revert(model: nn.Module, inplace: bool = False) -> nn.Module:
    """The dense model: every ``HasteConv2d`` back to ``nn.Conv2d`` (same weights, no hyperplanes)."""
    if isinstance(model, HasteConv2d):
        return (model if inplace else copy.deepcopy(model)).to_conv()
    if not inplace:
        model = copy.deepcopy(model)
    for name, layer in list(haste_layers(model)):
        _set_submodule(model, name, layer.to_conv())
    if hasattr(model, _SKIP_REASONS):
        delattr(model, _SKIP_REASONS)
    return model


class SummaryTable(pd.DataFrame):
    """A DataFrame that prints in 80 columns: short headers, no index (what :func:`summary` returns)."""

    def __repr__(self) -> str:
        if self.empty:  # a model without convs
            return super().__repr__()
        shown = self.assign(num_hyperplanes=self.num_hyperplanes.map(lambda v: "" if pd.isna(v) else int(v)))
        return shown.to_string(
            index=False, header=["layer", "in", "out", "kernel", "stride", "haste", "L", "reason"]
        )


def summary(model: nn.Module) -> pd.DataFrame:
    """One row per conv: name, shape, whether it runs HASTE, and why not if it does not."""
    reasons = getattr(model, _SKIP_REASONS, {})
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        is_haste = isinstance(module, HasteConv2d)
        rows.append(
            {
                "layer": name,
                "in_channels": module.in_channels,
                "out_channels": module.out_channels,
                "kernel": "x".join(map(str, module.kernel_size)),
                "stride": module.stride[0],
                "haste": is_haste,
                "num_hyperplanes": module.num_hyperplanes if is_haste else None,
                "reason": "" if is_haste else reasons.get(name, "not converted"),
            }
        )
    return SummaryTable(rows)


def set_num_hyperplanes(model: nn.Module, num_hyperplanes: int) -> nn.Module:
    """Set L on every HASTE layer of ``model`` (or on one layer); hyperplanes redrawn from seeds."""
    num_hyperplanes = check_num_hyperplanes(num_hyperplanes)
    for _, layer in haste_layers(model):
        layer.num_hyperplanes = num_hyperplanes
    return model


def set_hyperplanes(model: nn.Module, num_hyperplanes: int) -> nn.Module:
    """Deprecated name of :func:`set_num_hyperplanes`."""
    warnings.warn(
        "haste.set_hyperplanes is deprecated: use haste.set_num_hyperplanes",
        DeprecationWarning,
        stacklevel=user_stacklevel(),
    )
    return set_num_hyperplanes(model, num_hyperplanes)


def set_merging(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch merging on or off (off: every HASTE layer computes exactly ``nn.Conv2d``)."""
    enabled = check_flag("enabled", enabled)
    for _, layer in haste_layers(model):
        layer.merge = enabled
    return model


def set_execution(model: nn.Module, execution: str) -> nn.Module:
    """Choose the execution path of every HASTE layer: ``"gemm"`` or ``"compressed"``.

    The compressed path does not run the random-grouping control: with a layer set to
    ``grouping="random"`` it is refused before any layer changes.
    """
    execution = check_execution(execution)
    layers = dict(haste_layers(model))
    for name, layer in layers.items():
        if execution == "compressed" and layer.grouping == "random":
            raise ValueError(
                f"execution='compressed' does not run grouping='random', and layer {name!r} has it"
            )
    for layer in layers.values():
        layer.execution = execution
    return model


@contextlib.contextmanager
def merging_disabled(model: nn.Module):
    """Temporarily run ``model`` dense, restoring each layer's own setting afterwards."""
    layers = [layer for _, layer in haste_layers(model)]
    saved = [layer.merge for layer in layers]
    try:
        for layer in layers:
            layer.merge = False
        yield model
    finally:
        for layer, merge in zip(layers, saved):
            layer.merge = merge


def reset_stats(model: nn.Module, record_patches: bool | None = None) -> None:
    """Clear the FLOP statistics of every HASTE layer (and optionally switch patch recording)."""
    if record_patches is not None:
        record_patches = check_flag("record_patches", record_patches)
    for _, layer in haste_layers(model):
        layer.reset_stats()
        if record_patches is not None:
            layer.record_patches = record_patches
