"""The weights manifests: one CSV row per checkpoint, the schema of every weights source.

Every manifest starts with the same three columns: the model's registry name, the file (relative to
the manifest's folder) and its full SHA-256, which is checked before the file loads. What follows
is the source's metadata: how the file was made (recipe, commit, the package it was converted from)
and how good it is (accuracy, on which data). The committed manifests are ``weights/manifest.csv``
(the stand-ins) and ``weights/imported.csv`` (converted by ``python -m haste import``); a download
of the paper's checkpoints writes its own next to the files.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

from .files import atomic_write_rows

KEY_COLUMNS = ("model", "file", "sha256")

# the columns of each source's manifest, in file order
COLUMNS = {
    "stand-in": (
        *KEY_COLUMNS,
        "test_accuracy",
        "epochs",
        "recipe",
        "data_source",
        "train_commit",
        "train_hours",
        "train_cpu_hours",
    ),
    "imported": (
        *KEY_COLUMNS,
        "source",
        "source_sha256",
        "top1",
        "images",
        "transform",
        "data_source",
        "commit",
    ),
    "paper": (*KEY_COLUMNS, "size_bytes", "archive", "archive_sha256", "archive_trust"),
}

STAND_IN_MANIFEST = "manifest.csv"  # in shipped_weights_dir(), and of a paper-weights download
IMPORTED_MANIFEST = "imported.csv"  # next to it


def read_rows(path: str | os.PathLike) -> dict[str, dict[str, str]]:
    """A manifest's rows keyed by model name; empty if there is no file."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


def write_rows(entries: Mapping[str, Mapping[str, object]], source: str, path: str | os.PathLike) -> None:
    """Write ``entries`` (keyed by model name) as ``source``'s manifest, sorted by model, atomically.
    A row with a column the schema lacks is refused: it would be dropped silently otherwise."""
    columns = COLUMNS[source]
    for name, row in entries.items():
        extra = set(row) - set(columns)
        if extra:
            raise ValueError(f"{name}: columns {sorted(extra)} are not in the {source} manifest")
    atomic_write_rows((entries[name] for name in sorted(entries)), columns, path)
