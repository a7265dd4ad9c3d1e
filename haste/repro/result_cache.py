"""A cache of measurements, so an interrupted reproduction resumes instead of starting over.

A measurement (the ``EvalResult.to_dict()`` of one model, setting, L and seed) is stored as JSON
under ``$HASTE_CACHE/results`` and keyed by everything that can change it: the caller's key (model,
weights SHA-256, the data's contents (``haste.data.data_fingerprint``, never its path), images, batch
size, settings, L, seed), torch's thread count (rounding in the
GEMMs depends on it and flips hash bits whose projection is within rounding of zero) and the code
fingerprint (:func:`haste.repro.provenance.code_fingerprint`): an edit to code that decides values
recomputes everything, an edit to a docstring or message nothing.
A stored measurement keeps the commit that computed it. Random weights (no SHA-256) are never
cached, a corrupt entry is recomputed, and ``HASTE_RESULT_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable

import torch

from ..files import atomic_write_text, cache_dir
from .provenance import code_fingerprint, git_commit


def enabled() -> bool:
    return os.environ.get("HASTE_RESULT_CACHE", "1") != "0"


def cached_measurement(key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``, or its stored result for ``key``; the result gains a ``commit`` entry.

    ``key`` must be JSON-serialisable and contain ``weights_sha256``; an empty hash (random
    weights) bypasses the cache.
    """
    if not enabled() or not key.get("weights_sha256"):
        return {**compute(), "commit": git_commit()}
    full_key = {**key, "code": code_fingerprint(), "threads": torch.get_num_threads()}
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
