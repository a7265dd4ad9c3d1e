"""Where haste keeps files, and writing them so that a crash never leaves half a file."""

from __future__ import annotations

import os
import re
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


# the first and the last words of torch's message when weights_only=True refuses a pickle
_WEIGHTS_ONLY_START, _WEIGHTS_ONLY_END = "Weights only load failed", "generated/torch.load.html"


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters.

    torch's refusal of a pickle that is not plain data (``weights_only=True``) puts its reason, the
    global the file would load, after some 400 characters of advice: it is condensed to that reason
    and the warning that loading the file anyway can run code.
    """
    text = " ".join(str(getattr(error, "reason", None) or error).split())
    start = text.find(_WEIGHTS_ONLY_START)
    if start >= 0:
        end = text.find(_WEIGHTS_ONLY_END, start)
        end = len(text) if end < 0 else end + len(_WEIGHTS_ONLY_END)
        end += text[end : end + 1] == "."
        text = text[:start] + _weights_only_reason(text[start:end]) + text[end:]
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _weights_only_reason(message: str) -> str:
    message = re.sub(r"\x1b\[[0-9;]*m", "", message)  # torch prints a phrase in bold
    if "WeightsUnpickler error:" in message:
        reason = message.split("WeightsUnpickler error:", 1)[1]
    else:
        reason = message.split("trusted source.", 1)[-1]
    for tail in ("Please use `torch.serialization", "Check the documentation of torch.load"):
        reason = reason.split(tail, 1)[0]
    reason = reason.strip(" .") or "see torch.load's weights_only"
    return (
        f"torch refused to unpickle it as plain data ({reason}); loading it with weights_only=False "
        "could run code it carries: only for a file from a trusted source"
    )
