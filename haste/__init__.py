"""HASTE: data-free, dynamic compression of CNNs by locality-sensitive hashing of channels.

import haste
from haste.zoo.data import cifar10_batches                # the zoo: models, weights, data
model = haste.convert(pretrained_cnn, num_hyperplanes=14)  # replaces nn.Conv2d layers
result = haste.evaluate(model, cifar10_batches())          # accuracy + FLOPs per image
haste.set_num_hyperplanes(model, 12)                       # steer L at run time
dense = haste.revert(model)

The method (this package's top-level modules) imports nothing from the zoo (``haste.zoo``) or the
reproduction (``haste.repro``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public API, by the module that defines each name. Imported on first use, so that
# ``python -m haste --help`` and the torch-free modules (settings, conventions) load without torch.
_API = {
    "HasteConv2d": "module",
    "HasteSettings": "settings",
    "LayerStats": "cost",
    "convert": "convert",
    "revert": "convert",
    "summary": "convert",
    "haste_layers": "convert",
    "set_num_hyperplanes": "convert",
    "set_hyperplanes": "convert",
    "set_merging": "convert",
    "set_execution": "convert",
    "merging_disabled": "convert",
    "reset_stats": "convert",
    "evaluate": "evaluate",
    "EvalResult": "evaluate",
    "dense_flops": "report",
    "flop_report": "report",
    "FlopReport": "report",
    "haste_conv2d": "functional",
    "Grouping": "grouping",
    "draw_hyperplanes": "hashing",
}
__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:  # haste.cost after `import haste`
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


class _Package(types.ModuleType):
    """Keeps ``haste.convert`` and ``haste.evaluate`` the functions: importing a submodule of the same
    name would otherwise set the package's attribute to that module."""

    def __setattr__(self, name: str, value) -> None:
        if not (name in _API and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


if TYPE_CHECKING:  # the same names, for type checkers and editors (tests/test_api.py compares them)
    from .convert import (
        convert,
        haste_layers,
        merging_disabled,
        reset_stats,
        revert,
        set_execution,
        set_hyperplanes,
        set_merging,
        set_num_hyperplanes,
        summary,
    )
    from .cost import LayerStats
    from .evaluate import EvalResult, evaluate
    from .functional import haste_conv2d
    from .grouping import Grouping
    from .hashing import draw_hyperplanes
    from .module import HasteConv2d
    from .report import FlopReport, dense_flops, flop_report
    from .settings import HasteSettings
