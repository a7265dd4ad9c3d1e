"""Every table and summary of ``results/`` as a function of the measurement rows it is derived from.

The notebooks write these with :func:`write`, and ``tests/test_derived.py`` rebuilds each from the
committed rows and requires it byte for byte equal to the committed file, so a committed table is
always what its rows say. ``python -m haste.repro.derived [RESULTS_DIR]`` rebuilds them all.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..conventions import HEADLINES
from ..zoo.files import atomic_write_csv
from . import analysis, baselines, paper, result_rows, tables, uncertainty

FLOAT_FORMAT = "%.6g"


def _rows(results_dir: Path, name: str) -> pd.DataFrame:
    """Measurement rows with every result column (empty where a row was written before it)."""
    rows = result_rows.read_rows(results_dir / name)
    extra = [c for c in rows.columns if c not in result_rows.RESULT_COLUMNS]
    return rows.reindex(columns=result_rows.RESULT_COLUMNS + extra)


def _csv(results_dir: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(results_dir / name, dtype={"weights_sha256": str})


def sweep_summary(results_dir: Path, sweep: str) -> pd.DataFrame:
    """``<sweep>_summary.csv``: the mean and std over seeds of every point of ``<sweep>.csv``."""
    return analysis.summarize(_rows(results_dir, f"{sweep}.csv"))


def main_table(results_dir: Path, convention: str | None = "auto") -> pd.DataFrame:
    """``cifar10_main_table.csv`` (``02_cifar10_main_table``): the operating points beside the
    paper's; ``convention="auto"``: the reading closest to the paper in ``paper_reconciliation.csv``."""
    rows = _csv(results_dir, "cifar10_sweep.csv").fillna({"weights_sha256": ""})  # random: no hash
    summary = pd.read_csv(results_dir / "cifar10_sweep_summary.csv")
    reconciliation = results_dir / "paper_reconciliation.csv"
    if convention == "auto":
        # the conventions the summary has numbers for (rows written before a column have none)
        available = [c for c in tables.CONVENTIONS if c in summary.columns and summary[c].notna().any()]
        sizes = summary.patch_size.unique()
        if len(sizes) != 1:  # the reading closest to the paper is chosen at the sweep's patch size
            raise ValueError(f"cifar10_sweep_summary.csv: one patch size expected, not {sorted(sizes)}")
        patch_size = int(sizes[0])
        convention = (
            tables.closest_convention(pd.read_csv(reconciliation), patch_size, available)
            if reconciliation.exists()
            else None
        )
    return tables.main_table(rows, summary, convention)


def patch_compression_by_stage(results_dir: Path) -> pd.DataFrame:
    """``patch_compression_by_stage.csv`` (``04_patch_compression``): per stage of the network and
    input width, its layers' count and the range of their mean share of channels kept per patch
    (``patch_compression.csv`` holds one histogram per layer)."""
    frame = pd.read_csv(results_dir / "patch_compression.csv")
    layers = frame.groupby(["layer", "in_channels"], sort=False).mean_kept.first().reset_index()
    layers["stage"] = layers.layer.str.split(".").str[0]
    grouped = layers.groupby(["stage", "in_channels"], sort=False).mean_kept
    table = pd.DataFrame({"layers": grouped.size(), "low": grouped.min(), "high": grouped.max()})
    return table.reset_index()


def ablations_at_matched_flops(results_dir: Path, matched_reductions: list[float]) -> pd.DataFrame:
    """``ablations_at_matched_flops.csv`` (``05_ablations``): every variant's mean drop at the same
    FLOPs reductions, interpolated between its measured L (empty outside its range)."""
    results = _rows(results_dir, "ablations.csv")
    order = list(dict.fromkeys(results.variant))
    matched = analysis.drop_at_reduction(analysis.summarize(results), matched_reductions)
    matched = matched.pivot(index="variant", columns="flops_reduction", values="accuracy_drop")
    order = [variant for variant in order if variant in matched.index]  # none: outside every range
    return matched.loc[order].add_prefix("drop_at_reduction_").reset_index()


def imagenet_summary(results_dir: Path) -> pd.DataFrame:
    """``imagenet_sweep_summary.csv`` (``06_imagenet``): means over seeds with paired uncertainties."""
    results = _rows(results_dir, "imagenet_sweep.csv")
    keys = ["model", "num_hyperplanes"]  # one checkpoint, transform and setting per model here
    paired = uncertainty.paired_drop_uncertainty(results)
    columns = keys + ["accuracy_drop_se", "accuracy_drop_ci_low", "accuracy_drop_ci_high"]
    return analysis.summarize(results).merge(paired[columns], on=keys, how="left")


def imagenet_operating_point(results_dir: Path, max_drop: float) -> pd.DataFrame:
    """``imagenet_sweep_operating_point.csv`` (``06_imagenet``): the reduction at ``max_drop``."""
    results = _rows(results_dir, "imagenet_sweep.csv")
    summary = pd.read_csv(results_dir / "imagenet_sweep_summary.csv")
    return uncertainty.operating_point_at_drop(results, summary, max_drop)


def patch_size_table(results_dir: Path, patch_size: int) -> pd.DataFrame:
    """``cifar10_patch_size_table.csv`` (``07_patch_size``): operating points at both patch sizes."""
    summary = pd.read_csv(results_dir / f"cifar10_patch{patch_size}_sweep_summary.csv")
    main = pd.read_csv(results_dir / "cifar10_sweep_summary.csv")
    main = main[main.weights_sha256.isin(summary.weights_sha256)]  # the same checkpoints only
    return tables.patch_size_table([main, summary])


def reconciliation(results_dir: Path, model_names: list[str], committed_sweeps: dict) -> pd.DataFrame:
    """``paper_reconciliation.csv`` (``08_paper_reconciliation``): every patch size under every
    accounting convention, from its own rows and the committed sweeps' (its own replace theirs)."""
    from .. import zoo
    from ..report import CONV_LINEAR, dense_flops

    # the conv + linear FLOPs of each dense model: a function of its shapes only
    dense_convlinear: dict[str, float] = {
        name: dense_flops(zoo.build(name).eval(), (3, 32, 32))[CONV_LINEAR] for name in model_names
    }
    measured = _rows(results_dir, "paper_reconciliation_sweep.csv")
    committed = [
        _csv(results_dir, sweep) for sweep in committed_sweeps.values() if (results_dir / sweep).exists()
    ]
    rows = pd.concat([measured, *committed], ignore_index=True)
    rows = rows.drop_duplicates(result_rows.MEASUREMENT_KEYS, keep="first")
    rows = tables.with_convlinear_baseline(rows[rows.model.isin(model_names)], dense_convlinear)
    # one checkpoint per model: the committed sweeps' rows must be of the checkpoints measured here
    if not rows.groupby("model").weights_sha256.nunique().eq(1).all():
        raise ValueError("paper_reconciliation: rows of more than one checkpoint of a model")
    return tables.reconciliation_table(analysis.summarize(rows))


def reconciliation_gap(results_dir: Path) -> pd.DataFrame:
    """``paper_reconciliation_gap.csv`` (``08_paper_reconciliation``): per model, the paper's
    reduction against ours counted in full at the default patch size and against the closest reading."""
    from ..settings import HasteSettings

    return tables.reconciliation_gap(
        pd.read_csv(results_dir / "paper_reconciliation.csv"), HasteSettings().patch_size
    )


def checkpoint_quality_summary(results_dir: Path) -> pd.DataFrame:
    """``checkpoint_quality_summary.csv`` (``09_checkpoint_quality``): per checkpoint and L."""
    results = _rows(results_dir, "checkpoint_quality.csv")
    summary = analysis.summarize(results)  # with the epochs, a label of each checkpoint
    baseline = results[results.num_hyperplanes.isna()].set_index("weights_sha256").accuracy
    return summary.assign(baseline_accuracy=summary.weights_sha256.map(baseline))


def checkpoint_quality_points(results_dir: Path, model_name: str) -> pd.DataFrame:
    """``checkpoint_quality_points.csv``: each checkpoint's operating point."""
    summary = pd.read_csv(results_dir / "checkpoint_quality_summary.csv", dtype={"weights_sha256": str})
    allowed = paper.allowed_drops([model_name])
    points = pd.concat(
        [
            analysis.operating_points(group, allowed).assign(epochs=epochs)
            for epochs, group in summary.groupby("epochs")
        ],
        ignore_index=True,
    )
    baseline = summary.drop_duplicates("weights_sha256").set_index("weights_sha256").baseline_accuracy
    return points.assign(baseline_accuracy=points.weights_sha256.map(baseline))


def checkpoint_quality_trend(results_dir: Path) -> pd.DataFrame:
    """``checkpoint_quality_trend.csv``: the reduction's trend over the baseline accuracy, carried to
    the paper's ResNet34 baseline."""
    columns = list(HEADLINES)
    try:
        points = pd.read_csv(results_dir / "checkpoint_quality_points.csv")
    except pd.errors.EmptyDataError:  # no checkpoint has an operating point (a quick run)
        points = pd.DataFrame()
    points = points.reindex(
        columns=list(dict.fromkeys([*points.columns, "bracketed", "baseline_accuracy", *columns]))
    )
    paper_baseline = paper.PAPER_POINTS.set_index("model").baseline["cifar10/resnet34"]
    return tables.quality_trend(
        points[points.bracketed.fillna(False).astype(bool)], columns, at=paper_baseline
    )


# the speed benchmark's CSVs (benchmarks/speed.py; the GPU's were measured on an H100) by label
SPEED_CSVS = {
    "CPU, synthetic layers": "speed/layers.csv",
    "CPU, trained layers": "speed/trained_layers.csv",
    "CPU, models": "speed/models.csv",
    "H100, synthetic layers": "speed_cuda/layers.csv",
    "H100, trained layers": "speed_cuda/trained_layers.csv",
    "H100, models": "speed_cuda/models.csv",
}
SPEED_PATHS = ("dense", "eval", "compressed")


def _speed_csvs(results_dir: Path, kinds: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The speed CSVs of ``kinds`` (file names) that ``results_dir`` holds, by label."""
    return {
        label: pd.read_csv(results_dir / name)
        for label, name in SPEED_CSVS.items()
        if Path(name).name in kinds and (results_dir / name).exists()
    }


def speed_by_width(results_dir: Path, batch: int = 32) -> pd.DataFrame:
    """``speed_by_width.csv``: per model and layer width of ``speed/trained_layers.csv``, the
    layers' summed times at ``batch`` (dense in ms, each HASTE path as a ratio) and their median
    layer's FLOPs reduction and share of channels kept."""
    frame = pd.read_csv(results_dir / SPEED_CSVS["CPU, trained layers"])
    rows = frame[frame.batch == batch]
    total = rows.groupby(["model", "channels", "path"]).median_s.sum().unstack()
    median = rows[rows.path == "eval"].groupby(["model", "channels"])[["flops_reduction", "kept_fraction"]]
    out = pd.DataFrame(
        {
            "dense_ms": 1000 * total["dense"],
            "eval_ratio": total["eval"] / total["dense"],
            "compressed_ratio": total["compressed"] / total["dense"],
            "layers": rows[rows.path == "eval"].groupby(["model", "channels"]).size(),
        }
    ).join(median.median())
    return out.reset_index()


def speed_throughput(results_dir: Path) -> pd.DataFrame:
    """``speed_throughput.csv``: the median GFLOP/s of every path over each layer CSV's cases."""
    rows = []
    for label, frame in _speed_csvs(results_dir, ("layers.csv", "trained_layers.csv")).items():
        medians = frame.groupby("path").gflops_per_s.median()
        count = int((frame.path == "dense").sum())
        rows.append({"cases": label, "count": count, **{path: medians[path] for path in SPEED_PATHS}})
    return pd.DataFrame(rows)


def _describe_case(row: pd.Series) -> str:
    size = f"{row['size']}x{row['size']}" if "size" in row else ""
    if "layer" in row and not pd.isna(row["layer"]):
        return f"{row['model']} {row['layer']} ({row['channels']} ch, {size}), batch {row['batch']}"
    if "model" in row and not pd.isna(row.get("model")):
        return f"{row['model']}, batch {row['batch']}"
    setting = f"L = {row['num_hyperplanes']}, batch {row['batch']}"
    return f"{row['channels']} ch, {size}, {setting}, {row['inputs']} inputs"


def speed_closest(results_dir: Path) -> pd.DataFrame:
    """``speed_closest.csv``: per speed CSV and HASTE path, how many cases beat dense (``faster``
    of ``count``) and the case closest to dense."""
    kinds = ("layers.csv", "trained_layers.csv", "models.csv")
    rows = []
    for label, frame in _speed_csvs(results_dir, kinds).items():
        for path in SPEED_PATHS[1:]:
            cases = frame[frame.path == path]
            best = cases.loc[cases.ratio_to_dense.idxmin()]
            rows.append(
                {
                    "cases": label,
                    "path": path,
                    "faster": int((cases.ratio_to_dense < 1).sum()),
                    "count": len(cases),
                    "case": _describe_case(best),
                    "ratio_to_dense": best.ratio_to_dense,
                    "ideal_speedup": best.ideal_speedup,
                }
            )
    return pd.DataFrame(rows)


# file -> (the notebook or script that writes it, its builder, the notebook parameters the builder takes),
# in an order in which each file's inputs come before it
DERIVED: dict[str, tuple[str, Callable[..., pd.DataFrame], dict[str, str]]] = {
    "cifar10_sweep_summary.csv": ("01_cifar10_sweep", lambda d: sweep_summary(d, "cifar10_sweep"), {}),
    "cifar10_patch2_sweep_summary.csv": (
        "07_patch_size",
        lambda d: sweep_summary(d, "cifar10_patch2_sweep"),
        {},
    ),
    "paper_reconciliation_sweep_summary.csv": (
        "08_paper_reconciliation",
        lambda d: sweep_summary(d, "paper_reconciliation_sweep"),
        {},
    ),
    "paper_reconciliation.csv": (
        "08_paper_reconciliation",
        reconciliation,
        {"model_names": "model_names", "committed_sweeps": "committed_sweeps"},
    ),
    "paper_reconciliation_gap.csv": ("08_paper_reconciliation", reconciliation_gap, {}),
    "cifar10_main_table.csv": ("02_cifar10_main_table", main_table, {"convention": "convention"}),
    "patch_compression_by_stage.csv": ("04_patch_compression", patch_compression_by_stage, {}),
    "ablations_summary.csv": ("05_ablations", lambda d: sweep_summary(d, "ablations"), {}),
    "ablations_at_matched_flops.csv": (
        "05_ablations",
        ablations_at_matched_flops,
        {"matched_reductions": "matched_reductions"},
    ),
    "imagenet_sweep_summary.csv": ("06_imagenet", imagenet_summary, {}),
    "imagenet_sweep_operating_point.csv": ("06_imagenet", imagenet_operating_point, {"max_drop": "max_drop"}),
    "cifar10_patch_size_table.csv": ("07_patch_size", patch_size_table, {"patch_size": "patch_size"}),
    "checkpoint_quality_summary.csv": ("09_checkpoint_quality", checkpoint_quality_summary, {}),
    "checkpoint_quality_points.csv": (
        "09_checkpoint_quality",
        checkpoint_quality_points,
        {"model_name": "model_name"},
    ),
    "checkpoint_quality_trend.csv": ("09_checkpoint_quality", checkpoint_quality_trend, {}),
    "baselines_table.csv": ("10_baselines", baselines.comparison_table_of, {}),
    "baselines_timing.csv": ("10_baselines", baselines.timing_table_of, {}),
    "speed_by_width.csv": ("benchmarks/speed.py", speed_by_width, {}),
    "speed_throughput.csv": ("benchmarks/speed.py", speed_throughput, {}),
    "speed_closest.csv": ("benchmarks/speed.py", speed_closest, {}),
}


def build(name: str, results_dir: str | os.PathLike, /, **parameters) -> pd.DataFrame:
    """The table ``name`` built from the CSVs in ``results_dir``; ``parameters``: its notebook's."""
    _, builder, taken = DERIVED[name]
    return builder(Path(results_dir), **{argument: parameters[key] for argument, key in taken.items()})


def write(name: str, results_dir: str | os.PathLike, /, **parameters) -> pd.DataFrame:
    """Build ``name`` and write it into ``results_dir`` (6 significant digits, atomically)."""
    table = build(name, results_dir, **parameters)
    atomic_write_csv(table, Path(results_dir) / name, index=False, float_format=FLOAT_FORMAT)
    return table


def main(argv: list[str] | None = None) -> int:
    import argparse

    from .prepare import notebook_parameters

    parser = argparse.ArgumentParser(prog="python -m haste.repro.derived", description=__doc__.split("\n")[0])
    parser.add_argument(
        "results_dir",
        nargs="?",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "results",
        help="the folder of measurement rows (default: the checkout's results/)",
    )
    results_dir = parser.parse_args(argv).results_dir
    for name, (writer, _, taken) in DERIVED.items():
        write(name, results_dir, **(notebook_parameters(writer, False, {}) if taken else {}))
        print(f"wrote {results_dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
