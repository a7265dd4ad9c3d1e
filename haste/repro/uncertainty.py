"""Uncertainty over images of accuracy drops, from the per-image hits of a sweep.

A sweep run with ``per_image=True`` stores which images each row classified correctly. The drop of
HASTE against the dense model on the same images is then a paired comparison: per image,
``x_i = dense_i - mean over seeds of haste_i``; the mean drop is ``mean(x)`` and its standard error
over images ``std(x) / sqrt(n)``. That is the noise of the choice of images (1,300 here), which the
standard deviation over hyperplane seeds does not show. A bootstrap over images, resampling the same
images for every L, gives intervals for the drops and for the FLOPs reduction at a given drop.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ..settings import HasteSettings
from .result_rows import PER_IMAGE_COLUMN, unpack_correct

_SETTINGS = [field.name for field in dataclasses.fields(HasteSettings)]


def _hits(row) -> np.ndarray:
    return unpack_correct(row[PER_IMAGE_COLUMN], int(row["images"]))


def _per_image_drops(results: pd.DataFrame) -> list[tuple[dict, np.ndarray, list[float]]]:
    """Per experiment (model, weights, transform, settings): its key, the per-image drops ``[L, n]``
    (fractions, in increasing ``L``) and the L values."""
    if PER_IMAGE_COLUMN not in results or results[PER_IMAGE_COLUMN].isna().any():
        raise ValueError(f"every row needs {PER_IMAGE_COLUMN}: run the sweep with per_image=True")
    dense_keys = ["model", "weights_sha256", "images", "transform"]
    experiments = []
    for dense_key, rows in results.groupby(dense_keys, dropna=False, sort=False):
        dense = rows[rows.num_hyperplanes.isna()]
        if len(dense) != 1:
            raise ValueError(f"{dense_key}: expected one dense row, found {len(dense)}")
        dense_hits = _hits(dense.iloc[0]).astype(float)
        haste_rows = rows.dropna(subset=["num_hyperplanes"])
        for settings, group in haste_rows.groupby(_SETTINGS, dropna=False, sort=False):
            levels = sorted(group.num_hyperplanes.unique())
            drops = np.stack(
                [
                    dense_hits
                    - np.mean([_hits(row) for _, row in group[group.num_hyperplanes == L].iterrows()], 0)
                    for L in levels
                ]
            )
            key = {**dict(zip(dense_keys, dense_key)), **dict(zip(_SETTINGS, settings))}
            experiments.append((key, drops, levels))
    return experiments


def paired_drop_uncertainty(results: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per experiment and L: the mean drop over seeds (pp), its paired standard error over images
    (``accuracy_drop_se``) and a 95% bootstrap interval over images (``accuracy_drop_ci_low/high``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, drops, levels in _per_image_drops(results):
        n = drops.shape[1]
        resampled = drops[:, rng.integers(0, n, size=(resamples, n))].mean(-1)  # [L, resamples]
        for index, L in enumerate(levels):
            rows.append(
                {
                    **key,
                    "num_hyperplanes": L,
                    "accuracy_drop": 100 * drops[index].mean(),
                    "accuracy_drop_se": 100 * drops[index].std(ddof=1) / np.sqrt(n),
                    "accuracy_drop_ci_low": 100 * np.percentile(resampled[index], 2.5),
                    "accuracy_drop_ci_high": 100 * np.percentile(resampled[index], 97.5),
                }
            )
    return pd.DataFrame(rows)


def _bracket(reductions: np.ndarray, drops: np.ndarray, max_drop: float) -> tuple[int, int] | None:
    """Indices of the two measured points around the first rise of the drop above ``max_drop``,
    going to larger reductions; None if the grid does not bracket it."""
    order = np.argsort(reductions)
    if drops[order[0]] > max_drop:
        return None
    above = [position for position, index in enumerate(order) if drops[index] > max_drop]
    return (int(order[above[0] - 1]), int(order[above[0]])) if above else None


def crossing(reductions, drops, max_drop: float) -> float:
    """The FLOPs reduction at which the drop first exceeds ``max_drop``, going to larger reductions:
    linear between the two measured points around it; NaN if the grid does not bracket it (never
    the grid's edge as if it were the crossing)."""
    reductions, drops = np.asarray(reductions, dtype=float), np.asarray(drops, dtype=float)
    bracket = _bracket(reductions, drops, max_drop)
    if bracket is None:
        return float("nan")
    low, high = bracket
    fraction = (max_drop - drops[low]) / (drops[high] - drops[low])
    return float(reductions[low] + fraction * (reductions[high] - reductions[low]))


def _matching(summary: pd.DataFrame, key: dict) -> pd.DataFrame:
    match = np.ones(len(summary), dtype=bool)
    for column, value in key.items():
        if column in summary and column != "images":
            same = summary[column].to_numpy() == value
            match &= same | (summary[column].isna().to_numpy() & pd.isna(value))
    return summary[match]


def operating_point_at_drop(
    results: pd.DataFrame,
    summary: pd.DataFrame,
    max_drop: float,
    resamples: int = 2000,
    seed: int = 0,
    reduction: str = "flops_reduction",
) -> pd.DataFrame:
    """Per experiment: the FLOPs reduction at a mean drop of ``max_drop`` pp (interpolated between the
    two measured L around it) with a 95% bootstrap interval over images.

    The reductions are the summary's means over images and seeds; resampling moves only the drops.
    ``outside_grid``: the fraction of resamples whose crossing the grid does not bracket; the
    interval covers the others only, so widen the grid when it is not small.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for key, drops, levels in _per_image_drops(results):
        x = _matching(summary, key).set_index("num_hyperplanes").loc[levels, reduction].to_numpy()
        n = drops.shape[1]
        mean_drops = 100 * drops.mean(-1)
        boot = np.array(
            [crossing(x, 100 * drops[:, rng.integers(0, n, n)].mean(-1), max_drop) for _ in range(resamples)]
        )
        inside = boot[~np.isnan(boot)]
        bracket = _bracket(x, mean_drops, max_drop)
        rows.append(
            {
                **key,
                "max_drop": max_drop,
                reduction: crossing(x, mean_drops, max_drop),
                f"{reduction}_ci_low": np.percentile(inside, 2.5) if len(inside) else np.nan,
                f"{reduction}_ci_high": np.percentile(inside, 97.5) if len(inside) else np.nan,
                "outside_grid": float(np.isnan(boot).mean()),
                "between_L": "" if bracket is None else f"{levels[bracket[1]]:g}-{levels[bracket[0]]:g}",
                "grid": " ".join(f"{L:g}" for L in levels),
            }
        )
    return pd.DataFrame(rows)
