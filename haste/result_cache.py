"""A cache of measurements, so an interrupted reproduction resumes instead of starting over.

A measurement (the ``EvalResult.to_dict()`` of one model, setting, L and seed) is stored as JSON
under ``$HASTE_CACHE/results`` and keyed by everything that can change it: the caller's key (model,
weights SHA-256, data, images, settings, L, seed) plus the torch version and a SHA-256 of the
package's numeric source files. Any edit to those files recomputes everything; that is deliberate.
A stored measurement keeps the commit that computed it. Random weights (no SHA-256) are never
cached, a corrupt entry is recomputed, and ``HASTE_RESULT_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

from .data import cache_dir
from .provenance import git_commit

# The files whose code decides a measurement's value (not how it is reported).
_NUMERIC_SOURCES = ["hashing.py", "functional.py", "fused.py", "compressed.py", "module.py",
                    "convert.py", "flops.py", "evaluate.py", "data.py", "models/cifar.py",
                    "models/__init__.py", "models/weights.py"]  # fmt: skip


@cache
def code_fingerprint() -> str:
    """SHA-256 over the package's numeric source files and the torch version."""
    digest = hashlib.sha256(torch.__version__.encode())
    root = Path(__file__).resolve().parent
    for name in _NUMERIC_SOURCES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()


def enabled() -> bool:
    return os.environ.get("HASTE_RESULT_CACHE", "1") != "0"


def cached_measurement(key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()``, or its stored result for ``key``; the result gains a ``commit`` entry.

    ``key`` must be JSON-serialisable and contain ``weights_sha256``; an empty hash (random
    weights) bypasses the cache.
    """
    if not enabled() or not key.get("weights_sha256"):
        return {**compute(), "commit": git_commit()}
    full_key = {**key, "code": code_fingerprint()}
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")  # per process: concurrent runs never collide
    tmp.write_text(json.dumps({"key": json.loads(text), "result": result}, indent=1))
    os.replace(tmp, path)
    return result
