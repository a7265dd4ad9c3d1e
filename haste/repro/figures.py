"""The reproduction's figures, each drawn from the rows of committed CSVs (``results/*.csv``).

Each function takes DataFrames as read from those CSVs and returns a matplotlib Figure in the shared
style of :mod:`haste.repro.plotting`; :func:`draw` reads a results folder for one figure by name, as
the notebooks and ``tests/test_figures.py`` do. From the command line, every figure of a results
folder is redrawn from its CSVs, with no measurement:

    python -m haste.repro.figures [--results results] [NAME ...]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from haste.conventions import HEADLINES
from haste.repro import analysis, paper, plotting, tables
from haste.repro.figures_baselines import baselines_tradeoff
from haste.repro.plotting import (
    CONTEXT_COLOUR,
    CONVENTION_COLOURS,
    LIMIT_COLOUR,
    PAPER_MARKER,
    PATCH_COLOURS,
    SMALLEST_FONT,
    count,
    display_name,
    draw_limit,
    draw_sweep,
    drop_axis,
    model_colour,
    new_figure,
    place_labels,
    styled,
    suptitle,
)

# the legend entries of the marks every sweep figure shares
_RING = Line2D([], [], ls="none", marker="o", ms=11, mfc="none", mec="0.3", mew=1.5)
_LIMIT = Line2D([], [], color=LIMIT_COLOUR, ls="--", lw=0.9)
_STAR = Line2D([], [], ls="none", marker="*", ms=13, mfc="gold", mec="black", mew=0.8)
_NOTHING = Patch(visible=False)  # a legend line of text only


def _allowed_text(model_name: str, allowed: float) -> str:
    known = paper.PAPER_POINTS.set_index("model").accuracy_drop.dropna()
    return f"{allowed:g} pp, " + ("the paper's drop" if model_name in known.index else "the default")


def _operating_points(summary: pd.DataFrame) -> pd.DataFrame:
    return analysis.operating_points(summary, paper.allowed_drops(summary.model.unique()))


@styled
def cifar10_tradeoff(summary: pd.DataFrame, overhead: bool = True) -> Figure:
    """Accuracy drop against FLOPs reduction over L, one panel per CIFAR-10 model, from the sweep
    summary (``cifar10_sweep_summary.csv``): the operating point ringed, the model's allowed drop
    dashed, the paper's point of that model (CIFAR-10 only) starred, the other models in grey."""
    summary = summary[summary.model.str.startswith("cifar10/")]
    column = "flops_reduction" if overhead else "flops_reduction_no_overhead"
    names = sorted(summary.model.unique())
    allowed = paper.allowed_drops(names)
    points = _operating_points(summary).set_index("model")
    known = paper.PAPER_POINTS[paper.PAPER_POINTS.dataset == "cifar10"].set_index("model")
    columns = min(3, len(names))
    rows = math.ceil(len(names) / columns)
    fig = new_figure(max(6.5, 3.2 * columns + 0.9), 2.75 * rows + 1.3)
    axes = np.atleast_1d(fig.subplots(rows, columns, sharex=True, sharey=True, squeeze=False)).ravel()
    labels: dict = {}
    for ax, name in zip(axes, names):
        for other, group in summary.groupby("model"):
            if other != name:  # for comparison: where the other models run
                curve = group.sort_values("num_hyperplanes")
                ax.plot(curve[column], curve.accuracy_drop, color=CONTEXT_COLOUR, lw=0.9, zorder=0.5)
        group = summary[summary.model == name]
        chosen = points.num_hyperplanes.get(name)
        chosen = None if chosen is None or pd.isna(chosen) else int(chosen)
        labels[ax] = draw_sweep(ax, group, column, model_colour(name), None, chosen)
        draw_limit(ax, allowed[name])
        if name in known.index:
            point = known.loc[name]
            ax.scatter(point.flops_reduction, point.accuracy_drop, zorder=5, **PAPER_MARKER)
        if chosen is None:
            detail = f"no L within {allowed[name]:g} pp"
        else:
            row = points.loc[name]
            edge = "" if row.bracketed else ", grid edge"
            detail = f"L = {chosen}: {row[column]:.1f}% at {row.accuracy_drop:.2f} pp{edge}"
        ax.set_title(f"{display_name(name)}\n{detail}", fontsize=9)
        drop_axis(ax)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax in axes:
        if not ax.get_subplotspec().is_first_col():
            ax.set_ylabel("")
        if ax.get_subplotspec().is_last_row() or ax is axes[len(names) - 1]:
            ax.set_xlabel("FLOPs reduction (%)")
    seeds = int(summary.seeds.max()) if len(summary) else 0
    fig.legend(
        [
            Line2D([], [], color="0.3", marker="o", ms=4),
            _RING,
            _LIMIT,
            _STAR,
            Line2D([], [], color=CONTEXT_COLOUR, lw=0.9),
        ],
        [
            f"HASTE over L (written at the curve's ends): mean ± std over {count(seeds, 'seed')}",
            "operating point: the largest reduction within the allowed drop",
            "allowed drop: the paper's for its two models, else 1.25 pp (value at the right)",
            "the paper's published point",
            "the other models, for comparison",
        ],
        loc="outside lower center",
        ncol=2 if columns > 1 else 1,
    )
    images = int(summary.images.max()) if len(summary) else 0
    counted = "hashing and merging overhead counted" if overhead else "overhead not counted"
    suptitle(
        fig, f"HASTE on CIFAR-10 ({images:,} test images): accuracy drop against FLOPs reduction ({counted})"
    )
    place_labels([label for texts in labels.values() for label in texts])
    return fig


@styled
def patch_compression(histogram: pd.DataFrame) -> Figure:
    """Per layer, the share of its patches by the fraction of input channels kept (buckets /
    channels), from ``patch_compression.csv``; log colour scale, each layer's mean marked."""
    layers = list(dict.fromkeys(histogram.layer))
    counts = histogram.pivot(index="bin_left", columns="layer", values="patches")[layers].sort_index()
    share = (counts / counts.sum()).to_numpy()
    edges = np.r_[counts.index.to_numpy(), histogram.bin_right.max()]
    first = histogram.iloc[0]
    images = int(first.images)
    stages = pd.Series([layer.split(".")[0] for layer in layers])
    # wide enough for each stage's label over its columns
    width = max(6.5, 0.27 * len(layers), 1.5 * stages.nunique()) + 2.2
    fig = new_figure(width, 5.6)
    ax = fig.subplots()
    mesh = ax.pcolormesh(
        np.arange(len(layers) + 1),
        edges,
        np.ma.masked_equal(share, 0),
        norm=LogNorm(vmin=1e-4, vmax=1),
        cmap="viridis",
    )
    colourbar = fig.colorbar(mesh, ax=ax, extend="min", pad=0.01)
    colourbar.set_label("share of the layer's patches (log scale; white: none)")
    means = histogram.drop_duplicates("layer").set_index("layer").mean_kept[layers]
    ax.scatter(
        np.arange(len(layers)) + 0.5, means, marker="D", s=14, color="white", edgecolors="black", lw=0.6
    )
    patches = counts.sum() / images  # patches per image of each layer
    for stage, members in stages.groupby(stages, sort=False):
        start, stop = members.index.min(), members.index.max() + 1
        if start > 0:
            ax.axvline(start, color="white", lw=1.5)
        per_image = patches.iloc[start:stop].unique()
        ax.annotate(
            f"{stage}\n{'/'.join(f'{value:g}' for value in per_image)} patch"
            + ("" if list(per_image) == [1] else "es")
            + " per image",
            ((start + stop) / 2, 1),
            xycoords=("data", "axes fraction"),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=SMALLEST_FONT,
        )
    ax.set_xticks(np.arange(len(layers)) + 0.5, layers, rotation=90)
    ax.set_yticks(np.linspace(0, 1, 11))
    ax.set_ylim(edges[0], edges[-1])
    ax.grid(False)
    ax.set_xlabel("layer (HASTE convolutions, in order)")
    ax.set_ylabel("fraction of input channels kept per patch (buckets / channels)")
    fig.legend(
        [Line2D([], [], ls="none", marker="D", ms=4, mfc="white", mec="black", mew=0.6)],
        ["the layer's mean"],
        loc="outside lower right",
    )
    dataset = first.model.split("/")[0].upper().replace("CIFAR10", "CIFAR-10")
    suptitle(
        fig,
        f"{display_name(first.model)} on {dataset}, L = {int(first.num_hyperplanes)}, hyperplane seed "
        f"{int(first.seed)}: channels kept per patch over {images:,} test images",
    )
    return fig


def _ratio(value: float) -> str:
    fraction = Fraction(float(value)).limit_denominator(10)
    return f"{fraction.numerator}/{fraction.denominator}" if fraction.denominator != 1 else f"{value:g}"


_IMAGENET_MODELS = {"imagenet/resnet50-keras": "Keras' ResNet-50 v1"}


@styled
def imagenet_tradeoff(summary: pd.DataFrame, operating_point: pd.DataFrame) -> Figure:
    """ImageNet accuracy drop against FLOPs reduction over L (``imagenet_sweep_summary.csv``), with
    the drop's 95% interval over images, and the reduction interpolated at the allowed drop with its
    interval (``imagenet_sweep_operating_point.csv``). The paper's points are in the legend, and in
    the axes only where they fall in its range (the paper's setting differs)."""
    fig = new_figure(7.0, 6.2)
    ax = fig.subplots()
    handles: list = []
    labels: list[str] = []
    seeds = int(summary.seeds.max()) if len(summary) else 0
    for name, group in summary.groupby("model"):
        group = group.sort_values("num_hyperplanes")
        colour = model_colour(name)
        dense = float((group.accuracy + group.accuracy_drop).iloc[0])
        interval = [
            group.accuracy_drop - group.accuracy_drop_ci_low,
            group.accuracy_drop_ci_high - group.accuracy_drop,
        ]
        bars = ax.errorbar(
            group.flops_reduction,
            group.accuracy_drop,
            yerr=interval,
            fmt="none",
            ecolor=colour,
            alpha=0.3,
            lw=6,
            capsize=0,
        )
        line = ax.errorbar(
            group.flops_reduction,
            group.accuracy_drop,
            xerr=group.flops_reduction_std,
            yerr=group.accuracy_drop_std,
            marker="o",
            ms=4,
            capsize=2,
            elinewidth=0.9,
            color=colour,
        )
        handles += [line, bars]
        labels += [
            f"{display_name(name)} (dense top-1 {dense:.2f}%): mean ± std over {count(seeds, 'seed')}",
            "95% interval of the drop over images (bootstrap)",
        ]
        for _, row in group.iterrows():  # above the interval: clear of every bar
            ax.annotate(
                f"L={int(row.num_hyperplanes)}",
                (row.flops_reduction, max(row.accuracy_drop_ci_high, row.accuracy_drop)),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=SMALLEST_FONT,
                color=colour,
            )
        known_points = operating_point[operating_point.model == name].dropna(subset=["flops_reduction"])
        for _, op in known_points.iterrows():
            marker = ax.errorbar(
                op.flops_reduction,
                op.max_drop,
                xerr=[
                    [op.flops_reduction - op.flops_reduction_ci_low],
                    [op.flops_reduction_ci_high - op.flops_reduction],
                ],
                fmt="D",
                color=colour,
                mec="black",
                ms=6,
                capsize=3,
                zorder=5,
            )
            handles.append(marker)
            labels.append(
                f"interpolated at {op.max_drop:g} pp: {op.flops_reduction:.1f}% fewer FLOPs; "
                f"bar: its 95% interval over images, {op.flops_reduction_ci_low:.1f}-"
                f"{op.flops_reduction_ci_high:.1f}%"
            )
    max_drop = float(operating_point.max_drop.iloc[0]) if len(operating_point) else paper.DEFAULT_MAX_DROP
    draw_limit(ax, max_drop)
    ax.margins(x=0.08, y=0.08)
    low, high = ax.get_xlim()
    known = paper.PAPER_POINTS[paper.PAPER_POINTS.dataset == "imagenet"]
    for _, point in known.iterrows():
        inside = low <= point.flops_reduction <= high
        where = "" if inside else ", right of this axis"
        model = f"torchvision {display_name(point.model)}"
        if pd.isna(point.accuracy_drop):  # only the largest reduction is known
            handles.append(Line2D([], [], color="black", ls=":", lw=1))
            labels.append(f"paper, {model}: up to {point.flops_reduction:g}%, its drop not known{where}")
            if inside:
                ax.axvline(point.flops_reduction, color="black", ls=":", lw=1)
        else:
            handles.append(_STAR)
            labels.append(f"paper, {model}: {point.flops_reduction:g}% at {point.accuracy_drop:g} pp{where}")
            if inside:
                ax.scatter(point.flops_reduction, point.accuracy_drop, zorder=6, **PAPER_MARKER)
    ax.set_xlim(low, high)
    handles.append(_LIMIT)
    labels.append(f"allowed drop, {max_drop:g} pp")
    ax.set_xlabel("FLOPs reduction (%, hashing and merging overhead counted)")
    ax.set_ylabel("top-1 accuracy drop (pp)")
    fig.legend(handles, labels, loc="outside lower center", ncol=1)
    names = list(dict.fromkeys(summary.model))
    models = ", ".join(_IMAGENET_MODELS.get(name, display_name(name)) for name in names)
    smoke = (summary.weights_source == "random init").any() if "weights_source" in summary else False
    images = int(summary.images.max()) if len(summary) else 0
    sparsity = _ratio(summary.sparsity.iloc[0]) if len(summary) else "?"
    suptitle(
        fig,
        ("SMOKE TEST (random weights, synthetic images)\n" if smoke else "")
        + f"HASTE on ImageNet: {models}, {images:,} validation images, sparsity {sparsity}\n"
        "not the paper's setting (torchvision's checkpoints, 50,000 images)",
    )
    return fig


@styled
def cifar10_patch_size(
    main_summary: pd.DataFrame, patch_summary: pd.DataFrame, table: pd.DataFrame
) -> Figure:
    """The sweeps of the main summary (P = 3) and of another patch size side by side, one panel per
    model of ``patch_summary``, with the operating points of ``table``
    (``cifar10_patch_size_table.csv``); only the main rows of the same checkpoints are drawn."""
    names = list(dict.fromkeys(patch_summary.model))
    main_summary = main_summary[main_summary.weights_sha256.isin(patch_summary.weights_sha256)]
    curves = pd.concat([main_summary, patch_summary], ignore_index=True)
    allowed = paper.allowed_drops(names)
    fig = new_figure(max(6.0, 4.6 * len(names) + 0.6), 5.2)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(names)), sharey=True, squeeze=False)).ravel()
    labels: dict = {}
    for ax, name in zip(axes, names):
        chosen = table[table.model == name].set_index("patch_size")
        sizes = sorted(int(size) for size in curves[curves.model == name].patch_size.unique())
        labels[ax] = []
        for size in sizes:
            group = curves[(curves.model == name) & (curves.patch_size == size)]
            hyperplanes = int(chosen.num_hyperplanes[size]) if size in chosen.index else None
            label = f"P = {size}" + (
                "" if hyperplanes is None else f": L = {hyperplanes}, {chosen.flops_reduction[size]:.1f}%"
            )
            colour = PATCH_COLOURS.get(size, plotting.OTHER_COLOUR)
            labels[ax] += draw_sweep(ax, group, "flops_reduction", colour, label, hyperplanes, True)
        draw_limit(ax, allowed[name])
        ax.set_title(f"{display_name(name)}: allowed drop {_allowed_text(name, allowed[name])}")
        ax.set_xlabel("FLOPs reduction (%, overhead counted)")
        drop_axis(ax)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=len(sizes), title="output tile")
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.legend(
        [_RING, _LIMIT],
        [
            "operating point: the largest reduction within the allowed drop",
            "allowed drop (value at the right)",
        ],
        loc="outside lower center",
        ncol=2 if len(names) > 1 else 1,
    )
    images = int(curves.images.max()) if len(curves) else 0
    seeds = int(curves.seeds.max()) if len(curves) else 0
    suptitle(
        fig,
        f"Output tile size P on CIFAR-10 ({images:,} test images, mean ± std over {count(seeds, 'seed')})",
    )
    place_labels([label for texts in labels.values() for label in texts])
    return fig


@styled
def paper_reconciliation(table: pd.DataFrame) -> Figure:
    """The FLOPs reduction at the operating point per patch size and accounting convention, one panel
    per model, from ``paper_reconciliation.csv``: conventions grouped by the dense baseline (blues:
    whole model; oranges: conv + linear), the paper's value dashed."""
    names = list(dict.fromkeys(table.model))
    conventions = list(tables.CONVENTIONS)
    fig = new_figure(5.6 * max(1, len(names)) + 0.4, 5.0)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(names)), sharey=True, squeeze=False)).ravel()
    width, gap = 0.12, 0.06
    offsets = [(j - 2.5) * width + (gap / 2 if j >= 3 else -gap / 2) for j in range(len(conventions))]
    top = 0.0
    for ax, name in zip(axes, names):
        rows = table[table.model == name].astype({"patch_size": int})
        sizes = sorted(rows.patch_size.unique())
        points = rows[rows.bracketed.astype(bool)].set_index(["convention", "patch_size"])
        for offset, convention in zip(offsets, conventions):
            for position, size in enumerate(sizes):
                if (convention, size) not in points.index:
                    continue  # no operating point bracketed by the grid: no bar
                point = points.loc[(convention, size)]
                ax.bar(position + offset, point.flops_reduction, width, color=CONVENTION_COLOURS[convention])
                ax.errorbar(
                    position + offset,
                    point.flops_reduction,
                    yerr=point.flops_reduction_std,
                    color="black",
                    capsize=2,
                    lw=0.8,
                )
                top = max(top, point.flops_reduction + point.flops_reduction_std)
        hyperplanes = rows.groupby("patch_size").num_hyperplanes.first()
        ax.set_xticks(
            range(len(sizes)),
            [
                f"P = {size}\nL = {int(hyperplanes[size])}" if pd.notna(hyperplanes[size]) else f"P = {size}"
                for size in sizes
            ],
        )
        ax.grid(False, axis="x")
        paper_value = rows.paper_flops_reduction.dropna()
        if len(paper_value):
            value = float(paper_value.iloc[0])
            top = max(top, value)
            ax.axhline(value, color="black", ls="--", lw=1)
            ax.annotate(
                f"paper: {value:.2f}%",
                (0, value),
                xycoords=("axes fraction", "data"),
                xytext=(6, 3),
                textcoords="offset points",
                va="bottom",
                fontsize=SMALLEST_FONT,
                bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none"},
            )
        allowed = rows.max_drop_allowed.iloc[0] if len(rows) else paper.DEFAULT_MAX_DROP
        ax.set_title(f"{display_name(name)}: operating point within {_allowed_text(name, allowed)}")
        ax.set_xlabel("output tile P, and the operating point's L")
    axes[0].set_ylabel("FLOPs reduction at the operating point (%)")
    axes[0].set_ylim(0, 1.12 * top if top > 0 else 1)
    handles, labels, headers = [], [], []
    for group in ("whole model (fvcore)", "conv + linear only"):
        handles.append(_NOTHING)
        labels.append(f"dense baseline: {group}")
        headers.append(labels[-1])
        for convention in conventions:
            baseline, overhead = tables.CONVENTIONS[convention].split(", ", 1)
            if baseline == group:
                handles.append(Patch(color=CONVENTION_COLOURS[convention]))
                labels.append(overhead)
    legend = fig.legend(handles, labels, loc="outside lower center", ncol=2)
    for text in legend.get_texts():
        if text.get_text() in headers:
            text.set_fontweight("bold")
    seeds = int(table.seeds.max()) if len(table) else 0
    suptitle(
        fig,
        "Which reading reproduces the paper? CIFAR-10 operating points by tile size and FLOP accounting\n"
        f"(mean over {count(seeds, 'seed')}; black bars: std)",
    )
    return fig


@styled
def checkpoint_quality(points: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """The operating point's FLOPs reduction against the checkpoint's dense accuracy, one mark per
    checkpoint (``checkpoint_quality_points.csv``), unjoined: three checkpoints show no trend. A
    checkpoint of ``summary`` (``checkpoint_quality_summary.csv``) without a bracketed operating
    point is named in the legend, with why."""
    name = points.model.iloc[0] if len(points) else summary.model.iloc[0]
    allowed = paper.allowed_drops([name])[name]
    shown = points[points.bracketed.astype(bool)].sort_values("baseline_accuracy")
    fig = new_figure(6.6, 5.4)
    ax = fig.subplots()
    handles: list = []
    labels: list[str] = []
    columns = list(HEADLINES)
    for column in columns:
        handles.append(
            ax.errorbar(
                shown.baseline_accuracy,
                shown[column],
                yerr=shown[f"{column}_std"],
                fmt="o",
                ms=6,
                capsize=3,
                color=CONVENTION_COLOURS[column],
            )
        )
        labels.append(tables.CONVENTIONS[column])
    for _, point in shown.iterrows():
        # the two readings of one checkpoint, joined; checkpoints are not joined (no trend shown)
        ax.plot([point.baseline_accuracy] * 2, point[columns], color=CONTEXT_COLOUR, lw=1, zorder=0.5)
        epochs = int(point.epochs)
        ax.annotate(
            f"{epochs} epoch{'' if epochs == 1 else 's'}, L = {int(point.num_hyperplanes)}",
            (point.baseline_accuracy, max(point[column] + point[f"{column}_std"] for column in columns)),
            xytext=(0, 6),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=SMALLEST_FONT,
        )
    for epochs, group in summary.groupby("epochs"):
        if int(epochs) in set(shown.epochs.astype(int)):
            continue
        measured = ", ".join(str(int(value)) for value in sorted(group.num_hyperplanes.dropna()))
        if (group.accuracy_drop > allowed).all():
            reason = f"its drop exceeds {allowed:g} pp at every L measured ({measured})"
        else:
            reason = f"the L measured ({measured}) do not bracket its operating point"
        handles.append(_NOTHING)
        labels.append(
            f"not shown: the {int(epochs)}-epoch checkpoint (dense {group.baseline_accuracy.iloc[0]:.1f}%):\n"
            + reason
        )
    if shown.empty:
        ax.text(0.5, 0.5, "no checkpoint with an operating point", transform=ax.transAxes, ha="center")
    ax.margins(x=0.12, y=0.15)
    ax.set_xlabel("dense test accuracy of the checkpoint (%)")
    ax.set_ylabel("FLOPs reduction at the operating point (%)")
    fig.legend(handles, labels, loc="outside lower center", ncol=1)
    images = int(summary.images.max()) if len(summary) else 0
    suptitle(
        fig,
        f"{display_name(name)} on CIFAR-10, checkpoints trained for other schedules:\n"
        f"operating point (drop ≤ {allowed:g} pp) against dense accuracy, {images:,} test images",
    )
    return fig


def _reader(results_dir: Path) -> Callable[[str], pd.DataFrame]:
    return lambda name: pd.read_csv(results_dir / name, dtype={"weights_sha256": str})


# figure name -> how it is drawn from a results folder's CSVs (``read``: file name -> DataFrame)
FIGURES: dict[str, Callable[..., Figure]] = {
    "cifar10_tradeoff": lambda read, overhead=True: cifar10_tradeoff(
        read("cifar10_sweep_summary.csv"), overhead
    ),
    "patch_compression": lambda read: patch_compression(read("patch_compression.csv")),
    "imagenet_tradeoff": lambda read: imagenet_tradeoff(
        read("imagenet_sweep_summary.csv"), read("imagenet_sweep_operating_point.csv")
    ),
    "cifar10_patch_size": lambda read, patch_size=2: cifar10_patch_size(
        read("cifar10_sweep_summary.csv"),
        read(f"cifar10_patch{patch_size}_sweep_summary.csv"),
        read("cifar10_patch_size_table.csv"),
    ),
    "paper_reconciliation": lambda read: paper_reconciliation(read("paper_reconciliation.csv")),
    "checkpoint_quality": lambda read: checkpoint_quality(
        read("checkpoint_quality_points.csv"), read("checkpoint_quality_summary.csv")
    ),
    "baselines": lambda read: baselines_tradeoff(read("baselines.csv"), read("cifar10_sweep_summary.csv")),
}


def draw(name: str, results_dir: str | Path, **options) -> Figure:
    """Figure ``name`` of :data:`FIGURES`, drawn from the CSVs in ``results_dir``."""
    return FIGURES[name](_reader(Path(results_dir)), **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Redraw figures from the CSVs of a results folder.")
    parser.add_argument("names", nargs="*", help=f"figures (default: all): {', '.join(FIGURES)}")
    parser.add_argument("--results", default="results", help="the results folder (default: results)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(FIGURES))
    if unknown:
        parser.error(f"no figure {', '.join(unknown)}; figures: {', '.join(FIGURES)}")
    for name in args.names or FIGURES:
        for path in plotting.save_figure(draw(name, args.results), Path(args.results) / "figures", name):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
