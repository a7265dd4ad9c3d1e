"""Result rows: their columns, reading and writing them, and which committed rows a run may reuse.

Every row carries what produced it: model, weights and their SHA-256, every HASTE setting, the
hyperplane seed, the number of images, the package version and commit, the fingerprint of the code
that computed it (:func:`haste.repro.result_cache.code_fingerprint`), the data and the run context.
"""

from __future__ import annotations

import io
import os
from dataclasses import asdict

import numpy as np
import pandas as pd
import torch

from ..conventions import BY_NAME, TOTAL_COLUMNS
from ..settings import HasteSettings
from ..zoo.files import atomic_write_csv
from .result_cache import code_fingerprint, context_identity

DEFAULT_SETTINGS = HasteSettings()  # the paper's (frozen, so a safe default argument)


# what a row records of the data and of where and how it ran (haste.repro.result_cache.run_context)
RUN_COLUMNS = ["data_sha256", "batch_size", "device", "threads"]


RESULT_COLUMNS = [
    "model",
    "weights_source",
    "weights_sha256",
    "num_hyperplanes",
    "sparsity",
    "patch_size",
    "projection",
    "centre",
    "grouping",
    "skip",
    "include_pointwise",
    "seed",
    "images",
    "accuracy",
    "accuracy_drop",
    *TOTAL_COLUMNS,  # FLOP counts, and the reduction under every accounting convention
    "haste_version",
    "commit",
    "code_fingerprint",
    "transform",  # how the images were prepared (haste.zoo.transforms.Transform.name)
    *RUN_COLUMNS,
]


# every FLOPs reduction a row reports, one per accounting convention (haste.conventions)
REDUCTION_COLUMNS = [c for c in RESULT_COLUMNS if c in BY_NAME]


# what identifies a measurement: rows equal in these measured the same thing (whichever code and
# columns they were written with)
MEASUREMENT_KEYS = [c for c in RESULT_COLUMNS[: RESULT_COLUMNS.index("accuracy")] if c != "weights_source"]


PER_IMAGE_COLUMN = "per_image_correct"  # sweep(per_image=True): hex of the packed per-image hits


def pack_correct(correct: torch.Tensor) -> str:
    """Per-image hits (bool ``[N]``) as a hex string, 4 images a digit (the CSV's ``per_image_correct``)."""
    return np.packbits(correct.numpy().astype(bool)).tobytes().hex()


def unpack_correct(text: str, images: int) -> np.ndarray:
    """The inverse of :func:`pack_correct`: bool ``[images]``."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:images].astype(bool)


def reusable_rows(
    results: pd.DataFrame,
    model_name: str,
    weights_sha256: str,
    images: int,
    settings: HasteSettings = DEFAULT_SETTINGS,
    dense_accuracy: float | None = None,
    fingerprint: str | None = None,
    transform: str | None = None,
    per_image: bool = False,
    run: dict | None = None,
) -> dict:
    """The rows of ``results`` a :func:`sweep` may take instead of evaluating: ``{"dense": row,
    (L, seed): row, ...}`` (rows as dicts), or ``{}`` when none may be.

    A row counts when it was computed by the same code (its ``code_fingerprint`` equals
    ``fingerprint``, by default :func:`~haste.repro.result_cache.code_fingerprint`: rows without one
    never count) and model, checkpoint SHA-256, image count and every HASTE setting match. So after
    any change to the library's code, or to the torch or numba version, every row is recomputed. The
    stored dense row must be there (rows of it written more than once must agree), since the stored
    drops were computed from it, and ``dense_accuracy``, the dense model just measured on this call's
    data, must equal its accuracy:
    the rows do not name their data, and another copy of the test split (the lossless original
    against the JPEG mirror) has the same image count. Weights without a hash (random init) never
    count. With ``transform``, rows must name it (or, written before the column, be the default
    transform); with ``per_image``, rows must carry their per-image hits. With ``run`` (the
    ``data_sha256`` and :func:`~haste.repro.result_cache.run_context` of this call), rows must
    record the same data and an equal :func:`~haste.repro.result_cache.context_identity`, the
    definition the result cache keys on: the same batch size and device type, on the CPU the same
    thread count (a CSV without these columns never counts; a row that records no thread count
    counts for a CPU run, see :func:`run_matches`). Each row keeps the commit
    that computed it; after a change to the numeric code, recompute instead of reusing.
    """
    fingerprint = code_fingerprint() if fingerprint is None else fingerprint
    if not weights_sha256 or results.empty or "code_fingerprint" not in results:
        return {}
    if "transform" not in results:  # written before the column: the default transforms
        results = results.assign(transform=np.nan)
    if transform is not None:
        default = transform in ("resize256-crop224-torchvision", "normalise-cifar10")
        results = results[(results["transform"] == transform) | (results["transform"].isna() & default)]
    columns_kept = RESULT_COLUMNS + ([PER_IMAGE_COLUMN] if per_image else [])
    if per_image:
        if PER_IMAGE_COLUMN not in results:
            return {}
        results = results[results[PER_IMAGE_COLUMN].notna()]
    if run is not None:
        if not set(RUN_COLUMNS) <= set(results.columns):
            return {}
        results = results.loc[[run_matches(row, run) for _, row in results.iterrows()]]
    rows = results[
        (results["code_fingerprint"] == fingerprint)
        & (results["model"] == model_name)
        & (results["weights_sha256"] == weights_sha256)
        & (results["images"] == images)
    ]
    dense = rows[rows["num_hyperplanes"].isna()]
    if len(dense) == 0 or dense["accuracy"].nunique() != 1:  # none, or several that disagree
        return {}
    stored_accuracy = dense["accuracy"].iloc[0]
    if dense_accuracy is not None and not np.isclose(stored_accuracy, dense_accuracy, rtol=0, atol=1e-4):
        return {}  # other data
    haste_rows = rows[rows["num_hyperplanes"].notna()]
    for name, value in asdict(settings).items():
        column = haste_rows[name]
        if isinstance(value, float):
            matches = np.isclose(column.astype(float), value)
        elif isinstance(value, tuple):  # layer names: written to the CSV as the tuple's text
            matches = column.astype(str) == str(value)
        else:
            matches = column == value
        haste_rows = haste_rows[matches]
    columns = lambda row: {column: row[column] for column in columns_kept}
    found: dict = {"dense": columns(dense.iloc[0])}
    for _, row in haste_rows.iterrows():
        found.setdefault((int(row.num_hyperplanes), int(row.seed)), columns(row))
    return found


def _run_identity(run) -> dict:
    """The data and :func:`~haste.repro.result_cache.context_identity` of a row or a run, comparable
    between a row read from a CSV (numbers as floats, missing as NaN) and a run."""
    cell = lambda name: None if run.get(name) is None or pd.isna(run.get(name)) else run.get(name)
    context = {name: cell(name) for name in ("batch_size", "device", "threads")}
    for name in ("batch_size", "threads"):  # a CSV's numbers are floats
        value = context[name]
        if value is not None:
            context[name] = int(value)
    identity = context_identity(context)
    return {"data_sha256": cell("data_sha256"), **identity}


def run_matches(row, run) -> bool:
    """Whether a row (read from a CSV) was measured on the data and in the run context of ``run``
    (:func:`_run_identity`). A row that records no thread count (written before the column) ran on
    the CPU and counts for a CPU run of its data and batch size: at a fixed batch size the thread
    count changed no hash bit where it was measured (``results/hash_stability.csv``), and
    ``verify`` checks such rows like any other."""
    found, wanted = _run_identity(row), _run_identity(run)
    if found.get("threads", 0) is None and "device" not in wanted:
        wanted = {**wanted, "threads": None}
    return found == wanted


def save_rows(results: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Write result rows as CSV (6 significant digits) and return them as written.

    Summaries derived from the returned rows are the ones a later run derives when it reuses the
    rows from this file, so a regenerated summary diffs clean (from the unrounded values, their
    standard deviations moved in the 6th digit on the next run). Rows are written in the order of
    their measurement keys (a model's dense row first), so the same measurements give the same file
    however they were computed (reused, sharded, in another order).
    """
    keys = [c for c in MEASUREMENT_KEYS if c in results]
    # Sorted and written as the rows read back from a file: rows measured now beside rows reused
    # from the CSV make columns of Python ints and bools beside floats and strings, which sort in
    # another order and escape float_format, so the same measurements would give another file.
    as_read = read_rows(io.StringIO(results.to_csv(index=False, float_format="%.6g")))
    as_read = as_read.sort_values(keys, na_position="first", kind="stable", ignore_index=True)
    atomic_write_csv(as_read, path, float_format="%.6g")
    return read_rows(path)


def read_rows(path: str | os.PathLike | io.StringIO) -> pd.DataFrame:
    """Result rows from a CSV (a path or a buffer), hashes and per-image hits as text (not numbers)."""
    return pd.read_csv(
        path, dtype={"weights_sha256": str, "commit": str, "code_fingerprint": str, PER_IMAGE_COLUMN: str}
    )


def _normal(value):
    """A cell as it compares across a CSV and a fresh row: numbers to the CSV's 6 significant digits,
    ``"True"`` as ``True``, missing as ``None``, layer-name tuples as the text the CSV holds."""
    if isinstance(value, tuple):
        return str(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str):
        if value in ("True", "False"):
            return value == "True"
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


# transforms a row written before the column was added had (reusable_rows)
DEFAULT_TRANSFORMS = ("resize256-crop224-torchvision", "normalise-cifar10")


def measurement_identity(rows: pd.DataFrame) -> list[tuple]:
    """Per row, what it measured (:data:`MEASUREMENT_KEYS` and the transform) in a form that compares
    equal between a row read from a CSV and the same measurement made afresh: two rows of one CSV
    with equal identities are one measurement, and a newer one replaces the older."""
    columns = [rows[c] if c in rows else pd.Series(None, index=rows.index) for c in MEASUREMENT_KEYS]
    transform = rows["transform"] if "transform" in rows else pd.Series(None, index=rows.index)
    return [tuple(_normal(v) for v in values) for values in zip(*columns, transform.map(normal_transform))]


def normal_transform(transform) -> str:
    """A row's transform, the defaults as one (rows written before the column have none)."""
    return "default" if _normal(transform) in (None, *DEFAULT_TRANSFORMS) else str(transform)


def merge_rows(earlier: pd.DataFrame | None, results: pd.DataFrame, where: str = "the CSV") -> pd.DataFrame:
    """``results`` merged into the ``earlier`` rows of a CSV by :func:`measurement_identity`.

    A row of ``results`` replaces the earlier row of the same measurement; every other earlier row
    stays, those of models not run in particular (skipped for a missing checkpoint, or not asked
    for), except the rows of a model run here with another checkpoint, which this run supersedes
    (one checkpoint per model and CSV). Order: model by model as they first appear (earlier rows
    first), a model's new rows in the run's order, then its earlier rows that stay.
    """
    if earlier is None or earlier.empty:
        return results
    run_checkpoints = results.groupby("model")["weights_sha256"].agg(lambda shas: set(shas.dropna()))
    superseded = earlier.model.isin(run_checkpoints.index) & ~pd.Series(
        [sha in run_checkpoints.get(model, ()) for model, sha in zip(earlier.model, earlier.weights_sha256)],
        index=earlier.index,
    )
    if superseded.any():
        models_of = ", ".join(sorted(earlier.model[superseded].unique()))
        print(f"{where}: {superseded.sum()} rows of {models_of} of another checkpoint replaced by this run's")
    new = set(measurement_identity(results))
    replaced = pd.Series([i in new for i in measurement_identity(earlier)], index=earlier.index)
    stays = ~superseded & ~replaced
    kept = earlier[stays]
    not_run = sorted(set(kept.model) - set(results.model))
    if not_run:
        count = kept.model.isin(not_run).sum()
        print(f"{where}: kept {count} rows of models not run here ({', '.join(not_run)})")
    order = list(dict.fromkeys([*earlier.model, *results.model]))
    parts = [part for model in order for part in (results[results.model == model], kept[kept.model == model])]
    return pd.concat([part for part in parts if not part.empty], ignore_index=True)
