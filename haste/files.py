"""Where haste keeps files, and writing them so that a crash never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def cache_dir() -> Path:
    """``$HASTE_CACHE``, else ``~/.cache/haste``: decoded datasets, downloads, the result cache."""
    return Path(os.environ.get("HASTE_CACHE", Path.home() / ".cache" / "haste"))


def atomic_save(obj, path: Path) -> None:
    """``torch.save`` through a temporary file, so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_text(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a per-process temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
