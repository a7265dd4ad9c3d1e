"""Saving figures for the reproduction: PNG and PDF side by side, byte-stable across runs."""

from __future__ import annotations

from pathlib import Path


def save_figure(fig, directory: str | Path, name: str, dpi: int = 150) -> list[Path]:
    """Write ``<directory>/<name>.png`` and ``.pdf``; no timestamps, so re-runs diff clean."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        path = directory / f"{name}.{suffix}"
        fig.savefig(path, dpi=dpi, metadata=metadata)
        paths.append(path)
    return paths
