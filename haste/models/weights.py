"""Finding, verifying and loading weight files.

Every file is checked against a recorded SHA-256 (or, for torchvision's published weights, the hash
prefix torchvision puts in the file name) before it is loaded: a mismatch is an error, never a silent
load. A file passed explicitly by the user has no recorded hash; its SHA-256 is computed and carried
into every result instead.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..files import cache_dir


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
    return shipped_weights_dir() / "manifest.csv"


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
    source: str  # "stand-in" (shipped, trained here), "torchvision", "user file", "random init"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | os.PathLike, expected_sha256: str) -> str:
    """Return the file's SHA-256 if it starts with ``expected_sha256`` (a full hash or a prefix)."""
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
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
    except Exception as error:  # corrupt or truncated files surface as many exception types
        raise ChecksumError(f"{path}: cannot be read as a state dict ({error})") from error
    if not isinstance(state, dict):
        raise ChecksumError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def read_manifest(path: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """The shipped checkpoints' manifest, keyed by model name (empty if there is none yet)."""
    path = manifest_path() if path is None else Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}
