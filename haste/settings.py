"""The HASTE settings, spelled once: what ``convert`` accepts, what results record, what the CLI exposes.

``HasteSettings`` holds everything but ``L`` (``num_hyperplanes``, steered at run time) and the
hyperplane seed. Every value is checked when it is set, by the functions below, which
``HasteConv2d``'s attributes and the command line use too: one set of rules and messages.
"""

from __future__ import annotations

import numbers
import os
import sys
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


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning name the first line outside haste and torch (an
    ``nn.Module.__setattr__`` or ``__call__`` between them) and outside the ``__init__`` a dataclass
    generates, however deep the warning is raised: call it in the function that calls ``warnings.warn``."""
    torch_file = getattr(sys.modules.get("torch"), "__file__", None)
    inside = (_PACKAGE, *([os.path.dirname(torch_file)] if torch_file else []))
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and (
        frame.f_code.co_filename.startswith(inside) or frame.f_code.co_filename == "<string>"
    ):
        frame, level = frame.f_back, level + 1
    return level


SEED_LIMIT = 2**64  # torch.Generator.manual_seed takes seeds below this
LAYER_SEED_STRIDE = 10_000  # convert: layer i draws from seed * LAYER_SEED_STRIDE + i


def check_seed(value) -> int:
    if not is_int(value) or not 0 <= value < SEED_LIMIT:
        raise ValueError(f"seed must be an integer in [0, 2**64), not {value!r}")
    return int(value)


def check_model_seed(seed, num_layers: int) -> int:
    """A seed of :func:`haste.convert`, whose layer ``i`` draws from ``seed * 10,000 + i``."""
    seed = check_seed(seed)
    if seed * LAYER_SEED_STRIDE + num_layers - 1 >= SEED_LIMIT:
        raise ValueError(
            f"seed {seed}: too large: layer i draws its hyperplanes from seed * 10,000 + i, which "
            "torch's generators take only below 2**64"
        )
    return seed


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
            f"execution={value!r} is deprecated: it is called {new!r} now",
            DeprecationWarning,
            stacklevel=user_stacklevel(),
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
