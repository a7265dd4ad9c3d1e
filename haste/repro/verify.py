"""``python -m haste verify``: re-measure a seeded random sample of committed result rows and say, per
row, whether the committed accuracy and FLOPs agree with today's measurement.

Agreement is within the documented tolerance (``docs/reproducing.md#checking-committed-numbers``):
predictions may differ by :data:`PREDICTION_TOLERANCE` per 10,000 images (at least one), five times
the worst flip rate ``benchmarks/hash_stability.py`` measured across batch sizes and thread counts,
since a hash bit whose projection lies within rounding of zero can take the other side on another CPU;
FLOP counts may differ by the relative :data:`FLOPS_TOLERANCE` (bucket counts move with those flips).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..settings import HasteSettings

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
# every committed CSV of measurement rows
MEASUREMENT_CSVS = (
    "cifar10_sweep.csv",
    "cifar10_patch2_sweep.csv",
    "ablations.csv",
    "paper_reconciliation_sweep.csv",
    "checkpoint_quality.csv",
    "imagenet_sweep.csv",
)
PREDICTION_TOLERANCE = 5  # predictions per 10,000 images
FLOPS_TOLERANCE = 1e-3  # relative, on flops_dense and flops_haste
DEFAULT_MINUTES = 15.0  # the default sample's estimated time on 2 cores
# seconds per image-FLOP of a HASTE evaluation on 2 idle cores, from the sweeps' 30-85 s for a
# CIFAR-10 model on 10,000 images; ImageNet's 224-pixel windows cost about three times as much
SECONDS_PER_FLOP = {"cifar10": 1 / 3.5e10, "imagenet": 3 / 3.5e10}
IMAGENET_VAL = ROOT.parent / "shared" / "data" / "imagenet-val-1300"
SETTINGS_COLUMNS = list(HasteSettings.__dataclass_fields__)


def allowed_prediction_change(images: int) -> int:
    """How many of ``images`` predictions may differ between two CPUs' measurements of one row."""
    return max(1, math.ceil(PREDICTION_TOLERANCE * images / 10_000))


def accuracy_agrees(committed: float, measured: float, images: int) -> bool:
    changed = abs(committed - measured) * images / 100
    return changed <= allowed_prediction_change(images) + 1e-6


def flops_agree(committed: float, measured: float) -> bool:
    if not (np.isfinite(committed) and np.isfinite(measured)):
        return bool(np.isnan(committed) and np.isnan(measured))
    return abs(committed - measured) <= FLOPS_TOLERANCE * max(abs(committed), 1.0)


@dataclass
class Check:
    csv: str
    row: int
    model: str
    num_hyperplanes: float
    seed: float
    images: int
    accuracy: float
    measured_accuracy: float = float("nan")
    flops_reduction: float = float("nan")
    measured_flops_reduction: float = float("nan")
    verdict: str = ""
    seconds: float = 0.0


def read_result_csv(path: Path) -> pd.DataFrame:
    """Rows of a result CSV; a one-line error when the file is missing or of another schema."""
    from .result_rows import MEASUREMENT_KEYS, read_rows

    if not path.is_file():
        raise FileNotFoundError(f"no result CSV at {path}")
    rows = read_rows(path)
    missing = [c for c in MEASUREMENT_KEYS + ["accuracy", "flops_dense", "flops_haste"] if c not in rows]
    if missing:
        raise ValueError(f"{path}: not a CSV of measurement rows (no column {', '.join(missing)})")
    return rows


def estimated_seconds(row: pd.Series) -> float:
    """About how long re-measuring ``row`` takes on 2 idle cores."""
    from .. import zoo

    dataset = zoo.spec(row["model"]).dataset
    return float(row["images"]) * float(row["flops_dense"]) * SECONDS_PER_FLOP.get(dataset, 1 / 3.5e10)


def sample(
    tables: dict[str, pd.DataFrame], count: int | None, seed: int, minutes: float = DEFAULT_MINUTES
) -> list[tuple[str, int]]:
    """Rows drawn at random (seeded) from all ``tables``, as ``(csv, index)``: ``count`` of them, or
    (``count`` None) in the drawn order those that fit ``minutes`` by :func:`estimated_seconds`."""
    every = [(name, int(index)) for name, table in tables.items() for index in table.index]
    order = [every[i] for i in np.random.default_rng(seed).permutation(len(every))]
    if count is not None:
        return order[:count]
    chosen, budget = [], minutes * 60
    for name, index in order:
        cost = estimated_seconds(tables[name].loc[index])
        if cost <= budget:
            chosen.append((name, index))
            budget -= cost
    return chosen


def _settings(row: pd.Series) -> HasteSettings:
    values: dict = {}
    for name in SETTINGS_COLUMNS:
        value = row[name]
        field_type = type(getattr(HasteSettings(), name))
        if name == "skip":  # a count (read as a number) or the tuple's text
            try:
                values[name] = int(float(value))
            except ValueError:
                values[name] = tuple(eval_tuple(str(value)))
        elif field_type is bool:
            values[name] = str(value).lower() in ("true", "1")
        elif field_type is float:
            values[name] = float(value)
        elif field_type is int:
            values[name] = int(float(value))
        else:
            values[name] = str(value)
    return HasteSettings(**values)


def eval_tuple(text: str) -> list[str]:
    import ast

    value = ast.literal_eval(text)
    return list(value) if isinstance(value, list | tuple) else [str(value)]


def locate_weights(row: pd.Series, weights_dirs: list[Path]) -> tuple[str, str | None]:
    """``zoo.load``'s ``weights`` and ``weights_dir`` for the checkpoint with the row's SHA-256:
    the shipped stand-in, an imported or torchvision file, the paper's, or a folder of ``weights_dirs``
    (e.g. the checkpoint-quality series); ``FileNotFoundError`` naming it when none has it."""
    from .. import zoo
    from ..zoo.weights import read_manifest

    name, sha = row["model"], str(row["weights_sha256"])
    for weights_dir in [None, *weights_dirs]:
        try:
            if weights_dir is not None:
                entry = read_manifest(Path(weights_dir) / "manifest.csv").get(name)
                if entry is None or entry["sha256"] != sha:
                    continue
            _, info = zoo.load(name, weights="default", weights_dir=weights_dir, download=False)
            if info.sha256 == sha:
                return "default", None if weights_dir is None else str(weights_dir)
        except (FileNotFoundError, ValueError, KeyError):
            continue
    if row.get("weights_source") == "paper":
        return "paper", None
    raise FileNotFoundError(f"{name}: no checkpoint with SHA-256 {sha[:12]}... here")


def measure(row: pd.Series, data: str | None, imagenet: str | None, weights_dirs: list[Path]) -> dict:
    """Row ``row`` measured again with its recorded checkpoint, settings, L, seed and image count,
    by the runners' own pieces, bypassing the result cache."""
    from .. import zoo
    from ..convert import convert
    from ..evaluate import evaluate
    from ..zoo.data import cifar10_root
    from .experiments import evaluation_batches

    if row["grouping"] not in ("lsh", "random") and not pd.isna(row["num_hyperplanes"]):
        raise FileNotFoundError(f"a {row['grouping']} control row: verify re-measures HASTE rows only")
    weights, weights_dir = locate_weights(row, weights_dirs)
    model, _ = zoo.load(row["model"], weights=weights, weights_dir=weights_dir, download=False)
    spec = zoo.spec(row["model"])
    if spec.dataset == "cifar10":
        root, resize = str(cifar10_root(data)), None
        limit = None if int(row["images"]) == 10_000 else int(row["images"])
    else:
        root = imagenet or str(IMAGENET_VAL)
        if not Path(root).is_dir():
            raise FileNotFoundError(f"no ImageNet validation folder at {root}")
        transform = str(row.get("transform", ""))
        resize = int(transform[6:].split("-")[0]) if transform.startswith("resize") else None
        limit = None  # the committed ImageNet rows use every image of the folder
    batches = evaluation_batches(row["model"], root, limit, resize=resize)
    network = model
    if not pd.isna(row["num_hyperplanes"]):
        network = convert(model, int(row["num_hyperplanes"]), _settings(row), seed=int(row["seed"]))
    return evaluate(network, batches, progress=False).to_dict()


def verdict(row: pd.Series, measured: dict) -> str:
    problems = []
    images = int(row["images"])
    if int(measured["images"]) != images:
        problems.append(f"images {measured['images']} != {images}")
    if not accuracy_agrees(float(row["accuracy"]), float(measured["accuracy"]), images):
        changed = abs(float(row["accuracy"]) - float(measured["accuracy"])) * images / 100
        problems.append(f"{changed:.0f} predictions differ (allowed {allowed_prediction_change(images)})")
    for column in ("flops_dense", "flops_haste"):
        if not flops_agree(float(row[column]), float(measured[column])):
            problems.append(f"{column} {measured[column]:.6g} != {float(row[column]):.6g}")
    return "agrees" if not problems else "DISAGREES: " + "; ".join(problems)


def run(
    csvs: list[Path],
    rows: int | None,
    seed: int = 0,
    data: str | None = None,
    imagenet: str | None = None,
    weights_dirs: list[Path] | None = None,
    minutes: float = DEFAULT_MINUTES,
) -> list[Check]:
    """Re-measure ``rows`` rows sampled from ``csvs`` (None: as many as fit ``minutes``) and print one
    line per row as it finishes."""
    os.environ["HASTE_RESULT_CACHE"] = "0"  # a measurement, not the cache's copy of one
    from .prepare import checkpoint_quality_dir

    default_dirs = [checkpoint_quality_dir()]
    search = list(weights_dirs or [])
    for folder in default_dirs:
        search += sorted(p for p in folder.glob("*") if p.is_dir()) if folder.is_dir() else []
    tables = {str(path): read_result_csv(path) for path in csvs}
    checks = []
    for name, index in sample(tables, rows, seed, minutes):
        row = tables[name].loc[index]
        check = Check(
            Path(name).name,
            index,
            row["model"],
            row["num_hyperplanes"],
            row["seed"],
            int(row["images"]),
            float(row["accuracy"]),
            flops_reduction=float(row["flops_reduction"]),
        )
        start = time.monotonic()
        try:
            measured = measure(row, data, imagenet, search)
        except FileNotFoundError as error:
            check.verdict = f"not checked: {str(error).splitlines()[0]}"
        else:
            check.measured_accuracy = float(measured["accuracy"])
            check.measured_flops_reduction = float(measured["flops_reduction"])
            check.verdict = verdict(row, measured)
        check.seconds = time.monotonic() - start
        print(format_check(check), flush=True)
        checks.append(check)
    return checks


def format_check(check: Check) -> str:
    L = (
        "dense"
        if pd.isna(check.num_hyperplanes)
        else f"L={int(check.num_hyperplanes)} seed={int(check.seed)}"
    )
    return (
        f"{check.csv}:{check.row} {check.model} {L} ({check.images} images): accuracy "
        f"{check.accuracy:.2f} -> {check.measured_accuracy:.2f}, FLOPs reduction {check.flops_reduction:.4f}"
        f" -> {check.measured_flops_reduction:.4f}: {check.verdict} ({check.seconds:.0f} s)"
    )


def main(args) -> int:
    csvs = [Path(path) for path in args.csv] if args.csv else [RESULTS / name for name in MEASUREMENT_CSVS]
    how_many = f"{args.rows} rows" if args.rows else f"the rows that fit {args.minutes:g} minutes"
    print(
        f"re-measuring {how_many}, sampled (seed {args.seed}) from {', '.join(p.name for p in csvs)}; "
        f"tolerance: {PREDICTION_TOLERANCE} predictions per 10,000 images, FLOPs {FLOPS_TOLERANCE:g} "
        "relative",
        flush=True,
    )
    start = time.monotonic()
    weights_dirs = [Path(p) for p in args.weights_dir or []]
    checks = run(csvs, args.rows, args.seed, args.data, args.imagenet, weights_dirs, args.minutes)
    agreed = sum(c.verdict == "agrees" for c in checks)
    disagreed = sum(c.verdict.startswith("DISAGREES") for c in checks)
    print(
        f"{agreed} agree, {disagreed} disagree, {len(checks) - agreed - disagreed} not checked "
        f"({time.monotonic() - start:.0f} s)"
    )
    if disagreed:
        return 1
    return 0 if agreed else 1
