"""The figure of ``10_baselines``: each model's accuracy drop against FLOPs reduction for every
data-free baseline beside HASTE's curve, drawn from ``baselines.csv`` and the HASTE sweep summary
in the shared style of :mod:`haste.repro.plotting`.

    python -m haste.repro.figures_baselines [--results results]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import analysis, baselines, paper, plotting
from .plotting import (
    CONVENTION_COLOURS,
    LIMIT_COLOUR,
    count,
    display_name,
    draw_limit,
    draw_sweep,
    drop_axis,
    new_figure,
    place_labels,
    styled,
    suptitle,
)

# a static method's colour and marker (Okabe-Ito colours the HASTE blues do not use)
METHOD_STYLES: dict[str, dict[str, Any]] = {
    "magnitude": {"color": "#E69F00", "marker": "s"},
    "merging": {"color": "#009E73", "marker": "^"},
    "lowrank": {"color": "#CC79A7", "marker": "D"},
}
METHOD_LABELS = {
    "magnitude": "L1 filter pruning (Li et al.)",
    "merging": "filter merging (after Neuron Merging)",
    "lowrank": "low rank (BN-weighted SVD)",
}
HASTE_FULL = CONVENTION_COLOURS["flops_reduction"]
HASTE_NO_OVERHEAD = CONVENTION_COLOURS["flops_reduction_no_overhead"]


@styled
def baselines_tradeoff(rows: pd.DataFrame, summary: pd.DataFrame) -> Figure:
    """One panel per model of ``rows`` (``baselines.csv``): each static method's drop against its
    compressed model's FLOPs reduction (from the dense model at 0), and HASTE's sweep over L from
    ``summary`` (``cifar10_sweep_summary.csv``, the same checkpoint) counted in full and without
    overhead, its operating point ringed; the model's allowed drop dashed."""
    names = list(dict.fromkeys(rows.model))
    fig = new_figure(max(6.5, 4.4 * len(names)), 5.6)
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False).ravel()
    labels = []
    seeds = haste_images = 0
    for ax, name in zip(axes, names):
        group = rows[rows.model == name]
        dense = group[group.method == "dense"]
        sha = dense.weights_sha256.iloc[0] if len(dense) else ""
        haste = baselines.haste_rows(summary, name, sha)
        allowed = paper.allowed_drops([name])[name]
        point = analysis.operating_points(haste, {name: allowed}) if len(haste) else pd.DataFrame()
        chosen = int(point.num_hyperplanes.iloc[0]) if len(point) else None
        if len(haste):
            seeds = max(seeds, int(haste.seeds.max()))
            haste_images = max(haste_images, int(haste.images.max()))
            labels += draw_sweep(ax, haste, "flops_reduction", HASTE_FULL, None, chosen)
            labels += draw_sweep(ax, haste, "flops_reduction_no_overhead", HASTE_NO_OVERHEAD, None, chosen)
        for method, style in METHOD_STYLES.items():
            curve = pd.concat([dense, group[group.method == method]]).sort_values("flops_reduction")
            if len(curve) > len(dense):
                ax.plot(curve.flops_reduction, curve.accuracy_drop, ms=5, **style)
        draw_limit(ax, allowed)
        accuracy = f", dense {dense.accuracy.iloc[0]:.2f}%" if len(dense) else ""
        if chosen is None:
            detail = "HASTE: no operating point in the summary"
        else:
            at = point.iloc[0]
            detail = (
                f"HASTE L = {chosen}: {at.flops_reduction:.1f}% ({at.flops_reduction_no_overhead:.1f}% "
                f"without overhead) at {at.accuracy_drop:.2f} pp"
            )
        ax.set_title(f"{display_name(name)}{accuracy}\n{detail}", fontsize=9)
        ax.set_xlabel("FLOPs reduction (%, fvcore's whole model)")
        drop_axis(ax)
    for ax in axes[1:]:
        ax.set_ylabel("")
    handles = [
        Line2D([], [], color=HASTE_FULL, marker="o", ms=4),
        Line2D([], [], color=HASTE_NO_OVERHEAD, marker="o", ms=4),
        *(Line2D([], [], ms=5, **style) for style in METHOD_STYLES.values()),
        Line2D([], [], ls="none", marker="o", ms=11, mfc="none", mec="0.3", mew=1.5),
        Line2D([], [], color=LIMIT_COLOUR, ls="--", lw=0.9),
    ]
    texts = [
        f"HASTE over L, overhead counted (mean ± std, {count(seeds, 'seed')})",
        "HASTE over L, overhead not counted",
        *(f"{METHOD_LABELS[method]}, static" for method in METHOD_STYLES),
        "HASTE's operating point (within the allowed drop)",
        "allowed drop (the paper's; 1.25 pp for other models)",
    ]
    if not seeds:  # no HASTE curve drawn: its entries would name nothing
        handles, texts = handles[2:-2] + handles[-1:], texts[2:-2] + texts[-1:]
    fig.legend(handles, texts, loc="outside lower center", ncol=2 if len(names) > 1 else 1)
    images = int(rows.images.max()) if rows.images.notna().any() else 0
    shown = f"{images:,} test images"
    if haste_images and haste_images != images:
        shown = f"baselines on {images:,} test images, HASTE's sweep on {haste_images:,}"
    smoke = "SMOKE TEST (random weights)\n" if (rows.weights_source == "random init").any() else ""
    suptitle(
        fig,
        f"{smoke}Data-free compression without fine-tuning on CIFAR-10 ({shown}): "
        "static baselines beside HASTE",
    )
    place_labels(labels)
    return fig


def draw(results_dir: str | Path, summary_dir: str | Path | None = None) -> Figure:
    """The figure from ``<results_dir>/baselines.csv`` and ``<summary_dir>/cifar10_sweep_summary.csv``
    (``summary_dir`` default: ``results_dir``)."""
    rows = baselines.read_rows(Path(results_dir) / "baselines.csv")
    summary_path = Path(summary_dir or results_dir) / baselines.HASTE_SUMMARY
    return baselines_tradeoff(rows, baselines.read_summary(summary_path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Redraw the baselines figure from a results folder's CSVs.")
    parser.add_argument("--results", default="results", help="the results folder (default: results)")
    args = parser.parse_args(argv)
    for path in plotting.save_figure(draw(args.results), Path(args.results) / "figures", "baselines"):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
