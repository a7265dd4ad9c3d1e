"""Controls the paper lacks, measured beside HASTE and written as its rows are: static L1-norm
pruning at HASTE's per-layer FLOPs (the random-grouping control is a grouping, ``haste.grouping``)."""

from __future__ import annotations

import copy
import os
from dataclasses import asdict

import pandas as pd
import torch

from .. import zoo
from ..conventions import BASELINE_COLUMNS, CONVENTIONS
from ..convert import convert, haste_layers, set_num_hyperplanes
from ..evaluate import evaluate
from ..settings import HasteSettings
from ..zoo.data import data_fingerprint
from .devices import resolve_device
from .experiments import evaluation_batches, row_provenance
from .result_cache import run_context
from .result_rows import DEFAULT_SETTINGS, RESULT_COLUMNS


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
    provenance = row_provenance(model_name, info) | run
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
