"""The data-free baselines beside HASTE (``10_baselines``): every method of :mod:`haste.baselines` at
every FLOPs target on a model, evaluated on the test images, one row each; and the tables derived
from those rows and HASTE's sweep summary.

Rows (``results/baselines.csv``) carry the sweeps' provenance columns plus ``method`` and
``target`` (the FLOPs reduction asked for, percent):

- ``dense``: the model as it is (target 0), the reference of every drop and time ratio;
- ``magnitude``, ``merging``, ``lowrank``: the compressed model. Static methods have no overhead:
  ``flops`` is fvcore's count of the compressed model, checked equal to what the method reports;
  ``ratio`` is the uniform per-layer ratio its rule needed;
- ``haste-gemm``, ``haste-compressed``: HASTE (default settings, hyperplane seed 0) at the L of
  the sweep summary whose reduction counted in full is nearest the target, timed on each
  execution path. Their accuracy and FLOPs are the summary's (mean over seeds, all test images),
  not measured here, so these rows carry the timing, L and the summary's reductions only.

``code_fingerprint``: the core's fingerprint extended by the code of :mod:`haste.baselines` and
of this runner (:func:`code_fingerprint_with_baselines`), so neither the result cache nor a later
run keeps a measurement across an edit to a method. Timing (``seconds_per_batch``): the wall time
of one forward pass over the first evaluation batch (256 images, ``timed_images``), after one
warm-up pass over it; ``time_ratio``: to the dense model's, timed in the same run on the same batch.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .. import baselines, zoo
from ..baselines.flops import fvcore_flops
from ..convert import convert, set_execution
from ..evaluate import evaluate
from ..settings import EXECUTIONS
from ..zoo.data import data_fingerprint
from ..zoo.files import atomic_write_csv
from . import analysis, devices, experiments, result_rows
from .paper import allowed_drops
from .provenance import code_fingerprint, module_code
from .result_cache import cached_measurement, run_context

STATIC_METHODS = tuple(baselines.METHODS)
HASTE_METHODS = tuple(f"haste-{execution}" for execution in EXECUTIONS)
COLUMNS = [
    "model",
    "weights_source",
    "weights_sha256",
    "method",
    "target",
    "num_hyperplanes",  # HASTE rows: the L timed
    "images",
    "accuracy",
    "accuracy_drop",
    "flops_dense",
    "flops",
    "flops_reduction",
    "flops_reduction_no_overhead",  # HASTE rows: the summary's; static methods have no overhead
    "ratio",
    "timed_images",
    "seconds_per_batch",
    "time_ratio",
    "haste_version",
    "commit",
    "code_fingerprint",
    "transform",
    *result_rows.RUN_COLUMNS,
]
HASTE_SUMMARY = "cifar10_sweep_summary.csv"
# what of a sweep summary the runner and the tables read (an absent summary reads as none of these)
SUMMARY_COLUMNS = [
    "model",
    "weights_sha256",
    "num_hyperplanes",
    "images",
    "flops_dense",
    "accuracy",
    "accuracy_drop",
    "accuracy_std",
    "flops_reduction",
    "flops_reduction_no_overhead",
    "flops_reduction_std",
    "flops_reduction_no_overhead_std",
    "seeds",
]


def code_fingerprint_with_baselines() -> str:
    """The fingerprint a row records: the core's (:func:`~haste.repro.provenance.code_fingerprint`),
    the code of every module of :mod:`haste.baselines`, which decides the compressed models, and of
    this runner, which decides the rows' numbers."""
    digest = hashlib.sha256(code_fingerprint().encode())
    for path in [*sorted(Path(baselines.__file__).parent.glob("*.py")), Path(__file__)]:
        digest.update(path.name.encode() + b"\0" + module_code(path).encode())
    return digest.hexdigest()


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def wall_time(model: nn.Module, images: torch.Tensor) -> float:
    """Seconds of one forward pass of ``model`` over ``images``, after one warm-up pass (kernels
    compiled, weight copies made)."""
    model.eval()
    model(images)
    _synchronise(images.device)
    start = time.perf_counter()
    model(images)
    _synchronise(images.device)
    return time.perf_counter() - start


def haste_rows(summary: pd.DataFrame, model_name: str, sha256) -> pd.DataFrame:
    """The sweep summary's rows of ``model_name`` with the checkpoint ``sha256``; without a hash
    (random weights, quick mode's smoke test) those of whichever checkpoint the summary holds."""
    rows = summary[summary.model == model_name]
    if isinstance(sha256, str) and sha256:
        rows = rows[rows.weights_sha256 == sha256]
    return rows


def haste_points(summary: pd.DataFrame, model_name: str, sha256, targets) -> dict[float, pd.Series]:
    """Per target, the row of :func:`haste_rows` whose FLOPs reduction counted in full is nearest it."""
    rows = haste_rows(summary, model_name, sha256)
    if rows.empty:
        return {}
    return {target: rows.loc[(rows.flops_reduction - target).abs().idxmin()] for target in targets}


def measure(
    model_name: str,
    targets: list[float],
    data: str | os.PathLike,
    weights: str | None = "default",
    weights_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    batch_size: int = 256,
    methods: list[str] | None = None,
    haste_summary: pd.DataFrame | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    reuse: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rows of one model: dense, every static method (``methods``, default all) at every target,
    and, with ``haste_summary`` (a sweep summary), HASTE timed at every target. Evaluations go
    through the result cache (an interrupted run resumes); timings are taken afresh, unless
    ``reuse`` (earlier rows, e.g. the committed CSV) holds every row this call would write, measured
    by the same code on the same checkpoint, data and run context (:func:`reusable`): then those
    rows are returned as they are, timings included."""
    device = devices.resolve_device(device)
    model, info = zoo.load(model_name, weights, weights_dir=weights_dir)
    model = model.to(device)
    batches = experiments.evaluation_batches(model_name, data, limit, batch_size)
    size = zoo.spec(model_name).input_size
    input_shape = (3, size, size)
    run = {"data_sha256": data_fingerprint(batches), **run_context(device, batch_size)}
    fingerprint = code_fingerprint_with_baselines()
    provenance = experiments.row_provenance(model_name, info) | {"code_fingerprint": fingerprint} | run
    key = {
        "baselines": fingerprint,
        "model": model_name,
        "weights_sha256": info.sha256,
        "data": run["data_sha256"],
        "limit": limit,
        "batch_size": batch_size,
        "transform": provenance["transform"],
    } | devices.device_key(device)
    timed = next(iter(batches))[0].to(device)
    points = {} if haste_summary is None else haste_points(haste_summary, model_name, info.sha256, targets)
    wanted = [("dense", 0.0)] + [(m, t) for m in methods or STATIC_METHODS for t in targets]
    wanted += [(m, t) for t in points for m in HASTE_METHODS]

    def accuracy(network: nn.Module, label: str, **extra) -> dict:
        def compute() -> dict:
            result = evaluate(network, batches, progress=progress, description=label)
            return {"accuracy": result.accuracy, "images": result.images}

        return cached_measurement({**key, **extra}, compute)

    flops_dense = fvcore_flops(model, input_shape)
    dense = accuracy(model, f"{model_name} dense", method="dense")
    if reuse is not None:
        found = reusable(reuse, provenance, dense, wanted, points)
        if found is not None:
            commits = ", ".join(sorted({str(commit)[:10] for commit in found["commit"]}))
            print(
                f"{model_name}: reused its {len(found)} rows of the earlier results (computed at {commits})"
            )
            return found
    dense_seconds = wall_time(model, timed)
    common = {"flops_dense": flops_dense, "timed_images": len(timed)}
    rows = [
        {
            **provenance,
            **dense,
            **common,
            "method": "dense",
            "target": 0.0,
            "accuracy_drop": 0.0,
            "flops": flops_dense,
            "flops_reduction": 0.0,
            "flops_reduction_no_overhead": 0.0,
            "ratio": 0.0,
            "seconds_per_batch": dense_seconds,
            "time_ratio": 1.0,
        }
    ]
    for method in methods or STATIC_METHODS:
        for target in targets:
            compressed, record = baselines.METHODS[method](model, target, input_shape)
            counted = fvcore_flops(compressed, input_shape)
            if counted != record.flops:
                raise RuntimeError(
                    f"{method} at {target}%: reported {record.flops} FLOPs, fvcore counts {counted}"
                )
            result = accuracy(compressed, f"{model_name} {method} {target:g}%", method=method, target=target)
            seconds = wall_time(compressed, timed)
            rows.append(
                {
                    **provenance,
                    **result,
                    **common,
                    "method": method,
                    "target": target,
                    "accuracy_drop": dense["accuracy"] - result["accuracy"],
                    "flops": counted,
                    "flops_reduction": 100.0 * (1 - counted / flops_dense),
                    "flops_reduction_no_overhead": 100.0 * (1 - counted / flops_dense),
                    "ratio": record.ratio,
                    "seconds_per_batch": seconds,
                    "time_ratio": seconds / dense_seconds,
                }
            )
    if haste_summary is not None:
        if not points and not haste_summary.empty:
            print(f"{model_name}: its checkpoint is not in the HASTE sweep summary; HASTE is not timed")
        for row in _haste_timings(model, points, timed):
            rows.append({**provenance, **row, "time_ratio": row["seconds_per_batch"] / dense_seconds})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def reusable(
    earlier: pd.DataFrame,
    provenance: dict,
    dense: dict,
    wanted: list[tuple[str, float]],
    points: dict[float, pd.Series],
) -> pd.DataFrame | None:
    """The rows of ``earlier`` that a :func:`measure` with this ``provenance`` (its model, checkpoint,
    transform, code fingerprint, data and run context) would write, one per ``(method, target)`` of
    ``wanted``; None unless every one is there, the stored dense accuracy is ``dense``'s (the same
    images) and HASTE's rows time the L of today's ``points``. A model's rows are reused whole or not
    at all, so its time ratios stay those of one run."""
    same = lambda column: earlier[column].astype(str) == str(provenance[column])
    rows = earlier[
        same("model")
        & same("weights_sha256")
        & same("code_fingerprint")
        & same("transform")
        & ((earlier["images"] == dense["images"]) | earlier["method"].isin(HASTE_METHODS))
    ]
    rows = rows.loc[[result_rows.run_matches(row, provenance) for _, row in rows.iterrows()]]
    rows = rows.drop_duplicates(["method", "target"], keep="last").set_index(["method", "target"], drop=False)
    if not all(key in rows.index for key in wanted):
        return None
    found = rows.loc[wanted].reset_index(drop=True)
    if not np.isclose(found["accuracy"].iloc[0], dense["accuracy"], rtol=0, atol=1e-4):
        return None
    timed = found[found["method"].isin(HASTE_METHODS)]
    if any(int(row.num_hyperplanes) != int(points[row.target].num_hyperplanes) for row in timed.itertuples()):
        return None  # another sweep summary: HASTE would be timed at another L
    return found.reindex(columns=COLUMNS)


def _haste_timings(model: nn.Module, points: dict[float, pd.Series], timed: torch.Tensor) -> list[dict]:
    seconds: dict[tuple[int, str], float] = {}  # per (L, execution): targets may share an L
    converted: dict[int, nn.Module] = {}
    rows = []
    for target, point in points.items():
        hyperplanes = int(point.num_hyperplanes)
        if hyperplanes not in converted:
            converted[hyperplanes] = convert(model, hyperplanes, seed=0)
        for execution in EXECUTIONS:
            if (hyperplanes, execution) not in seconds:
                set_execution(converted[hyperplanes], execution)
                seconds[hyperplanes, execution] = wall_time(converted[hyperplanes], timed)
            rows.append(
                {
                    "method": f"haste-{execution}",
                    "target": target,
                    "num_hyperplanes": hyperplanes,
                    "flops_dense": point.flops_dense,
                    "flops": point.flops_dense * (1 - point.flops_reduction / 100),
                    "flops_reduction": point.flops_reduction,
                    "flops_reduction_no_overhead": point.flops_reduction_no_overhead,
                    "timed_images": len(timed),
                    "seconds_per_batch": seconds[hyperplanes, execution],
                }
            )
    return rows


def measure_models(
    model_names: list[str],
    targets: list[float],
    data: str | os.PathLike,
    csv_path: str | os.PathLike,
    summary_path: str | os.PathLike | None = None,
    weights: str = "stand-in",
    allow_random: bool = False,
    limit: int | None = None,
    methods: list[str] | None = None,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """:func:`measure` for several models into ``csv_path`` (the rows of models not run here stay);
    HASTE is timed from the sweep summary at ``summary_path`` where it exists. Returns the rows as
    written. ``weights``: see :func:`haste.repro.experiments.load_arguments`."""
    csv_path = Path(csv_path)
    summary = None if summary_path is None else read_summary(summary_path)
    if summary is not None and summary.empty:
        print(f"no HASTE sweep summary at {summary_path}: HASTE is not timed")
    earlier = read_rows(csv_path) if csv_path.exists() else None
    runs = []
    for name in model_names:
        try:
            load_args = experiments.load_arguments(name, weights, allow_random=allow_random)
        except FileNotFoundError as error:
            print(f"SKIPPED {name}: {error}")
            continue
        runs.append(
            measure(
                name,
                targets,
                data,
                **load_args,
                limit=limit,
                methods=methods,
                haste_summary=summary,
                device=device,
                reuse=earlier,
            )
        )
    if not runs:
        raise FileNotFoundError(f"no checkpoint for any of {', '.join(model_names)} (weights={weights!r})")
    rows = pd.concat(runs, ignore_index=True)
    if earlier is not None:
        rows = pd.concat([earlier[~earlier.model.isin(rows.model)], rows], ignore_index=True)
    atomic_write_csv(rows, csv_path, float_format="%.6g")
    return read_rows(csv_path)


def read_rows(path: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"weights_sha256": str, "commit": str, "code_fingerprint": str})


def read_summary(path: str | os.PathLike) -> pd.DataFrame:
    """A HASTE sweep summary; where there is none, an empty one (the rows and tables then have no
    HASTE, as for a model the summary lacks)."""
    if not Path(path).is_file():
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return pd.read_csv(path, dtype={"weights_sha256": str})


# --- tables derived from the rows -------------------------------------------------------------


def _curves(rows: pd.DataFrame, summary: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One model's (flops_reduction, accuracy_drop) points per method, by increasing reduction.

    HASTE twice: counted in full and without overhead (the sweep summary's means over seeds). A
    static method's curve starts at the dense model (0, 0): at target 0 every method returns it.
    """
    curves = {
        "haste": summary[["flops_reduction", "accuracy_drop"]],
        "haste (no overhead)": summary[["flops_reduction_no_overhead", "accuracy_drop"]].set_axis(
            ["flops_reduction", "accuracy_drop"], axis=1
        ),
    }
    dense = rows[rows.method == "dense"][["flops_reduction", "accuracy_drop"]]
    for method in STATIC_METHODS:
        measured = rows[rows.method == method][["flops_reduction", "accuracy_drop"]]
        if len(measured):
            curves[method] = pd.concat([dense, measured])
    return {name: curve.sort_values("flops_reduction", kind="stable") for name, curve in curves.items()}


def _interpolated_drop(curve: pd.DataFrame, reduction: float) -> float:
    """The drop at ``reduction``, linear between measured points; NaN outside them."""
    if pd.isna(reduction) or curve.empty:
        return float("nan")
    if not curve.flops_reduction.min() <= reduction <= curve.flops_reduction.max():
        return float("nan")
    return float(np.interp(reduction, curve.flops_reduction, curve.accuracy_drop))


def comparison_table(rows: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per model and method: its accuracy drop at HASTE's operating-point reduction (counted in full,
    and without overhead; linear between its measured points, empty outside them), and the largest
    measured reduction within the paper's drop (``haste.repro.paper.allowed_drops``), with its drop;
    ``bracketed``: whether a larger measured reduction breaks the limit (else the point is the
    grid's edge). HASTE's operating point is the main table's (``analysis.operating_points``)."""
    table = []
    for model_name, group in rows.groupby("model", sort=False):
        allowed = allowed_drops([model_name])[model_name]
        dense = group[group.method == "dense"]
        haste = haste_rows(summary, model_name, dense.weights_sha256.iloc[0] if len(dense) else "")
        points = analysis.operating_points(haste, {model_name: allowed}) if len(haste) else pd.DataFrame()
        point = points.iloc[0] if len(points) else None
        full = point.flops_reduction if point is not None else float("nan")
        no_overhead = point.flops_reduction_no_overhead if point is not None else float("nan")
        for method, curve in _curves(group, haste).items():
            if curve.empty:  # HASTE, where the summary lacks this checkpoint
                continue
            within = curve[curve.accuracy_drop <= allowed]
            best = within.loc[within.flops_reduction.idxmax()] if len(within) else None
            table.append(
                {
                    "model": model_name,
                    "method": method,
                    "max_drop_allowed": allowed,
                    "haste_num_hyperplanes": point.num_hyperplanes if point is not None else float("nan"),
                    "haste_flops_reduction": full,
                    "haste_flops_reduction_no_overhead": no_overhead,
                    "drop_at_haste_reduction": _interpolated_drop(curve, full),
                    "drop_at_haste_reduction_no_overhead": _interpolated_drop(curve, no_overhead),
                    "flops_reduction_within_drop": best.flops_reduction if best is not None else float("nan"),
                    "accuracy_drop_there": best.accuracy_drop if best is not None else float("nan"),
                    "bracketed": bool(
                        best is not None
                        and (
                            (curve.flops_reduction > best.flops_reduction) & (curve.accuracy_drop > allowed)
                        ).any()
                    ),
                }
            )
    return pd.DataFrame(table)


def timing_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model and target: each method's wall time per batch as a ratio to the dense model's, its
    FLOPs reduction beside it (HASTE's counted in full), and the L at which HASTE was timed."""
    timed = rows[rows.method != "dense"]
    order = [m for m in (*STATIC_METHODS, *HASTE_METHODS) if m in set(timed.method)]
    index = ["model", "target"]
    ratios = timed.pivot_table(index=index, columns="method", values="time_ratio", sort=False)[order]
    reductions = timed.pivot_table(index=index, columns="method", values="flops_reduction", sort=False)[order]
    table = ratios.add_prefix("time_ratio_").join(reductions.add_prefix("flops_reduction_"))
    haste = timed[timed.method.isin(HASTE_METHODS)].groupby(index, sort=False).num_hyperplanes.first()
    return table.join(haste.rename("haste_num_hyperplanes")).reset_index()


def comparison_table_of(results_dir: str | os.PathLike) -> pd.DataFrame:
    """:func:`comparison_table` of a results folder: its ``baselines.csv`` and its HASTE sweep summary
    (``baselines_table.csv``; the signature of ``haste.repro.derived``'s builders)."""
    results_dir = Path(results_dir)
    return comparison_table(
        read_rows(results_dir / "baselines.csv"), read_summary(results_dir / HASTE_SUMMARY)
    )


def timing_table_of(results_dir: str | os.PathLike) -> pd.DataFrame:
    """:func:`timing_table` of a results folder's ``baselines.csv`` (``baselines_timing.csv``)."""
    return timing_table(read_rows(Path(results_dir) / "baselines.csv"))


TABLES = {"baselines_table.csv": comparison_table_of, "baselines_timing.csv": timing_table_of}


def write_tables(results_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every table of :data:`TABLES` into ``results_dir``, from its CSVs; returns them as written."""
    results_dir = Path(results_dir)
    for name, builder in TABLES.items():
        atomic_write_csv(builder(results_dir), results_dir / name, float_format="%.6g")
    table, timing = (pd.read_csv(results_dir / name) for name in TABLES)
    return table, timing
