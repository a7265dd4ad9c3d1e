"""The reproduction's tables, assembled from result rows and summaries (never typed by hand)."""

from __future__ import annotations

import pandas as pd

from .. import conventions
from .analysis import operating_points
from .paper import PAPER_POINTS, allowed_drops
from .result_rows import RESULT_COLUMNS


def main_table(results: pd.DataFrame, summary: pd.DataFrame, convention: str | None = None) -> pd.DataFrame:
    """Per model: its dense baseline, its operating point (see :func:`operating_points`, within the
    paper's drop) and the paper's numbers next to it.

    ``convention`` (a column of :data:`CONVENTIONS`, e.g. the one :func:`closest_convention` picks)
    adds the reduction at the same operating point under that accounting, and names it.
    """
    if convention is not None and pd.isna(convention):  # read back from a table written without one
        convention = None
    # the paper's points of the summary's dataset only (its CIFAR-10 table, or its ImageNet table)
    datasets = {name.split("/")[0] for name in summary.model}
    paper = PAPER_POINTS[PAPER_POINTS.dataset.isin(datasets)].set_index("model")
    max_drop = allowed_drops(summary.model.unique())
    points = operating_points(summary, max_drop).set_index("model")
    baseline = results[results.num_hyperplanes.isna()].set_index("model")
    table = pd.DataFrame(
        {
            "weights_sha256": baseline.weights_sha256,
            "baseline_accuracy": baseline.accuracy,
            "max_drop_allowed": pd.Series(max_drop),
            "num_hyperplanes": points.num_hyperplanes,
            "haste_accuracy": points.accuracy,
            "haste_accuracy_std": points.accuracy_std,
            "accuracy_drop": points.accuracy_drop,
            "flops_reduction": points.flops_reduction,
            "flops_reduction_std": points.flops_reduction_std,
            "flops_reduction_no_overhead": points.flops_reduction_no_overhead,
            "seeds": points.seeds,
            # False: the drop limit is not crossed inside the L grid (the point is its edge, or none)
            "bracketed": points.bracketed.reindex(baseline.index, fill_value=False),
            "images": baseline.images,
            "paper_baseline": paper.baseline,
            "paper_accuracy_drop": paper.accuracy_drop,
            "paper_flops_reduction": paper.flops_reduction,
        }
    )
    table["convention"] = convention
    table["flops_reduction_convention"] = points[convention] if convention else float("nan")
    table["flops_reduction_convention_std"] = points[f"{convention}_std"] if convention else float("nan")
    return table.rename_axis("model").reset_index()


def patch_size_table(summaries: list[pd.DataFrame]) -> pd.DataFrame:
    """The operating point of every model in each sweep summary (one per patch size), side by side."""
    allowed = allowed_drops(pd.concat(summaries).model.unique())
    table = pd.concat([operating_points(summary, allowed) for summary in summaries])
    columns = [
        "model",
        "weights_sha256",
        "patch_size",
        "max_drop_allowed",
        "num_hyperplanes",
        "accuracy",
        "accuracy_std",
        "accuracy_drop",
        "flops_reduction",
        "flops_reduction_std",
        "flops_reduction_no_overhead",
        "seeds",
        "bracketed",
        "images",
    ]
    table = table.assign(max_drop_allowed=table.model.map(allowed))[columns]
    return table.sort_values(["model", "patch_size"], ignore_index=True)


# The accounting conventions of every result row: the column that holds the reduction, and what
# it counts (haste.conventions).
CONVENTIONS = {convention.name: convention.label for convention in conventions.CONVENTIONS}


def with_convlinear_baseline(rows: pd.DataFrame, dense_convlinear: dict[str, float]) -> pd.DataFrame:
    """``rows`` (result rows) with the conv + linear conventions filled in where they are missing.

    They follow from the row and the architecture alone (:func:`haste.conventions.dense_and_spent`).
    ``dense_convlinear``: per model, ``haste.report.dense_flops(...)[CONV_LINEAR]``. The
    conventions that leave out some overhead terms but not all need those terms measured, and stay
    missing.
    """
    rows = rows.reindex(columns=list(dict.fromkeys([*RESULT_COLUMNS, *rows.columns]))).copy()
    known = rows.model.map(dense_convlinear).astype(float)
    rows["flops_dense_convlinear"] = rows.flops_dense_convlinear.astype(float).fillna(known)
    haste = rows.flops_haste.fillna(rows.flops_dense)
    overhead = rows.flops_overhead.fillna(0.0)
    for convention in conventions.CONVENTIONS:
        if convention.baseline != conventions.CONVLINEAR_BASELINE or not convention.from_totals:
            continue
        dense, spent = conventions.dense_and_spent(
            convention, rows.flops_dense, haste, overhead, rows.flops_dense_convlinear
        )
        derived = conventions.reduction(dense, spent).where(rows.num_hyperplanes.notna(), 0.0)
        rows[convention.name] = rows[convention.name].where(rows[convention.name].notna(), derived)
    return rows


def reconciliation_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model, patch size and accounting convention: the best FLOPs reduction whose mean drop is
    within the paper's, with its L, drop and std, next to the paper's reduction.

    ``bracketed`` is False when the operating point is the grid's smallest L (the limit may be met
    at a smaller L outside the grid) or no L qualifies: such a point is not an operating point.
    """
    paper = PAPER_POINTS.set_index("model")
    allowed = allowed_drops(summary.model.unique())
    rows = []
    for (model, patch_size), group in summary.groupby(["model", "patch_size"]):
        eligible = group[group.accuracy_drop <= allowed[model]]
        for column, meaning in CONVENTIONS.items():
            row = {"model": model, "patch_size": patch_size, "convention": column, "meaning": meaning}
            row["max_drop_allowed"] = allowed[model]
            if eligible.empty:
                rows.append({**row, "bracketed": False})
                continue
            if eligible[column].isna().all():  # not measured at this patch size (older rows)
                rows.append({**row, "bracketed": False})
                continue
            best = eligible.loc[eligible[column].idxmax()]
            rows.append(
                {
                    **row,
                    "num_hyperplanes": best.num_hyperplanes,
                    "accuracy_drop": best.accuracy_drop,
                    "accuracy_std": best.accuracy_std,
                    "flops_reduction": best[column],
                    "flops_reduction_std": best[f"{column}_std"],
                    "bracketed": bool((group.num_hyperplanes < best.num_hyperplanes).any()),
                    "seeds": best.seeds,
                    "images": best.images,
                    "weights_sha256": best.weights_sha256,
                    "paper_flops_reduction": paper.flops_reduction.get(model),
                }
            )
    return pd.DataFrame(rows)


def closest_convention(reconciliation: pd.DataFrame, patch_size: int, available) -> str | None:
    """The accounting convention (among ``available`` columns) whose operating points at
    ``patch_size`` come closest to the paper's reductions (mean absolute difference over models);
    None when no operating point there is bracketed by its grid."""
    rows = reconciliation[
        (reconciliation.patch_size == patch_size)
        & reconciliation.bracketed
        & reconciliation.convention.isin(list(available))
    ]
    if rows.empty:
        return None
    gap = (rows.flops_reduction - rows.paper_flops_reduction).abs().groupby(rows.convention).mean()
    return str(gap.idxmin())


def reconciliation_gap(reconciliation: pd.DataFrame, patch_size: int) -> pd.DataFrame:
    """Per model of a reconciliation table: its operating point counted in full (all overhead, the
    whole model) at ``patch_size``, and the reading (patch size and convention) whose operating
    point comes closest to the paper's reduction, each with its gap to the paper (ours - paper).
    Bracketed operating points only; a model without one counted in full at ``patch_size`` is left out."""
    rows = []
    bracketed = reconciliation[reconciliation.bracketed.astype(bool)]
    for model, group in bracketed.groupby("model", sort=False):
        paper = group.paper_flops_reduction.iloc[0]
        full = group[(group.convention == "flops_reduction") & (group.patch_size == patch_size)]
        if full.empty or pd.isna(paper):
            continue
        closest = group.loc[(group.flops_reduction - paper).abs().idxmin()]
        rows.append(
            {
                "model": model,
                "paper": paper,
                "full": full.flops_reduction.iloc[0],
                "full_gap": full.flops_reduction.iloc[0] - paper,
                "closest_patch_size": int(closest.patch_size),
                "closest_convention": closest.convention,
                "closest": closest.flops_reduction,
                "closest_gap": closest.flops_reduction - paper,
                "closest_num_hyperplanes": int(closest.num_hyperplanes),
            }
        )
    return pd.DataFrame(rows)


def quality_trend(points: pd.DataFrame, columns, at: float) -> pd.DataFrame:
    """Per reduction column of ``points`` (operating points of checkpoints of one architecture): the
    least-squares line of the reduction against the checkpoint's dense accuracy, its correlation,
    and the line's value at dense accuracy ``at`` (an extrapolation when ``at`` lies outside the
    checkpoints' accuracies)."""
    x = points.baseline_accuracy.astype(float)
    rows = []
    for column in columns:
        y = points[column].astype(float)
        spread = ((x - x.mean()) ** 2).sum()
        slope = (
            ((x - x.mean()) * (y - y.mean())).sum() / spread if len(x) > 1 and spread > 0 else float("nan")
        )
        intercept = y.mean() - slope * x.mean()
        rows.append(
            {
                "convention": column,
                "checkpoints": len(points),
                "baseline_low": x.min(),
                "baseline_high": x.max(),
                "slope": slope,  # pp of reduction per pp of dense accuracy
                "correlation": x.corr(y),
                "at_baseline": at,
                "extrapolated": not (x.min() <= at <= x.max()),
                "flops_reduction_at_baseline": intercept + slope * at,
            }
        )
    return pd.DataFrame(rows)
