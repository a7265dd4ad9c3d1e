"""Figures of the reproduction: a sweep drawn as a trade-off curve, and saving PNG and PDF byte-stably."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def draw_sweep(
    ax,
    summary: pd.DataFrame,
    x: str = "flops_reduction",
    color=None,
    label: str | None = None,
    operating_hyperplanes: int | None = None,
    label_every_point: bool = False,
) -> None:
    """One sweep (rows of a ``summarize`` table over L) as accuracy drop against ``x`` on ``ax``.

    Error bars: std over hyperplane seeds on both axes. L is written at the curve's ends, or at every
    point (``label_every_point``); the operating point (``operating_hyperplanes``) is ringed instead,
    so give its L in ``label``.
    """
    curve = summary.sort_values("num_hyperplanes")
    ax.errorbar(
        curve[x],
        curve.accuracy_drop,
        xerr=curve[x + "_std"],
        yerr=curve.accuracy_std,
        marker="o",
        ms=4,
        capsize=2,
        color=color,
        label=label,
    )
    for _, row in (curve if label_every_point else curve.iloc[[0, -1]]).iterrows():
        if row.num_hyperplanes != operating_hyperplanes:
            ax.annotate(
                f"L={int(row.num_hyperplanes)}",
                (row[x], row.accuracy_drop),
                fontsize=7,
                color=color,
                xytext=(3, -10),
                textcoords="offset points",
            )
    point = curve[curve.num_hyperplanes == operating_hyperplanes]
    ax.scatter(
        point[x], point.accuracy_drop, s=140, facecolors="none", edgecolors=color, linewidths=1.5, zorder=4
    )


def save_figure(fig, directory: str | Path, name: str, dpi: int = 150) -> list[Path]:
    """Write ``<directory>/<name>.png`` and ``.pdf``; no timestamps, so re-runs diff clean."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        path = directory / f"{name}.{suffix}"
        fig.savefig(path, dpi=dpi, metadata=metadata)
        paths.append(path)
    return paths
