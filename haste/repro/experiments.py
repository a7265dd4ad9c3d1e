"""Experiment runners behind the reproduction notebooks: sweeps over L and seeds, per-patch stats,
and the notebooks' choice of weights and output folder.

The rows they return are :mod:`haste.repro.result_rows`'s; rows of earlier results are reused only
when the same code computed them (:func:`haste.repro.result_rows.reusable_rows`).
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from .. import __version__, zoo
from ..convert import convert, haste_layers, set_num_hyperplanes
from ..evaluate import evaluate
from ..settings import HasteSettings  # also here for the notebooks: experiments.HasteSettings(...)
from ..zoo.data import cifar10_batches, data_fingerprint, imagenet_val_loader
from ..zoo.files import atomic_write_csv
from ..zoo.paper_weights import paper_checkpoint
from .analysis import next_hyperplanes, summarize
from .devices import Shard, as_shard, device_key, resolve_device
from .paper import allowed_drops
from .provenance import git_commit
from .result_cache import cached_measurement, code_fingerprint, run_context
from .result_rows import (
    DEFAULT_SETTINGS,
    PER_IMAGE_COLUMN,
    RESULT_COLUMNS,
    merge_rows,
    pack_correct,
    read_rows,
    reusable_rows,
    save_rows,
)


def row_provenance(model_name: str, info, resize: int | None = 256) -> dict:
    """The columns every result row of ``model_name`` with weights ``info`` carries: which weights,
    which code (version, commit, fingerprint) and which input transform."""
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
    provenance = row_provenance(model_name, info, resize)
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


def _report_reuse(model_name, stored, hyperplanes, seeds, baseline):
    wanted = (["dense"] if baseline else []) + [(L, seed) for seed in seeds for L in hyperplanes]
    reused = [stored[key] for key in wanted if key in stored]
    commits = ", ".join(sorted({str(row["commit"])[:10] for row in reused}))
    computed_at = f" (computed at {commits})" if reused else ""
    print(
        f"{model_name}: reused {len(reused)} of {len(wanted)} rows of the earlier results{computed_at}; "
        f"evaluating {len(wanted) - len(reused)}"
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
    provenance = row_provenance(model_name, info)
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
