"""The HASTE settings, spelled once: what ``convert`` accepts, what results record, what the CLI exposes.

``HasteSettings`` holds everything but ``L`` (``num_hyperplanes``, steered at run time) and the
hyperplane seed. Every value is checked when it is set, by the functions below, which
``HasteConv2d``'s attributes and the command line use too: one set of rules and messages.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

MAX_HYPERPLANES = 53  # codes are exact integers in float64
DEFAULT_NUM_HYPERPLANES = 14  # L, when none is given
PROJECTIONS = ("ternary", "gaussian")
GROUPINGS = ("lsh", "random")  # "random": control, LSH's bucket count per patch, random groups
EXECUTIONS = ("gemm", "compressed")
_RENAMED_EXECUTIONS = {"eval": "gemm"}  # old name -> new name (deprecated)


def is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))  # numpy's bool too (np.bool in numpy 2)


def check_flag(name: str, value) -> bool:
    """``value`` as a bool: True or False (numpy's too), not a truthy string or number."""
    if not _is_bool(value):
        raise ValueError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def check_num_hyperplanes(value) -> int:
    if not is_int(value) or not 1 <= value <= MAX_HYPERPLANES:
        raise ValueError(f"num_hyperplanes must be an integer in [1, {MAX_HYPERPLANES}], not {value!r}")
    return int(value)


def check_sparsity(value) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
        raise ValueError(f"sparsity must be a number in [0, 1), not {value!r}")
    return float(value)


def check_patch_size(value) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"patch_size must be an integer >= 1, not {value!r}")
    return int(value)


def check_seed(value) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"seed must be an integer >= 0, not {value!r}")
    return int(value)


def check_projection(value) -> str:
    if value not in PROJECTIONS or not isinstance(value, str):
        raise ValueError(f"projection must be one of {list(PROJECTIONS)}, not {value!r}")
    return value


def check_centre(value) -> bool:
    return check_flag("centre", value)


def check_grouping(value) -> Any:
    """A built-in grouping's name, or a grouping scheme of your own (a :class:`haste.grouping.Grouping`)."""
    if callable(getattr(value, "group", None)) and not isinstance(value, str):
        return value
    if value not in GROUPINGS or not isinstance(value, str):
        raise ValueError(f"grouping must be one of {list(GROUPINGS)}, not {value!r}")
    return value


def check_skip(value) -> int | tuple[str, ...]:
    """A count of leading convs (``int >= 0``) or layer names / glob patterns (a string or several)."""
    if is_int(value) and value >= 0:
        return int(value)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not is_int(value):
        names = tuple(value)
        if all(isinstance(name, str) for name in names):
            return names
    raise ValueError(f"skip must be an integer >= 0 or layer names, not {value!r}")


def check_include_pointwise(value) -> bool:
    return check_flag("include_pointwise", value)


def check_execution(value) -> str:
    """``"gemm"`` or ``"compressed"``; the old name ``"eval"`` still works, with a warning."""
    if isinstance(value, str) and value in _RENAMED_EXECUTIONS:
        new = _RENAMED_EXECUTIONS[value]
        warnings.warn(
            f"execution={value!r} is deprecated: it is called {new!r} now", DeprecationWarning, stacklevel=3
        )
        return new
    if value not in EXECUTIONS or not isinstance(value, str):
        raise ValueError(f"execution must be one of {list(EXECUTIONS)}, not {value!r}")
    return value


@dataclass(frozen=True)
class HasteSettings:
    """The HASTE settings of a conversion (everything but L and the hyperplane seed).

    ``sparsity``: fraction of zero hyperplane entries (ternary projections). ``patch_size``: output
    tile side P. ``projection``: ``"ternary"`` or ``"gaussian"`` (dense, an ablation). ``centre``:
    subtract the per-pixel channel mean before hashing. ``grouping``: ``"lsh"``, ``"random"`` (a
    control: LSH's bucket count per patch, random groups) or a :class:`haste.grouping.Grouping`
    (``docs/extending.md``). ``skip``: leading convs left dense (the
    stem by default, as in the paper), or their names / glob patterns. ``include_pointwise``: also
    convert 1x1 convs. Invalid values are refused here, when the settings are made.
    """

    sparsity: float = 2 / 3
    patch_size: int = 3
    projection: str = "ternary"
    centre: bool = True
    grouping: Any = "lsh"  # a name, or a haste.grouping.Grouping (which imports this module)
    skip: int | tuple[str, ...] = 1
    include_pointwise: bool = False

    def __post_init__(self):
        for field in fields(self):
            object.__setattr__(self, field.name, CHECKS[field.name](getattr(self, field.name)))

    def layer_options(self) -> dict:
        """The settings a ``HasteConv2d`` takes (all but ``skip`` and ``include_pointwise``)."""
        return {name: getattr(self, name) for name in LAYER_SETTINGS}


CHECKS = {
    "sparsity": check_sparsity,
    "patch_size": check_patch_size,
    "projection": check_projection,
    "centre": check_centre,
    "grouping": check_grouping,
    "skip": check_skip,
    "include_pointwise": check_include_pointwise,
}
LAYER_SETTINGS = ("sparsity", "patch_size", "projection", "centre", "grouping")
DEFAULTS = HasteSettings()  # the paper's settings, every default of a layer and a conversion
