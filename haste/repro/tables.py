"""The reproduction's tables, assembled from result rows and summaries (never typed by hand)."""

from __future__ import annotations

import pandas as pd

from .experiments import operating_points
from .paper import PAPER_POINTS, allowed_drops


def main_table(results: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per model: its dense baseline, its operating point (see :func:`operating_points`, within the
    paper's drop) and the paper's numbers next to it."""
    paper = PAPER_POINTS.set_index("model")
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
            "images": baseline.images,
            "paper_baseline": paper.baseline,
            "paper_accuracy_drop": paper.accuracy_drop,
            "paper_flops_reduction": paper.flops_reduction,
        }
    )
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
        "images",
    ]
    table = table.assign(max_drop_allowed=table.model.map(allowed))[columns]
    return table.sort_values(["model", "patch_size"], ignore_index=True)
