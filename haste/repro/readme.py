"""The tables of README.md, docs/*.md and benchmarks/README.md, rendered from the committed CSVs.

    python -m haste.repro.readme           # rewrite every table in place
    python -m haste.repro.readme --check   # name the tables that differ from their CSVs; exit 1 if any

A table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->``, NAME a key of :data:`TABLES`.
A :class:`Table` is its CSVs, a function from those frames to one row per line of the table, and a
list of :class:`Column` (a header and a function of one row): to add a column, add one line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import pandas as pd

from ..conventions import CONVENTIONS

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/*.md", "benchmarks/README.md")
MARKER = re.compile(r"(<!-- table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)

Row: TypeAlias = pd.Series
Cell = Callable[[Row], str]


@dataclass(frozen=True)
class Column:
    header: str
    cell: Cell


@dataclass(frozen=True)
class Table:
    sources: tuple[str, ...]  # CSVs, relative to the repository root
    columns: tuple[Column, ...]
    rows: Callable[..., pd.DataFrame] = lambda frame: frame  # the sources' frames -> one row per line


# -- cells ------------------------------------------------------------------------------------------


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def text(field: str, template: str = "{}") -> Cell:
    return lambda row: "-" if missing(row[field]) else template.format(row[field])


def fixed(field: str, digits: int = 2, template: str = "{}") -> Cell:
    """``row[field]`` with ``digits`` decimals; ``-`` where it is empty."""
    return lambda row: "-" if missing(row[field]) else template.format(f"{row[field]:.{digits}f}")


def mean_std(field: str, digits: int = 2) -> Cell:
    """``mean ± std`` of ``field`` and ``field_std``."""
    return lambda row: f"{row[field]:.{digits}f} ± {row[field + '_std']:.{digits}f}"


def strong(cell: Cell, when: Callable[[Row], bool]) -> Cell:
    """``cell`` in bold on the rows where ``when`` holds."""
    return lambda row: f"**{cell(row)}**" if when(row) else cell(row)


def short(field: str, length: int) -> Cell:
    return lambda row: f"`{str(row[field])[:length]}`"


def percent_range(low: str, high: str) -> Cell:
    """``low - high`` as whole percent (one value where they round alike)."""

    def cell(row: Row) -> str:
        low_text, high_text = f"{row[low]:.0%}", f"{row[high]:.0%}"
        return low_text if low_text == high_text else f"{low_text} - {high_text}"

    return cell


# -- rows -------------------------------------------------------------------------------------------


def paper_first(table: pd.DataFrame) -> pd.DataFrame:
    """The models with a published point first, each group in the CSV's order."""
    return table.iloc[table.paper_flops_reduction.isna().argsort(kind="stable")]


def ablation_rows(matched: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per variant (in the order of the matched-FLOPs CSV): its drops at matched reductions, and its
    mean drop and reduction over seeds at every L (``ablations_summary.csv``, one row each)."""
    table = matched.set_index("variant")
    if summary.duplicated(["variant", "num_hyperplanes"]).any():
        raise ValueError("ablations_summary.csv: more than one setting of a variant at one L")
    for _, point in summary.iterrows():
        table.loc[point.variant, f"L{int(point.num_hyperplanes)}"] = (
            f"{point.accuracy_drop:.2f} @ {point.flops_reduction:.1f}"
        )
    return table.reset_index()


def grids(summary: pd.DataFrame) -> pd.DataFrame:
    """Per model of a sweep summary: its values of L, seeds and images."""
    by_model = summary.groupby("model", sort=False)
    return pd.DataFrame(
        {
            "L": by_model.num_hyperplanes.apply(
                lambda values: ", ".join(str(int(v)) for v in sorted(values))
            ),
            "seeds": by_model.seeds.max(),
            "images": by_model.images.max(),
        }
    ).reset_index()


def around_operating_points(table: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per model of the main table: its operating point and the next L that saves more (over the limit)."""
    rows = []
    for _, point in paper_first(table).iterrows():
        curve = summary[(summary.model == point.model)].sort_values("flops_reduction")
        chosen = curve[curve.num_hyperplanes == point.num_hyperplanes]
        beyond = curve[curve.flops_reduction > chosen.flops_reduction.iloc[0]].head(1)
        for label, row in (("operating point", chosen), ("next L, over the limit", beyond)):
            if not row.empty:
                rows.append(
                    {**row.iloc[0].to_dict(), "max_drop_allowed": point.max_drop_allowed, "role": label}
                )
    return pd.DataFrame(rows)


def with_dense_accuracy(summary: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The summary's rows, each with its model's dense accuracy from the sweep's dense row."""
    dense = rows[rows.num_hyperplanes.isna()].set_index("model").accuracy.rename("dense_accuracy")
    return summary.join(dense, on="model").sort_values(["model", "num_hyperplanes"])


def recipe_field(field: str) -> Cell:
    return lambda row: str(json.loads(row["recipe"])[field]).lower()


def speed_by_case(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per model and batch from ``models.csv``'s one row per path."""
    wide = frame.pivot(index=["model", "batch"], columns="path")
    peaks = wide["peak_mib"][list(PATHS)].round().astype(int).astype(str)
    out = pd.DataFrame(
        {
            "weights": wide[("weights", "dense")],
            "dense_s": wide[("median_s", "dense")],
            "dense_ms": 1000 * wide[("median_s", "dense")],
            "eval_ratio": wide[("ratio_to_dense", "eval")],
            "compressed_ratio": wide[("ratio_to_dense", "compressed")],
            "flops_reduction": wide[("flops_reduction", "eval")],
            "ideal_speedup": wide[("ideal_speedup", "eval")],
            "peak_mib": peaks.agg(" / ".join, axis=1),
        }
    )
    order = frame.drop_duplicates(["model", "batch"]).set_index(["model", "batch"]).index
    return out.loc[order].reset_index()


PATHS = ("dense", "eval", "compressed")


# -- the tables -------------------------------------------------------------------------------------

has_paper = lambda row: not missing(row["paper_flops_reduction"])
within = lambda row: (
    f"{row.accuracy_drop:.2f} (≤ {row.max_drop_allowed:.2f}{'' if has_paper(row) else ', default'})"
)
times = lambda field: fixed(field, 2, "{}x")

SPEED_COLUMNS = (
    Column("model", text("model", "`{}`")),
    Column("weights", text("weights")),
    Column("batch", text("batch")),
)
SPEED_RATIOS = (
    Column("eval path", times("eval_ratio")),
    Column("compressed path", times("compressed_ratio")),
    Column("FLOP reduction (%)", fixed("flops_reduction", 1)),
    Column("ideal speed-up", times("ideal_speedup")),
)
SPEED_CPU_COLUMNS = (
    *SPEED_COLUMNS,
    Column("dense s/batch", fixed("dense_s", 3)),
    *SPEED_RATIOS,
    Column("peak MiB (dense / eval / compressed)", text("peak_mib")),
)
SPEED_CUDA_COLUMNS = (
    *SPEED_COLUMNS,
    Column("dense ms/batch", fixed("dense_ms", 1)),
    *SPEED_RATIOS,
    Column("forward-pass MiB (dense / eval / compressed)", text("peak_mib")),
)


def reconciliation_by_patch(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model and patch size of ``paper_reconciliation.csv``, a column per convention."""
    rows = []
    for (model, patch_size), group in table.groupby(["model", "patch_size"], sort=False):
        by = group.set_index("convention")
        row = {"model": model, "patch_size": patch_size, "paper": by.paper_flops_reduction.dropna().max()}
        for convention, point in by.iterrows():
            row[convention] = (
                f"{point.flops_reduction:.2f} (L={int(point.num_hyperplanes)})"
                if point.bracketed
                else "not measured"
            )
        rows.append(row)
    return pd.DataFrame(rows)


# short names of the accounting conventions (haste.repro.tables.CONVENTIONS)
CONVENTION_NAMES = {convention.name: convention.short for convention in CONVENTIONS}


def signed(field: str) -> Cell:
    """``row[field]`` with a sign and 2 decimals."""
    return lambda row: f"{row[field]:+.2f}"


RECONCILIATION_COLUMNS = (
    Column("model", text("model", "`{}`")),
    Column("P", text("patch_size")),
    *(Column(f"{name} (%)", text(convention)) for convention, name in CONVENTION_NAMES.items()),
    Column("paper (%)", fixed("paper")),
)

TABLES: dict[str, Table] = {
    "paper_reconciliation": Table(
        ("results/paper_reconciliation.csv",), RECONCILIATION_COLUMNS, reconciliation_by_patch
    ),
    "paper_gap": Table(
        ("results/paper_reconciliation_gap.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("paper (%)", fixed("paper")),
            Column("ours, P = 3 counted in full (%)", fixed("full")),
            Column("its gap (pp)", signed("full_gap")),
            Column(
                "closest reading",
                lambda row: f"P = {row.closest_patch_size}, {CONVENTION_NAMES[row.closest_convention]}",
            ),
            Column(
                "ours, closest reading (%)",
                lambda row: f"{row.closest:.2f} (L={row.closest_num_hyperplanes})",
            ),
            Column("its gap (pp)", signed("closest_gap")),
        ),
    ),
    "checkpoint_quality": Table(
        ("results/checkpoint_quality_points.csv",),
        (
            Column("epochs", text("epochs")),
            Column("dense accuracy (%)", fixed("baseline_accuracy")),
            Column("L", lambda row: str(int(row.num_hyperplanes))),
            Column("drop (pp)", mean_std("accuracy_drop")),
            Column("FLOPs reduction (%)", mean_std("flops_reduction")),
            Column("without overhead (%)", mean_std("flops_reduction_no_overhead")),
            Column("bracketed", lambda row: "yes" if row.bracketed else "no: at the grid's edge"),
            Column("SHA-256", short("weights_sha256", 12)),
        ),
        lambda points: points.sort_values("epochs"),
    ),
    "checkpoint_quality_trend": Table(
        ("results/checkpoint_quality_trend.csv",),
        (
            Column("accounting", lambda row: CONVENTION_NAMES[row.convention]),
            Column("checkpoints", text("checkpoints")),
            Column(
                "dense accuracy range (%)", lambda row: f"{row.baseline_low:.2f} - {row.baseline_high:.2f}"
            ),
            Column("slope (pp of reduction per pp of accuracy)", fixed("slope", 3)),
            Column("correlation", fixed("correlation", 2)),
            Column(
                "line at the paper's ResNet34 baseline (%)",
                lambda row: (
                    f"{row.flops_reduction_at_baseline:.2f} at {row.at_baseline:.2f}%"
                    + (" (extrapolated)" if row.extrapolated else "")
                ),
            ),
        ),
    ),
    "cifar10_main": Table(
        ("results/cifar10_main_table.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("baseline (%)", fixed("baseline_accuracy")),
            Column("L", text("num_hyperplanes")),
            Column("HASTE accuracy (%)", mean_std("haste_accuracy")),
            Column("drop (pp)", within),
            Column("FLOPs reduction (%)", strong(mean_std("flops_reduction"), has_paper)),
            Column("without overhead (%)", fixed("flops_reduction_no_overhead")),
            Column("paper baseline (%)", fixed("paper_baseline")),
            Column("paper drop (pp)", fixed("paper_accuracy_drop")),
            Column("paper reduction (%)", strong(fixed("paper_flops_reduction"), has_paper)),
        ),
        paper_first,
    ),
    "cifar10_patch_size": Table(
        ("results/cifar10_patch_size_table.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("P", text("patch_size")),
            Column("L", text("num_hyperplanes")),
            Column("drop (pp)", fixed("accuracy_drop")),
            Column("allowed (pp)", fixed("max_drop_allowed")),
            Column("FLOPs reduction (%)", mean_std("flops_reduction")),
            Column("without overhead (%)", fixed("flops_reduction_no_overhead")),
        ),
        lambda table: table.sort_values(["model", "patch_size"], ascending=[True, False]),
    ),
    "ablations": Table(
        ("results/ablations_at_matched_flops.csv", "results/ablations_summary.csv"),
        (
            Column("variant", text("variant")),
            Column("drop at 25% (pp)", fixed("drop_at_reduction_25.0")),
            Column("drop at 30% (pp)", fixed("drop_at_reduction_30.0")),
            Column("L = 16: drop @ reduction", text("L16")),
            Column("L = 12", text("L12")),
            Column("L = 8", text("L8")),
        ),
        ablation_rows,
    ),
    "cifar10_grids": Table(
        ("results/cifar10_sweep_summary.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("L", text("L")),
            Column("seeds", text("seeds")),
            Column("test images", text("images")),
        ),
        grids,
    ),
    "cifar10_patch2_grids": Table(
        ("results/cifar10_patch2_sweep_summary.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("L", text("L")),
            Column("seeds", text("seeds")),
            Column("test images", text("images")),
        ),
        grids,
    ),
    "cifar10_around_operating_points": Table(
        ("results/cifar10_main_table.csv", "results/cifar10_sweep_summary.csv"),
        (
            Column("model", text("model", "`{}`")),
            Column("L", lambda row: str(int(row.num_hyperplanes))),
            Column("point", text("role")),
            Column("drop (pp)", fixed("accuracy_drop", 3)),
            Column("allowed (pp)", fixed("max_drop_allowed")),
            Column("FLOPs reduction (%)", fixed("flops_reduction")),
        ),
        around_operating_points,
    ),
    "patch_compression": Table(
        ("results/patch_compression_by_stage.csv",),
        (
            Column("stage", text("stage", "`{}`")),
            Column("input channels", text("in_channels")),
            Column("layers", text("layers")),
            Column("mean share of channels kept per patch", percent_range("low", "high")),
        ),
    ),
    "checkpoints": Table(
        ("weights/manifest.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("test accuracy (%)", fixed("test_accuracy")),
            Column("epochs", text("epochs")),
            Column("bf16", recipe_field("bf16")),
            Column("wall hours", fixed("train_hours")),
            Column("CPU hours", fixed("train_cpu_hours")),
            Column("training commit", short("train_commit", 7)),
            Column("SHA-256", short("sha256", 12)),
        ),
    ),
    "imagenet_sweep": Table(
        ("results/imagenet_sweep_summary.csv", "results/imagenet_sweep.csv"),
        (
            Column("model", text("model", "`{}`")),
            Column("L", lambda row: str(int(row.num_hyperplanes))),
            Column("dense top-1 (%)", fixed("dense_accuracy")),
            Column("HASTE top-1 (%)", mean_std("accuracy")),
            Column("drop (pp), std over seeds", mean_std("accuracy_drop")),
            Column("paired SE over images (pp)", fixed("accuracy_drop_se")),
            Column(
                "95% interval over images (pp)",
                lambda row: f"{row.accuracy_drop_ci_low:.2f} - {row.accuracy_drop_ci_high:.2f}",
            ),
            Column("FLOPs reduction (%)", mean_std("flops_reduction")),
            Column("conv + linear, no overhead (%)", fixed("flops_reduction_convlinear_no_overhead")),
            Column("images", text("images")),
        ),
        with_dense_accuracy,
    ),
    "imagenet_operating_point": Table(
        ("results/imagenet_sweep_operating_point.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("drop (pp)", fixed("max_drop")),
            Column("FLOPs reduction (%), interpolated", fixed("flops_reduction")),
            Column(
                "95% interval over images (%)",
                lambda row: f"{row.flops_reduction_ci_low:.2f} - {row.flops_reduction_ci_high:.2f}",
            ),
            Column("between L", text("between_L")),
            Column("resamples outside the grid", lambda row: f"{row.outside_grid:.1%}"),
        ),
    ),
    "baselines": Table(
        ("results/baselines_table.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("method", text("method")),
            Column("HASTE's reduction, counted in full (%)", fixed("haste_flops_reduction")),
            Column("drop there (pp)", fixed("drop_at_haste_reduction")),
            Column("HASTE's reduction without overhead (%)", fixed("haste_flops_reduction_no_overhead")),
            Column("drop there (pp)", fixed("drop_at_haste_reduction_no_overhead")),
            Column("largest reduction within the paper's drop (%)", fixed("flops_reduction_within_drop")),
            Column("its drop (pp)", fixed("accuracy_drop_there")),
        ),
    ),
    "baselines_timing": Table(
        ("results/baselines_timing.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("target (%)", fixed("target", 0)),
            Column("L1 pruning", fixed("time_ratio_magnitude")),
            Column("filter merging", fixed("time_ratio_merging")),
            Column("low rank", fixed("time_ratio_lowrank")),
            Column("HASTE, GEMM path", fixed("time_ratio_haste-gemm")),
            Column("HASTE, compressed path", fixed("time_ratio_haste-compressed")),
            Column(
                "HASTE's L (its reduction, %)",
                lambda row: f"{row.haste_num_hyperplanes:.0f} ({row['flops_reduction_haste-gemm']:.1f})",
            ),
        ),
    ),
    "hash_stability": Table(
        ("results/hash_stability.csv",),
        (
            Column("batch", text("batch_size")),
            Column("threads", text("threads")),
            Column("hash bits flipped", lambda row: f"{row.bit_flip_rate:.2e}"),
            Column("channel codes changed", lambda row: f"{row.codes_changed_rate:.2e}"),
            Column(
                "patches with another bucket count",
                lambda row: f"{row.patches_bucket_count_changed_rate:.2e}",
            ),
            Column("predictions changed", text("predictions_changed")),
            Column("largest logit change", lambda row: f"{row.max_abs_logit_change:.2g}"),
            Column("median logit change", lambda row: f"{row.median_abs_logit_change:.2g}"),
            Column("accuracy (%)", fixed("accuracy")),
            Column("FLOPs reduction (%)", fixed("flops_reduction", 4)),
        ),
    ),
    "speed_cpu_models": Table(("results/speed/models.csv",), SPEED_CPU_COLUMNS, speed_by_case),
    "speed_cuda_models": Table(("results/speed_cuda/models.csv",), SPEED_CUDA_COLUMNS, speed_by_case),
    "speed_cpu_widths": Table(
        ("results/speed_by_width.csv",),
        (
            Column("model", text("model", "`{}`")),
            Column("channels", text("channels")),
            Column("layers", text("layers")),
            Column("dense ms", fixed("dense_ms", 1)),
            Column("eval path", times("eval_ratio")),
            Column("compressed path", times("compressed_ratio")),
            Column("FLOP reduction (%)", fixed("flops_reduction", 1)),
            Column("channels kept", fixed("kept_fraction", 2)),
        ),
    ),
    "speed_throughput": Table(
        ("results/speed_throughput.csv",),
        (
            Column("cases", lambda row: f"{row.cases} ({row['count']})"),
            Column("dense GFLOP/s", fixed("dense", 0)),
            Column("eval path", fixed("eval", 0)),
            Column("compressed path", fixed("compressed", 0)),
        ),
    ),
    "speed_closest": Table(
        ("results/speed_closest.csv",),
        (
            Column("cases", text("cases")),
            Column("path", text("path")),
            Column("faster than dense", lambda row: f"{row.faster} of {row['count']}"),
            Column("closest case", text("case")),
            Column("HASTE / dense", times("ratio_to_dense")),
            Column("ideal speed-up", times("ideal_speedup")),
        ),
    ),
}


# -- rendering --------------------------------------------------------------------------------------


def render(table: Table, root: Path = ROOT) -> str:
    """The Markdown of ``table`` from the CSVs under ``root``."""
    frames = [pd.read_csv(root / source) for source in table.sources]
    rows = table.rows(*frames)
    lines = [
        "| " + " | ".join(column.header for column in table.columns) + " |",
        "|" + "---|" * len(table.columns),
    ]
    for _, row in rows.iterrows():
        lines.append("| " + " | ".join(column.cell(row) for column in table.columns) + " |")
    return "\n".join(lines) + "\n"


def rendered(document: str, root: Path = ROOT, tables: dict[str, Table] = TABLES) -> str:
    """``document`` with every marked table rendered afresh; an unknown table name is an error."""

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in tables:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(tables)}")
        return match.group(1) + render(tables[name], root) + match.group(4)

    return MARKER.sub(replace, document)


def documents(root: Path = ROOT) -> list[Path]:
    return sorted({path for pattern in DOCUMENTS for path in root.glob(pattern)})


def stale(root: Path = ROOT) -> list[str]:
    """``file: table`` for every marked table whose text differs from its rendering."""
    differing = []
    for path in documents(root):
        text = path.read_text()
        fresh = rendered(text, root)
        if fresh != text:
            old = {m["name"]: m["body"] for m in MARKER.finditer(text)}
            new = {m["name"]: m["body"] for m in MARKER.finditer(fresh)}
            names = [name for name in old if old[name] != new[name]]
            differing += [f"{path.relative_to(root)}: {name}" for name in names]
    return differing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m haste.repro.readme", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    if args.check:
        differing = stale()
        for entry in differing:
            print(f"stale table: {entry}")
        return 1 if differing else 0
    from ..zoo.files import atomic_write_text

    for path in documents():
        text = path.read_text()
        fresh = rendered(text)
        if fresh != text:
            atomic_write_text(fresh, path)
            print(f"rewrote the tables of {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
