"""Provenance: which commit of this repository produced a result or a checkpoint."""

from __future__ import annotations

import os
import subprocess
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
