"""From result rows to what the tables report: means over seeds, drops at matched FLOPs, operating
points, and whether a grid of L brackets its operating point."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .result_rows import PER_IMAGE_COLUMN, REDUCTION_COLUMNS, RESULT_COLUMNS, RUN_COLUMNS, normal_transform

# columns of a summary that are one value per model and setting, taken from the group's first row
# that has one rather than grouped by: rows written before a column was added have none
SUMMARY_CONSTANTS = ("flops_dense", "flops_dense_convlinear", "transform")


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over hyperplane seeds, one row per model, settings and L.

    The seeds of one measurement are averaged whichever code or machine computed them (each row
    records both); rows merged from an older CSV (:func:`haste.repro.result_rows.merge_rows`) join
    the new ones. Columns beyond the result columns (a sweep's labels, such as the ablations'
    ``variant`` or the checkpoints' ``epochs``) are kept as keys, after the counts of seeds; the
    per-image hits are a measurement of one seed, and left out.
    """
    labels = [c for c in results.columns if c not in RESULT_COLUMNS and c != PER_IMAGE_COLUMN]
    keys = [
        c
        for c in RESULT_COLUMNS
        if c
        not in (
            "seed",
            "accuracy",
            "accuracy_drop",
            "flops_haste",
            "flops_overhead",
            "flops_filter_merge",
            *REDUCTION_COLUMNS,
            "commit",
            "haste_version",
            "code_fingerprint",
            *RUN_COLUMNS,  # recorded per row; seeds computed elsewhere are averaged alike
        )
    ]
    by = [c for c in keys if c not in SUMMARY_CONSTANTS]
    haste_rows = results.dropna(subset=["num_hyperplanes"])
    transform = haste_rows.get("transform", pd.Series(None, index=haste_rows.index, dtype=object))
    haste_rows = haste_rows.assign(_transform=[normal_transform(t) for t in transform])
    metrics = ["accuracy", "accuracy_drop", *REDUCTION_COLUMNS]
    grouped = haste_rows.groupby([*by, *labels, "_transform"], dropna=False)
    constants = grouped[[c for c in SUMMARY_CONSTANTS if c in keys]].first()
    spread = grouped[metrics].std(ddof=0).add_suffix("_std")
    summary = constants.join(grouped[metrics].mean()).join(spread).join(grouped.size().rename("seeds"))
    summary = summary.reset_index()
    return summary[[*keys, *metrics, *spread.columns, "seeds", *labels]]


def drop_at_reduction(summary: pd.DataFrame, reductions: list[float], by: str = "variant") -> pd.DataFrame:
    """Mean accuracy drop of each ``by`` group at the given FLOPs reductions (percent).

    Settings compared at equal L are not compared at equal cost: one that merges more saves more
    and loses more. This interpolates each group's (reduction, drop) points, linearly between its
    measured L; outside the measured range the drop is NaN rather than extrapolated.
    """
    rows = []
    for key, group in summary.groupby(by, sort=False):
        group = group.sort_values("flops_reduction")
        low, high = group.flops_reduction.min(), group.flops_reduction.max()
        for target in reductions:
            inside = low <= target <= high
            drop = np.interp(target, group.flops_reduction, group.accuracy_drop) if inside else np.nan
            rows.append({by: key, "flops_reduction": target, "accuracy_drop": float(drop)})
    return pd.DataFrame(rows)


def operating_points(summary: pd.DataFrame, max_drop: dict[str, float]) -> pd.DataFrame:
    """Per model, the L with the largest FLOPs reduction whose mean accuracy drop is <= max_drop.

    ``bracketed``: whether a measured L of larger reduction exceeds the drop; where none does, the
    point is only the grid's edge, and a warning says so (see :func:`grid_status`).
    """
    statuses = warn_unbracketed(summary, max_drop)
    chosen = []
    for model_name, group in summary.groupby("model"):
        limit = max_drop.get(model_name)
        if limit is None:
            continue
        eligible = group[group.accuracy_drop <= limit]
        if not eligible.empty:
            chosen.append(eligible.flops_reduction.idxmax())
    # rows selected from the summary keep its column types, even when none is chosen
    points = summary.loc[chosen].reset_index(drop=True)
    return points.assign(bracketed=points.model.map(statuses).eq("bracketed").astype(bool))


def grid_status(group: pd.DataFrame, max_drop: float) -> str:
    """Whether one model's sweep summary brackets its operating point (largest FLOPs reduction with
    a mean drop <= ``max_drop``): ``"bracketed"`` when a measured L of larger reduction exceeds the
    drop; ``"within at every L"`` when none does (the grid's edge is no operating point);
    ``"above at every L"`` when no L is within the drop."""
    eligible = group[group.accuracy_drop <= max_drop]
    if eligible.empty:
        return "above at every L"
    if (group.flops_reduction > eligible.flops_reduction.max()).any():
        return "bracketed"
    return "within at every L"


def next_hyperplanes(summary: pd.DataFrame, max_drop: float, step: int = 2) -> int | None:
    """The rule that extends a grid that does not bracket the operating point: ``step`` below its
    smallest L when the drop is within ``max_drop`` at every L, ``step`` above its largest when it
    exceeds it at every L; ``None`` when bracketed, or when L would fall below 1."""
    status = grid_status(summary, max_drop)
    if status == "bracketed":
        return None
    if status == "above at every L":
        return int(summary.num_hyperplanes.max()) + step
    smallest = int(summary.num_hyperplanes.min()) - step
    return smallest if smallest >= 1 else None


def warn_unbracketed(summary: pd.DataFrame, max_drop: dict[str, float]) -> dict[str, str]:
    """:func:`grid_status` per model; a warning for every model whose grid does not bracket its point."""
    statuses = {}
    for model_name, group in summary.groupby("model"):
        if model_name not in max_drop:
            continue
        limit = max_drop[model_name]
        status = statuses[model_name] = grid_status(group, limit)
        grid = group.get("num_hyperplanes", pd.Series(dtype=float)).dropna()
        low = f" (down to L={grid.min():g})" if len(grid) else ""
        high = f" (up to L={grid.max():g})" if len(grid) else ""
        if status == "within at every L":
            warnings.warn(
                f"{model_name}: the mean drop is within {limit} pp at every L measured{low}: its "
                "operating point lies beyond the grid, and the point reported is only the grid's edge "
                "(extend the grid to smaller L)",
                stacklevel=3,
            )
        elif status == "above at every L":
            warnings.warn(
                f"{model_name}: the mean drop exceeds {limit} pp at every L measured{high}: no operating "
                "point in the grid (extend it to larger L)",
                stacklevel=3,
            )
    return statuses
