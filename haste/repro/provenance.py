"""Provenance: which commit of this repository produced a result or a checkpoint, and the fingerprint
of the code that decides a measured value."""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
from functools import cache
from pathlib import Path


def git_commit() -> str:
    """The repository's HEAD commit, or "unknown" outside a git checkout.

    ``HASTE_COMMIT`` names it for a tree copied without ``.git`` (a training run on another machine).
    """
    if os.environ.get("HASTE_COMMIT"):
        return os.environ["HASTE_COMMIT"]
    try:
        root = Path(__file__).resolve().parents[1]
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# The modules whose code decides a measured value: those imported while a sweep measures a row (the
# method, data and model loading, the runners and the cache they go through), which
# tests/test_provenance.py checks by running a CIFAR-10 and an ImageNet sweep. Downloads, importers
# and the CLI are not among them: a checkpoint is known by its SHA-256. Their code is hashed without
# docstrings, comments, formatting or the text of messages (raised exceptions, warnings, prints), so
# editing those leaves committed rows reusable.
FINGERPRINTED = (
    "haste",
    "haste.compressed",
    "haste.conventions",
    "haste.convert",
    "haste.cost",
    "haste.evaluate",
    "haste.functional",
    "haste.fused",
    "haste.grouping",
    "haste.hashing",
    "haste.module",
    "haste.report",
    "haste.settings",
    "haste.tiling",
    "haste.weight_cache",
    "haste.zoo",
    "haste.zoo.cifar",
    "haste.zoo.data",
    "haste.zoo.files",
    "haste.zoo.imagenet_wnids",
    "haste.zoo.keras",
    "haste.zoo.manifest",
    "haste.zoo.paper_weights",
    "haste.zoo.sources",
    "haste.zoo.transforms",
    "haste.zoo.weights",
    "haste.repro",
    "haste.repro.analysis",
    "haste.repro.controls",
    "haste.repro.devices",
    "haste.repro.experiments",
    "haste.repro.paper",
    "haste.repro.provenance",
    "haste.repro.result_cache",
    "haste.repro.result_rows",
)
_MESSAGE_CALLS = {"print", "warn", "write", "set_description", "set_postfix"}


def _message_free(tree: ast.AST) -> ast.AST:
    """``tree`` without docstrings and without the arguments of raised exceptions and messages."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            node.exc.args, node.exc.keywords = [], []
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in _MESSAGE_CALLS:
                node.args, node.keywords = [], []
    return tree


def module_code(path: str | os.PathLike) -> str:
    """What of a module's source decides values: its syntax tree, messages and docstrings removed."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    return ast.dump(_message_free(tree), include_attributes=False)


@cache
def code_fingerprint() -> str:
    """SHA-256 over the code of the :data:`FINGERPRINTED` modules and the versions of torch and numba,
    which decide every measured value (a GPU's or a thread count's rounding is keyed apart, in the
    result cache and the rows)."""
    import numba
    import torch

    digest = hashlib.sha256(f"torch {torch.__version__}; numba {numba.__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    for name in FINGERPRINTED:
        parts = name.split(".")[1:]
        path = package.joinpath(*parts, "__init__.py")
        if not path.is_file():
            path = package.joinpath(*parts[:-1], f"{parts[-1]}.py")
        digest.update(name.encode() + b"\0" + module_code(path).encode())
    return digest.hexdigest()
