"""The accounting conventions: which dense baseline a FLOPs reduction is taken against, and which
of HASTE's overhead terms it counts. Every reduction a report gives, every result column that holds
one, and every table's and README's label of one comes from :data:`CONVENTIONS`.

A reduction is ``100 * (1 - spent / dense)``. The two baselines: fvcore's count of the whole model,
and its convolutions and linear layers alone (the layers outside them, BN, pooling and the rest,
run dense and unchanged under HASTE, so they leave both ``dense`` and ``spent``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .cost import OVERHEAD_TERMS

MODEL_BASELINE = "whole model"
CONVLINEAR_BASELINE = "conv + linear"


@dataclass(frozen=True)
class Convention:
    """One way of counting a FLOPs reduction.

    ``name``: the result column (and report total) holding it. ``baseline``: :data:`MODEL_BASELINE`
    or :data:`CONVLINEAR_BASELINE`. ``counted``: the overhead terms it counts (all of
    :data:`haste.cost.OVERHEAD_TERMS` or a part). ``label``: the long label of tables and figures
    (baseline, then overhead); ``short``: the README's. ``colour``: the figures' (blues for the
    whole model, oranges for conv + linear, lighter as less overhead is counted). ``headline``: one
    of the two reductions a result row gives first.
    """

    name: str
    baseline: str
    counted: tuple[str, ...]
    label: str
    short: str
    colour: str
    headline: bool = False

    @property
    def uncounted(self) -> tuple[str, ...]:
        return tuple(term for term in OVERHEAD_TERMS if term not in self.counted)

    @property
    def from_totals(self) -> bool:
        """Whether a row's totals give it (all overhead counted, or none), without the terms."""
        return self.counted in ((), OVERHEAD_TERMS)


_NO_FILTER_MERGE = tuple(term for term in OVERHEAD_TERMS if term != "filter_merge")

CONVENTIONS = (
    Convention(
        "flops_reduction",
        MODEL_BASELINE,
        OVERHEAD_TERMS,
        "whole model (fvcore), all overhead",
        "whole model, all overhead",
        "#08519C",
        headline=True,
    ),
    Convention(
        "flops_reduction_no_filter_merge",
        MODEL_BASELINE,
        _NO_FILTER_MERGE,
        "whole model (fvcore), overhead without the filter merge",
        "whole model, no filter merge",
        "#3182BD",
    ),
    Convention(
        "flops_reduction_no_overhead",
        MODEL_BASELINE,
        (),
        "whole model (fvcore), no overhead",
        "whole model, no overhead",
        "#6BAED6",
        headline=True,
    ),
    Convention(
        "flops_reduction_convlinear",
        CONVLINEAR_BASELINE,
        OVERHEAD_TERMS,
        "conv + linear only, all overhead",
        "conv + linear, all overhead",
        "#A63603",
    ),
    Convention(
        "flops_reduction_convlinear_no_filter_merge",
        CONVLINEAR_BASELINE,
        _NO_FILTER_MERGE,
        "conv + linear only, overhead without the filter merge",
        "conv + linear, no filter merge",
        "#E6550D",
    ),
    Convention(
        "flops_reduction_convlinear_no_overhead",
        CONVLINEAR_BASELINE,
        (),
        "conv + linear only, no overhead",
        "conv + linear, no overhead",
        "#FD8D3C",
    ),
)
BY_NAME = {convention.name: convention for convention in CONVENTIONS}
HEADLINES = tuple(convention.name for convention in CONVENTIONS if convention.headline)
# the total of a result row that holds each baseline's dense count
BASELINE_COLUMNS = {MODEL_BASELINE: "flops_dense", CONVLINEAR_BASELINE: "flops_dense_convlinear"}
# the whole-model totals a result row holds, in the rows' column order
TOTAL_COLUMNS = (
    BASELINE_COLUMNS[MODEL_BASELINE],
    "flops_haste",
    "flops_overhead",
    *HEADLINES,
    "flops_filter_merge",
    BASELINE_COLUMNS[CONVLINEAR_BASELINE],
    *(c.name for c in CONVENTIONS if not c.headline),
)


def dense_and_spent(
    convention: Convention, dense, haste, overhead, dense_convlinear, terms: Mapping | None = None
):
    """``(dense, spent)`` of a model under ``convention``: its dense count, what it spent under
    HASTE (``haste``, of which ``overhead`` is overhead, per term in ``terms``), and its dense
    convolutions and linear layers (``dense_convlinear``). Plain numbers or pandas columns alike."""
    if not convention.counted:
        uncounted = overhead
    else:
        uncounted = sum((terms or {}).get(term, 0.0) for term in convention.uncounted)
    outside = dense - dense_convlinear if convention.baseline == CONVLINEAR_BASELINE else 0.0
    return dense - outside, haste - outside - uncounted


def reduction(dense, spent):
    """The reduction in percent, ``100 * (1 - spent / dense)`` (plain numbers or pandas columns)."""
    return 100.0 * (1.0 - spent / dense)
