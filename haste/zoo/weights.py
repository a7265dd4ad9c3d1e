"""Finding, verifying and loading weight files.

Every file is checked against a recorded SHA-256 (or, for torchvision's published weights, the hash
prefix torchvision puts in the file name) before it is loaded: a mismatch is an error, never a silent
load. Our manifests must record full SHA-256 hashes (64 hex digits); the only prefixes accepted are
torchvision's, at least as long as the ones in its file names (8 hex digits). A file passed
explicitly by the user has no recorded hash; its SHA-256 is computed and carried into every result
instead.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .files import cache_dir
from .manifest import STAND_IN_MANIFEST, read_rows
from .transforms import Transform


def shipped_weights_dir() -> Path:
    """Where the shipped CIFAR-10 stand-ins and their ``manifest.csv`` are.

    ``$HASTE_WEIGHTS`` if set; else the repository's ``weights/`` next to the package (a source
    checkout, editable install or not); else ``<cache>/weights`` (a ``pip install`` without the
    repository: copy the repository's ``weights/`` folder there, or set ``HASTE_WEIGHTS``).
    """
    if os.environ.get("HASTE_WEIGHTS"):
        return Path(os.environ["HASTE_WEIGHTS"])
    checkout = Path(__file__).resolve().parents[2] / "weights"
    if (checkout / "manifest.csv").is_file():
        return checkout
    return cache_dir() / "weights"


def manifest_path() -> Path:
    return shipped_weights_dir() / STAND_IN_MANIFEST


class WeightsNotFoundError(FileNotFoundError):
    """The weights are neither on disk nor downloadable; the message says where to put which file."""


class ChecksumError(ValueError):
    """A weight file does not match its recorded SHA-256."""


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a model was loaded with; recorded next to every result."""

    model: str
    path: str
    sha256: str
    source: str  # "stand-in", "paper", "imported", "torchvision", "user file", "random init"
    transform: Transform | None = None  # how images are prepared for these weights
    meta: Mapping[str, str] = field(default_factory=dict)  # the manifest's row: accuracy, recipe, commit


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


SHA256_HEX_DIGITS = 64
# torchvision names its files <arch>-<first 8 (a few: 10) hex digits of the SHA-256>.pth
MIN_PREFIX_HEX_DIGITS = 8


def _hex(text) -> bool:
    return isinstance(text, str) and re.fullmatch(r"[0-9a-fA-F]*", text) is not None


def is_full_sha256(text) -> bool:
    return _hex(text) and len(text) == SHA256_HEX_DIGITS


def verify(path: str | os.PathLike, expected_sha256: str) -> str:
    """Return the file's SHA-256 if it starts with ``expected_sha256``.

    ``expected_sha256``: a full SHA-256, or a prefix of at least 8 hex digits (torchvision's file
    names); anything shorter or not hexadecimal is refused before the file is read.
    """
    if not _hex(expected_sha256) or not MIN_PREFIX_HEX_DIGITS <= len(expected_sha256) <= SHA256_HEX_DIGITS:
        raise ChecksumError(
            f"{path}: recorded hash {expected_sha256!r} is not a SHA-256 (64 hex digits) or a prefix of "
            f"at least {MIN_PREFIX_HEX_DIGITS} hex digits; the file cannot be checked"
        )
    actual = sha256_file(path)
    if not actual.startswith(expected_sha256.lower()):
        raise ChecksumError(
            f"{path}: SHA-256 {actual} does not match the recorded {expected_sha256}; "
            "the file is corrupt or not the expected weights. Delete it and fetch it again."
        )
    return actual


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` or ``.pt``/``.pth`` state dict (tensors only, no pickled code)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weight file not found: {path}")
    if path.stat().st_size == 0:
        raise ChecksumError(f"{path}: the file is empty (an interrupted download or copy?)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: object = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)  # a dict, or not: checked below
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
    except Exception as error:  # corrupt or truncated files surface as many exception types
        raise ChecksumError(f"{path}: cannot be read as a state dict ({error})") from error
    if not isinstance(state, dict):
        raise ChecksumError(f"{path}: expected a state dict, found {type(state).__name__}")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            kind = type(value).__name__
            article = "an" if kind[:1].lower() in "aeiou" else "a"
            raise ChecksumError(
                f"{path}: not a state dict of tensors: {key!r} holds {article} {kind}, not a tensor"
            )
    return state


def read_manifest(path: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """The shipped checkpoints' manifest, keyed by model name (empty if there is none yet).

    Every row must record the full SHA-256 of its file: a manifest with an empty or short hash is
    refused, since a prefix would let a corrupt checkpoint pass for the shipped one.
    """
    path = manifest_path() if path is None else Path(path)
    rows = read_rows(path)
    for name, row in rows.items():
        if not is_full_sha256(row.get("sha256")):
            raise ChecksumError(
                f"{path}: the entry of {name} records sha256 {row.get('sha256')!r}, not a full SHA-256 "
                f"({SHA256_HEX_DIGITS} hex digits)"
            )
    return rows
