"""A cache of measurements, so an interrupted reproduction resumes instead of starting over.

A measurement (the ``EvalResult.to_dict()`` of one model, setting, L and seed) is stored as JSON
under ``$HASTE_CACHE/results`` and keyed by everything that can change it: the caller's key (model,
weights SHA-256, the data's contents (``haste.zoo.data.data_fingerprint``, never its path), images, batch
size, settings, L, seed), what of the run can change a result on its device (:func:`context_identity`,
which row reuse applies too: on the CPU torch's thread count, whose rounding in the GEMMs flips hash
bits whose projection is within rounding of zero; on a GPU not the CPU's threads) and the code
fingerprint (:func:`haste.repro.provenance.code_fingerprint`): an edit to code that decides values
recomputes everything, an edit to a docstring or message nothing.
A stored measurement keeps the commit that computed it. Random weights (no SHA-256) are never
cached, a corrupt entry is recomputed, and ``HASTE_RESULT_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping

import torch

from ..zoo.files import atomic_write_text, cache_dir
from .provenance import code_fingerprint, git_commit


def enabled() -> bool:
    return os.environ.get("HASTE_RESULT_CACHE", "1") != "0"


def run_context(device: torch.device | str = "cpu", batch_size: int | None = None) -> dict:
    """Where and how a measurement runs, as its row records it: ``batch_size``, ``device`` (its type)
    and ``threads`` (torch's CPU thread count, recorded on a GPU too)."""
    return {"batch_size": batch_size, "device": torch.device(device).type, "threads": torch.get_num_threads()}


def context_identity(context: Mapping) -> dict:
    """What of a measurement's :func:`run_context` can change its result, and so tells measurements
    apart: the one definition behind the cache's key and row reuse
    (:func:`haste.repro.result_rows.reusable_rows`).

    The batch size; the device type, but the CPU's (none, as in the keys written before devices
    were chosen), since a GPU rounds otherwise; and on the CPU only, the thread count: rounding in
    its GEMMs depends on it, while a GPU's result does not depend on the CPU's threads.
    """
    device = context.get("device") or "cpu"
    identity = {"batch_size": context["batch_size"]} if context.get("batch_size") is not None else {}
    if device == "cpu":
        identity["threads"] = context.get("threads")
    else:
        identity["device"] = device
    return identity


def cached_measurement(key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``, or its stored result for ``key``; the result gains a ``commit`` entry.

    ``key`` must be JSON-serialisable and contain ``weights_sha256``; an empty hash (random
    weights) bypasses the cache. Its ``device`` (absent: the CPU) and ``batch_size`` are completed
    by :func:`context_identity` with the thread count where that can change the result.
    """
    if not enabled() or not key.get("weights_sha256"):
        return {**compute(), "commit": git_commit()}
    context = {
        "batch_size": key.get("batch_size"),
        "device": key.get("device"),
        "threads": torch.get_num_threads(),
    }
    full_key = {**key, **context_identity(context), "code": code_fingerprint()}
    text = json.dumps(full_key, sort_keys=True, default=str)
    path = cache_dir() / "results" / f"{hashlib.sha256(text.encode()).hexdigest()}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored["key"] == json.loads(text):
                return stored["result"]
        except (ValueError, KeyError, OSError):
            pass  # corrupt or foreign: recompute and overwrite
    result = {**compute(), "commit": git_commit()}
    atomic_write_text(json.dumps({"key": json.loads(text), "result": result}, indent=1), path)
    return result
