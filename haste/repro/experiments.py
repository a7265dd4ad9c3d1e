"""Experiment runners behind the reproduction notebooks: sweeps, operating points, per-patch stats.

Every result row carries what produced it: model, weights and their SHA-256, every HASTE setting,
the hyperplane seed, the number of images, the package version and commit, and the fingerprint of
the code that computed it (:func:`haste.repro.result_cache.code_fingerprint`). Rows of earlier
results are reused only when they come from the same code.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import __version__, zoo
from ..conventions import BASELINE_COLUMNS, BY_NAME, CONVENTIONS, TOTAL_COLUMNS
from ..convert import convert, haste_layers, set_num_hyperplanes
from ..evaluate import evaluate
from ..settings import HasteSettings  # also here for the notebooks: experiments.HasteSettings(...)
from ..zoo.data import cifar10_batches, data_fingerprint, imagenet_val_loader
from ..zoo.files import atomic_write_csv
from ..zoo.paper_weights import paper_checkpoint
from .paper import allowed_drops
from .provenance import git_commit
from .result_cache import cached_measurement, code_fingerprint, context_identity, run_context

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


def _provenance(model_name: str, info, resize: int | None = 256) -> dict:
    return {
        "model": model_name,
        "weights_source": info.source,
        "weights_sha256": info.sha256,
        "haste_version": __version__,
        "commit": git_commit(),
        "code_fingerprint": code_fingerprint(),
        # how images are prepared for these weights (a WeightsInfo made by hand names none)
        "transform": (info.transform or zoo.spec(model_name).transform).name(resize),
    }


def evaluation_batches(
    model_name: str,
    data: str | os.PathLike,
    limit: int | None,
    batch_size: int = 256,
    download: bool = False,
    resize: int | None = 256,
):
    """The evaluation images of the model's dataset (CIFAR-10 test split or ImageNet val).

    ImageNet images are resized to ``resize`` (``None``: as they are) and centre-cropped to the
    model's input size, normalised as the model expects; see :func:`transform_name`.
    """
    spec = zoo.spec(model_name)
    if spec.dataset == "cifar10":
        return cifar10_batches(data, "test", batch_size, limit=limit, download=download)
    return imagenet_val_loader(  # streamed, not held
        data, batch_size, limit, mean=spec.mean, std=spec.std, resize=resize, crop=spec.input_size
    )


def transform_name(model_name: str, resize: int | None = 256) -> str:
    """The ``transform`` of a result row: ``normalise-cifar10``, ``resize256-crop224-torchvision``..."""
    return zoo.spec(model_name).transform.name(resize)


def pack_correct(correct: torch.Tensor) -> str:
    """Per-image hits (bool ``[N]``) as a hex string, 4 images a digit (the CSV's ``per_image_correct``)."""
    return np.packbits(correct.numpy().astype(bool)).tobytes().hex()


def unpack_correct(text: str, images: int) -> np.ndarray:
    """The inverse of :func:`pack_correct`: bool ``[images]``."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:images].astype(bool)


def sweep(
    model_name: str,
    hyperplanes: list[int],
    seeds: list[int],
    data: str | os.PathLike,
    weights: str | None = "default",
    limit: int | None = None,
    batch_size: int = 256,
    settings: HasteSettings = DEFAULT_SETTINGS,
    baseline: bool = True,
    progress: bool = True,
    weights_dir: str | os.PathLike | None = None,
    download: bool = False,
    reuse: pd.DataFrame | None = None,
    device: str | torch.device | None = None,
    shard: str | tuple[int, int] | Shard | None = None,
    resize: int | None = 256,
    per_image: bool = False,
) -> pd.DataFrame:
    """Dense baseline plus HASTE at every ``L`` for every hyperplane seed, one row each.

    The dense model is always evaluated (for ``accuracy_drop``); ``baseline`` adds its row.
    ``reuse``: earlier results (e.g. the committed CSV); every row found there that the same code
    computed (see :func:`reusable_rows`) is taken as it is, and only the others are evaluated.
    ``device``: where the model runs (see :func:`resolve_device`); batches move there one at a time.
    ``shard``: ``"K/N"``, evaluate only every N-th HASTE measurement from the K-th (see :class:`Shard`).
    ``resize``: ImageNet images' shorter side before the centre crop (``None``: no resize).
    ``per_image``: add the column ``per_image_correct`` (:func:`pack_correct`), for paired
    uncertainties of the drops (``haste.repro.uncertainty``).
    """
    device, shard = resolve_device(device), as_shard(shard)
    model, info = zoo.load(model_name, weights, weights_dir=weights_dir)
    model = model.to(device)
    batches = evaluation_batches(model_name, data, limit, batch_size, download, resize)
    provenance = _provenance(model_name, info, resize)
    transform = provenance["transform"]
    # the data by its images and labels, not where they are; the run as its rows record it
    run = {"data_sha256": data_fingerprint(batches), **run_context(device, batch_size)}
    provenance |= run
    # what a measurement depends on besides L, the seed, the code and the thread count (see
    # haste.repro.result_cache.context_identity)
    key = {
        "model": model_name,
        "weights_sha256": info.sha256,
        "data": run["data_sha256"],
        "limit": limit,
        "batch_size": batch_size,
        "transform": transform,
    } | device_key(device)
    if per_image:
        key["per_image"] = True
    rows = []

    def measure(label, network, **extra):
        def compute():
            result = evaluate(network(), batches, progress=progress, description=label)
            return {
                **result.to_dict(),
                **({PER_IMAGE_COLUMN: pack_correct(result.correct)} if per_image else {}),
            }

        return cached_measurement({**key, **extra}, compute)

    dense = measure(f"{model_name} dense", lambda: model, dense=True)
    stored = {}
    if reuse is not None:
        stored = reusable_rows(
            reuse,
            model_name,
            info.sha256,
            dense["images"],
            settings,
            dense["accuracy"],
            transform=transform,
            per_image=per_image,
            run=run,
        )
        _report_reuse(model_name, stored, hyperplanes, seeds, baseline)
    if baseline:
        rows.append(stored.get("dense", {**provenance, **dense, "accuracy_drop": 0.0}))
    for seed in seeds:
        converted = None  # converted once per seed, and only when a measurement is not cached

        def haste_model(num_hyperplanes, seed=seed):
            nonlocal converted
            if converted is None:
                converted = convert(model, num_hyperplanes, settings, seed=seed)
            set_num_hyperplanes(converted, num_hyperplanes)
            return converted

        for num_hyperplanes in hyperplanes:
            if shard is not None and not shard.takes_next():
                continue
            if (num_hyperplanes, seed) in stored:
                rows.append(stored[num_hyperplanes, seed])
                continue
            result = measure(
                f"{model_name} L={num_hyperplanes} seed={seed}",
                lambda n=num_hyperplanes: haste_model(n),
                settings=asdict(settings),
                num_hyperplanes=num_hyperplanes,
                seed=seed,
            )
            rows.append(
                {
                    **provenance,
                    **asdict(settings),
                    "num_hyperplanes": num_hyperplanes,
                    "seed": seed,
                    **result,
                    "accuracy_drop": dense["accuracy"] - result["accuracy"],
                }
            )
    return pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS + ([PER_IMAGE_COLUMN] if per_image else []))


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


def _report_reuse(model_name, stored, hyperplanes, seeds, baseline):
    wanted = (["dense"] if baseline else []) + [(L, seed) for seed in seeds for L in hyperplanes]
    reused = [stored[key] for key in wanted if key in stored]
    commits = ", ".join(sorted({str(row["commit"])[:10] for row in reused}))
    computed_at = f" (computed at {commits})" if reused else ""
    print(
        f"{model_name}: reused {len(reused)} of {len(wanted)} rows of the earlier results{computed_at}; "
        f"evaluating {len(wanted) - len(reused)}"
    )


def save_rows(results: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    """Write result rows as CSV (6 significant digits) and return them as written.

    Summaries derived from the returned rows are the ones a later run derives when it reuses the
    rows from this file, so a regenerated summary diffs clean (from the unrounded values, their
    standard deviations moved in the 6th digit on the next run). Rows are written in the order of
    their measurement keys (a model's dense row first), so the same measurements give the same file
    however they were computed (reused, sharded, in another order).
    """
    keys = [c for c in MEASUREMENT_KEYS if c in results]
    results = results.sort_values(keys, na_position="first", kind="stable", ignore_index=True)
    atomic_write_csv(results, path, float_format="%.6g")
    return read_rows(path)


def read_rows(path: str | os.PathLike) -> pd.DataFrame:
    """Result rows from a CSV, hashes and per-image hits as text (not numbers)."""
    return pd.read_csv(
        path, dtype={"weights_sha256": str, "commit": str, "code_fingerprint": str, PER_IMAGE_COLUMN: str}
    )


def sweep_models(
    model_names,
    hyperplanes,
    seeds,
    data,
    csv_path,
    settings: HasteSettings = DEFAULT_SETTINGS,
    limit: int | None = None,
    allow_random: bool = False,
    weights: str = "stand-in",
    device: str | torch.device | None = None,
    shard: str | tuple[int, int] | Shard | None = None,
    extend_grid: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`sweep` for several models, ``hyperplanes`` a callable giving each model's L values.

    Models without a checkpoint are skipped with a printed notice. Rows of the existing
    ``csv_path`` are reused only where the same code computed them (see :func:`reusable_rows`);
    all others are evaluated. The rows are merged into ``csv_path`` (:func:`merge_rows`: the rows
    of models not run stay) and its summary written next to it (``<stem>_summary.csv``); returns
    both as written.
    ``weights``: see :func:`load_arguments`. ``extend_grid``: up to this many L added per model
    whose grid does not bracket its operating point (see :func:`next_hyperplanes`). ``shard``:
    evaluate only this process's part of every model's measurements (see :class:`Shard`) into the
    result cache and write no CSV; a run without ``shard`` then takes them from the cache, extends
    the grids, and writes the CSVs.
    """
    csv_path = Path(csv_path)
    earlier = read_rows(csv_path) if csv_path.exists() else None
    shared_shard = as_shard(shard)  # one numbering across the models
    runs = []
    for name in model_names:
        try:
            load_args = load_arguments(name, weights, allow_random=allow_random)
        except FileNotFoundError as error:  # no checkpoint for this model: say so, run the others
            print(f"SKIPPED {name}: {error}")
            continue

        def run(grid, baseline=True, name=name, load_args=load_args):
            options = dict(limit=limit, settings=settings, reuse=earlier, device=device, baseline=baseline)
            return sweep(name, grid, seeds, data, **load_args, **options, shard=shared_shard)

        grid = list(hyperplanes(name))
        runs.append(run(grid))
        for _ in range(0 if shared_shard else extend_grid):
            extra = next_hyperplanes(summarize(runs[-1]), allowed_drops([name])[name])
            if extra is None:
                break
            print(f"{name}: L grid extended by L={extra} (the drop limit was not crossed inside it)")
            runs[-1] = pd.concat([runs[-1], run([extra], baseline=False)], ignore_index=True)
    if not runs:
        raise FileNotFoundError(f"no checkpoint for any of {', '.join(model_names)} (weights={weights!r})")
    results = pd.concat(runs, ignore_index=True)
    if shared_shard is not None:
        print(
            f"shard {shared_shard}: {len(results)} rows evaluated into the result cache; {csv_path.name} is "
            "written by a run without a shard, once every shard has finished"
        )
        return results, summarize(results)
    results = save_rows(merge_rows(earlier, results, csv_path.name), csv_path)
    summary = summarize(results)
    atomic_write_csv(summary, csv_path.with_name(f"{csv_path.stem}_summary.csv"), float_format="%.6g")
    return results, summary


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
    return [tuple(_normal(v) for v in values) for values in zip(*columns, transform.map(_normal_transform))]


def _normal_transform(transform) -> str:
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


# columns of a summary that are one value per model and setting, taken from the group's first row
# that has one rather than grouped by: rows written before a column was added have none
SUMMARY_CONSTANTS = ("flops_dense", "flops_dense_convlinear", "transform")


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over hyperplane seeds, one row per model, settings and L.

    The seeds of one measurement are averaged whichever code or machine computed them (each row
    records both); rows merged from an older CSV (:func:`merge_rows`) join the new ones.
    """
    keys = [
        c
        for c in RESULT_COLUMNS
        if c
        not in (
            "seed",
            "accuracy",
            "accuracy_drop",
            "flops_haste",
            "flops_overhead",
            "flops_filter_merge",
            *REDUCTION_COLUMNS,
            "commit",
            "haste_version",
            "code_fingerprint",
            *RUN_COLUMNS,  # recorded per row; seeds computed elsewhere are averaged alike
        )
    ]
    by = [c for c in keys if c not in SUMMARY_CONSTANTS]
    haste_rows = results.dropna(subset=["num_hyperplanes"])
    transform = haste_rows.get("transform", pd.Series(None, index=haste_rows.index, dtype=object))
    haste_rows = haste_rows.assign(_transform=[_normal_transform(t) for t in transform])
    metrics = ["accuracy", "accuracy_drop", *REDUCTION_COLUMNS]
    grouped = haste_rows.groupby([*by, "_transform"], dropna=False)
    constants = grouped[[c for c in SUMMARY_CONSTANTS if c in keys]].first()
    spread = grouped[metrics].std(ddof=0).add_suffix("_std")
    summary = constants.join(grouped[metrics].mean()).join(spread).join(grouped.size().rename("seeds"))
    summary = summary.reset_index()
    return summary[[*keys, *metrics, *spread.columns, "seeds"]]


def drop_at_reduction(summary: pd.DataFrame, reductions: list[float], by: str = "variant") -> pd.DataFrame:
    """Mean accuracy drop of each ``by`` group at the given FLOPs reductions (percent).

    Settings compared at equal L are not compared at equal cost: one that merges more saves more
    and loses more. This interpolates each group's (reduction, drop) points, linearly between its
    measured L; outside the measured range the drop is NaN rather than extrapolated.
    """
    rows = []
    for key, group in summary.groupby(by, sort=False):
        group = group.sort_values("flops_reduction")
        low, high = group.flops_reduction.min(), group.flops_reduction.max()
        for target in reductions:
            inside = low <= target <= high
            drop = np.interp(target, group.flops_reduction, group.accuracy_drop) if inside else np.nan
            rows.append({by: key, "flops_reduction": target, "accuracy_drop": float(drop)})
    return pd.DataFrame(rows)


def operating_points(summary: pd.DataFrame, max_drop: dict[str, float]) -> pd.DataFrame:
    """Per model, the L with the largest FLOPs reduction whose mean accuracy drop is <= max_drop.

    ``bracketed``: whether a measured L of larger reduction exceeds the drop; where none does, the
    point is only the grid's edge, and a warning says so (see :func:`grid_status`).
    """
    statuses = warn_unbracketed(summary, max_drop)
    chosen = []
    for model_name, group in summary.groupby("model"):
        limit = max_drop.get(model_name)
        if limit is None:
            continue
        eligible = group[group.accuracy_drop <= limit]
        if not eligible.empty:
            chosen.append(eligible.flops_reduction.idxmax())
    # rows selected from the summary keep its column types, even when none is chosen
    points = summary.loc[chosen].reset_index(drop=True)
    return points.assign(bracketed=points.model.map(statuses).eq("bracketed").astype(bool))


def patch_compression(
    model_name: str,
    num_hyperplanes: int,
    data,
    seed: int = 0,
    weights: str | None = "default",
    limit: int | None = 1000,
    bins: int = 20,
    settings: HasteSettings = DEFAULT_SETTINGS,
    progress: bool = True,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Histogram per layer of the fraction of input channels kept (buckets / channels) per patch."""
    model, info = zoo.load(model_name, weights, weights_dir=weights_dir)
    converted = convert(model.to(resolve_device(device)), num_hyperplanes, settings, seed=seed)
    batches = evaluation_batches(model_name, data, limit)
    result = evaluate(converted, batches, progress=progress, record_patches=True)
    edges = torch.linspace(0, 1, bins + 1)
    provenance = _provenance(model_name, info)
    rows = []
    for name, layer in haste_layers(converted):
        kept = torch.cat([k.flatten() for k in layer.stats.kept_fraction])
        counts = torch.histogram(kept, bins=edges).hist
        for left, right, count in zip(edges[:-1], edges[1:], counts):
            rows.append(
                {
                    **provenance,
                    "layer": name,
                    "in_channels": layer.in_channels,
                    "num_hyperplanes": num_hyperplanes,
                    "seed": seed,
                    "images": result.images,
                    "bin_left": round(float(left), 4),
                    "bin_right": round(float(right), 4),
                    "patches": int(count),
                    "mean_kept": float(kept.mean()),
                }
            )
    return pd.DataFrame(rows)


def output_dir(results_dir: str | os.PathLike, quick: bool, weights: str = "stand-in") -> Path:
    """Where a notebook writes: ``results_dir``, or its ``quick/`` subfolder in quick mode; results
    of the paper's checkpoints (``weights`` "paper" or a folder) in ``paper-weights/`` below it.
    Not created here: the writers create it with their first file, so a run that fails first leaves
    no empty folder."""
    paper = weights not in STAND_IN_CHOICES + ("random",)
    return Path(results_dir) / (PAPER_RESULTS if paper else "") / ("quick" if quick else "")


def available_weights(model_name: str, allow_random: bool) -> str | None:
    """``"default"`` if the model's checkpoint is available; ``None`` (random init) if allowed."""
    try:
        zoo.load(model_name, download=False)
        return "default"
    except FileNotFoundError:
        if allow_random:
            return None
        raise


def l1_pruning_control(
    model_name: str,
    hyperplanes: list[int],
    seeds: list[int],
    data,
    weights: str | None = "default",
    limit: int | None = None,
    settings: HasteSettings = DEFAULT_SETTINGS,
    progress: bool = True,
    weights_dir: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Control: static, data-free L1-norm pruning of input channels at HASTE's FLOPs, no fine-tuning.

    For every L and seed, HASTE runs first; each of its layers then keeps, in the dense model, its
    ``round(f * C_in)`` input channels with the largest L1 norm of their filter slices, where ``f``
    is the fraction of conv FLOPs HASTE kept in that layer. The others are zeroed. Same FLOPs as
    HASTE without its overhead, but fixed channels for every image and patch.
    """
    device, batch_size = resolve_device(device), 256
    model, info = zoo.load(model_name, weights, weights_dir=weights_dir)
    model = model.to(device)
    batches = evaluation_batches(model_name, data, limit, batch_size)
    dense = evaluate(model, batches, progress=progress, description=f"{model_name} dense").to_dict()
    # the data and the run context, as a sweep's rows record them
    run = {"data_sha256": data_fingerprint(batches), **run_context(device, batch_size)}
    provenance = _provenance(model_name, info) | run
    rows = []
    for seed in seeds:
        converted = convert(model, hyperplanes[0], settings, seed=seed)
        for num_hyperplanes in hyperplanes:
            set_num_hyperplanes(converted, num_hyperplanes)
            evaluate(converted, batches, progress=progress, description=f"HASTE L={num_hyperplanes}")
            pruned, saved = copy.deepcopy(model), 0.0
            for name, layer in haste_layers(converted):
                keep = round(layer.stats.conv / layer.stats.dense * layer.in_channels)
                conv = pruned.get_submodule(name)
                assert isinstance(conv, torch.nn.Conv2d)
                norms = conv.weight.detach().abs().sum(dim=(0, 2, 3))
                dropped = norms.argsort(descending=True)[keep:]
                with torch.no_grad():
                    conv.weight[:, dropped] = 0
                saved += layer.stats.dense / layer.stats.images * len(dropped) / layer.in_channels
            result = evaluate(pruned, batches, progress=progress, description="L1 pruning").to_dict()
            spent = dense["flops_dense"] - saved
            # no overhead to count: under every convention, the saving over its baseline
            reductions = {c.name: 100 * saved / dense[BASELINE_COLUMNS[c.baseline]] for c in CONVENTIONS}
            rows.append(
                {
                    **provenance,
                    **asdict(settings),
                    "grouping": "l1-pruning",
                    "num_hyperplanes": num_hyperplanes,
                    "seed": seed,
                    **result,
                    "flops_haste": spent,
                    "flops_overhead": 0.0,
                    "flops_filter_merge": 0.0,
                    **reductions,
                    "accuracy_drop": dense["accuracy"] - result["accuracy"],
                }
            )
    return pd.DataFrame(rows).reindex(columns=RESULT_COLUMNS)


# --- weights choice, devices, shards and grid edges ---------------------------------------------

STAND_IN_CHOICES = ("stand-in", "default")
PAPER_RESULTS = "paper-weights"  # the folder below results/ for the paper's checkpoints' results


def load_arguments(model_name: str, weights: str = "stand-in", allow_random: bool = False) -> dict:
    """``zoo.load``'s ``weights`` and ``weights_dir`` for the notebooks' ``weights`` parameter.

    ``"stand-in"``: the shipped checkpoint (random init instead if it is missing and
    ``allow_random``); ``"paper"``: the zoo's checkpoint where ``python -m haste download
    paper-weights`` put it; a folder: its ``<arch>.pt``; ``"random"``: random init. A missing
    checkpoint raises ``FileNotFoundError`` saying how to get it.
    """
    if weights in STAND_IN_CHOICES:
        return {"weights": available_weights(model_name, allow_random), "weights_dir": None}
    if weights == "random":
        return {"weights": None, "weights_dir": None}
    weights_dir = None if weights == "paper" else weights
    if weights_dir is not None and not Path(weights_dir).is_dir():
        raise ValueError(f"weights={weights!r}: expected 'stand-in', 'paper' or a folder of <arch>.pt files")
    paper_checkpoint(model_name, weights_dir)
    return {"weights": "paper", "weights_dir": weights_dir}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` or ``"auto"``: the GPU when one is present, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: {str(error).splitlines()[0]}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} asked for, but torch finds no CUDA GPU here; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device} asked for, but torch finds {torch.cuda.device_count()} GPU(s)")
    return device


def device_key(device: torch.device) -> dict:
    """What the result cache's key holds of the device: its type, except the CPU's (none, so that
    measurements cached before devices were chosen still count). A GPU's rounding may flip a code
    whose projection is within rounding of zero, so its measurements are kept apart from the CPU's;
    they are shared across GPUs of one type, which is what lets shards on several GPUs merge."""
    return {} if device.type == "cpu" else {"device": device.type}


class Shard:
    """Part ``index`` of ``count``: the HASTE measurements of a run, numbered in the run's fixed order
    (model, seed, L), that this process evaluates are those numbered ``index``, ``index + count``, ...

    One object is shared by the sweeps of a run (``sweep_models``), so the numbering runs on
    across models. Every shard also evaluates the dense models, which every row's drop needs.
    """

    def __init__(self, index: int, count: int):
        if not 0 <= index < count:
            raise ValueError(f"shard {index}/{count}: expected K/N with 0 <= K < N")
        self.index, self.count, self._position = index, count, 0

    def takes_next(self) -> bool:
        """Whether the next measurement in the run's order is this shard's (and count it)."""
        position, self._position = self._position, self._position + 1
        return position % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def as_shard(shard: str | tuple[int, int] | Shard | None) -> Shard | None:
    """``"K/N"`` or ``(K, N)`` as a :class:`Shard` (a ``Shard`` as it is; ``None`` for no sharding)."""
    if shard is None or isinstance(shard, Shard):
        return shard
    try:
        index, count = (int(part) for part in (shard.split("/") if isinstance(shard, str) else shard))
    except (ValueError, TypeError) as error:
        raise ValueError(f"shard {shard!r}: expected K/N, e.g. 0/4 for the first of four") from error
    return Shard(index, count)


def grid_status(group: pd.DataFrame, max_drop: float) -> str:
    """Whether one model's sweep summary brackets its operating point (largest FLOPs reduction with
    a mean drop <= ``max_drop``): ``"bracketed"`` when a measured L of larger reduction exceeds the
    drop; ``"within at every L"`` when none does (the grid's edge is no operating point);
    ``"above at every L"`` when no L is within the drop."""
    eligible = group[group.accuracy_drop <= max_drop]
    if eligible.empty:
        return "above at every L"
    if (group.flops_reduction > eligible.flops_reduction.max()).any():
        return "bracketed"
    return "within at every L"


def next_hyperplanes(summary: pd.DataFrame, max_drop: float, step: int = 2) -> int | None:
    """The rule that extends a grid that does not bracket the operating point: ``step`` below its
    smallest L when the drop is within ``max_drop`` at every L, ``step`` above its largest when it
    exceeds it at every L; ``None`` when bracketed, or when L would fall below 1."""
    status = grid_status(summary, max_drop)
    if status == "bracketed":
        return None
    if status == "above at every L":
        return int(summary.num_hyperplanes.max()) + step
    smallest = int(summary.num_hyperplanes.min()) - step
    return smallest if smallest >= 1 else None


def warn_unbracketed(summary: pd.DataFrame, max_drop: dict[str, float]) -> dict[str, str]:
    """:func:`grid_status` per model; a warning for every model whose grid does not bracket its point."""
    statuses = {}
    for model_name, group in summary.groupby("model"):
        if model_name not in max_drop:
            continue
        limit = max_drop[model_name]
        status = statuses[model_name] = grid_status(group, limit)
        grid = group.get("num_hyperplanes", pd.Series(dtype=float)).dropna()
        low = f" (down to L={grid.min():g})" if len(grid) else ""
        high = f" (up to L={grid.max():g})" if len(grid) else ""
        if status == "within at every L":
            warnings.warn(
                f"{model_name}: the mean drop is within {limit} pp at every L measured{low}: its "
                "operating point lies beyond the grid, and the point reported is only the grid's edge "
                "(extend the grid to smaller L)",
                stacklevel=3,
            )
        elif status == "above at every L":
            warnings.warn(
                f"{model_name}: the mean drop exceeds {limit} pp at every L measured{high}: no operating "
                "point in the grid (extend it to larger L)",
                stacklevel=3,
            )
    return statuses
