"""A cache of measurements, so an interrupted reproduction resumes instead of starting over.

A measurement (the ``EvalResult.to_dict()`` of one model, setting, L and seed) is stored as JSON
under ``$HASTE_CACHE/results`` and keyed by everything that can change it: the caller's key (model,
weights SHA-256, data, images, batch size, settings, L, seed), torch's thread count (rounding in the
GEMMs depends on it and flips hash bits whose projection is within rounding of zero) and the code
fingerprint (:func:`code_fingerprint`). Any edit to the library recomputes everything; that is
deliberate.
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

from ..files import cache_dir
from .provenance import git_commit


@cache
def code_fingerprint() -> str:
    """SHA-256 over the library's source files and the versions of torch and numba.

    The rule: every module of the package outside the reproduction (``haste/repro``) and the
    ``python -m haste`` entry point, since any of them (the method, FLOP counting, data loading,
    models, weight loading) can decide a value.
    """
    import numba

    import haste

    digest = hashlib.sha256(f"torch {torch.__version__}; numba {numba.__version__}".encode())
    package = Path(haste.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] == "repro" or relative.name == "__main__.py":
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes())
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")  # per process: concurrent runs never collide
    tmp.write_text(json.dumps({"key": json.loads(text), "result": result}, indent=1))
    os.replace(tmp, path)
    return result
