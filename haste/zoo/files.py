"""Where haste keeps files, and writing them so that a crash never leaves half a file."""

from __future__ import annotations

import csv
import glob
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import torch


def cache_dir() -> Path:
    """``$HASTE_CACHE``, else ``~/.cache/haste``: decoded datasets, downloads, the result cache."""
    return Path(os.environ.get("HASTE_CACHE", Path.home() / ".cache" / "haste"))


# a temporary file or folder of a writer of this host that has ended, or of any writer this much older,
# is left over from a crash: no write takes that long
STALE_AFTER_S = 24 * 3600


def writer_tag() -> str:
    """``<host>-<pid>``: in the names of temporary files and folders, so that a later run can tell the
    ones left by a writer that has gone (:func:`remove_stale`) from those of one still writing."""
    return f"{socket.gethostname()}-{os.getpid()}"


def _writer_gone(tag: str, path: Path) -> bool:
    host, _, pid = tag.rpartition("-")
    try:
        age = time.time() - path.lstat().st_mtime
    except FileNotFoundError:
        return False  # gone already: its writer renamed or removed it
    if age > STALE_AFTER_S:
        return True
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's (a shared folder): only the age tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # another user's process, alive
        return False
    return False


def remove_stale(folder: str | os.PathLike, prefix: str, suffix: str = "") -> list[Path]:
    """Remove the files and folders ``<folder>/<prefix><host>-<pid>...<suffix>`` whose writer has gone
    (see :data:`STALE_AFTER_S`), and older ones without a tag (``<prefix>...<suffix>``) a day old;
    returns what it removed."""
    folder, removed = Path(folder), list[Path]()
    if not folder.is_dir():
        return removed
    tagged = re.compile(re.escape(prefix) + r"(.+-\d+)[.-][^.]*" + re.escape(suffix))
    for path in folder.glob(glob.escape(prefix) + "*" + glob.escape(suffix)):
        match = tagged.fullmatch(path.name)
        if not _writer_gone(match.group(1) if match else "", path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale_temporaries(path: Path) -> None:
    remove_stale(path.parent, _temporary_prefix(path), ".tmp")
    # ``<name>.tmp<pid>``: temporaries no writer makes now, which existing folders may still hold
    for old in path.parent.glob(glob.escape(path.name) + ".tmp*"):
        pid = old.name[len(path.name) + 4 :]
        if pid.isdigit() and _writer_gone(f"{socket.gethostname()}-{pid}", old):
            old.unlink(missing_ok=True)


def _umask() -> int:
    try:  # Linux: read, not set, so that no other thread creates a file under a changed umask
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **options) -> Iterator[IO[Any]]:
    """``open(path, mode)`` for writing, such that ``path`` is either as it was or completely written.

    The block writes a temporary file in ``path``'s folder (``tempfile.mkstemp``: unique, so
    concurrent writers never share one), which replaces ``path`` when the block ends; on any error,
    a full disk included, it is removed and ``path`` left as it was. Temporary files of writers that
    have gone (a killed process) are removed first. ``options``: ``open``'s (``newline=""`` for CSV).
    """
    if "w" not in mode:
        raise ValueError(f"atomic_open writes a new file: mode must contain 'w', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    handle, tmp = tempfile.mkstemp(
        prefix=f"{_temporary_prefix(path)}{writer_tag()}.", suffix=".tmp", dir=path.parent
    )
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's are private; the result is an ordinary file
        with os.fdopen(handle, mode, **options) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())  # the data on disk before the rename makes it the file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold ``path`` as a lock file for the block: one holder at a time among processes and threads
    (``flock``; without it, as on Windows, no lock). The file is removed when the block ends; a
    waiter that then holds the removed file tries again on the new one."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path = Path(path)
    while True:
        handle = open(path, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # the holder before removed it: lock the one there now
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while holding it, so no one else holds this one
        handle.close()


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "w") as file:
        file.write(text)


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "wb") as file:
        file.write(data)


def atomic_save(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically (:func:`atomic_open`)."""
    with atomic_open(path, "wb") as file:
        torch.save(obj, file)


def atomic_write_csv(frame, path: str | os.PathLike, **options) -> None:
    """``frame.to_csv(path, index=False, **options)`` atomically (:func:`atomic_open`): a write that
    fails part-way (a full disk) leaves the earlier file whole."""
    with atomic_open(path, "w", newline="") as file:
        frame.to_csv(file, **{"index": False, **options})


def atomic_write_rows(rows, fieldnames, path: str | os.PathLike) -> None:
    """``rows`` (dicts) as a CSV with the columns ``fieldnames``, atomically (:func:`atomic_open`)."""
    with atomic_open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(fieldnames))
        writer.writeheader()
        writer.writerows(rows)


# the first and the last words of torch's message when weights_only=True refuses a pickle
_WEIGHTS_ONLY_START, _WEIGHTS_ONLY_END = "Weights only load failed", "generated/torch.load.html"


def one_line(error: BaseException, limit: int = 300) -> str:
    """An exception's message on one line, at most ``limit`` characters (strict loading errors list
    hundreds of keys).

    torch's refusal of a pickle that is not plain data (``weights_only=True``) puts its reason, the
    global the file would load, after some 400 characters of advice: it is condensed to that reason
    and the warning that loading the file anyway can run code, and kept whole.
    """
    text = " ".join(str(getattr(error, "reason", None) or error).split())
    start = text.find(_WEIGHTS_ONLY_START)
    if start < 0:
        return _cut(text, limit)
    end = text.find(_WEIGHTS_ONLY_END, start)
    end = len(text) if end < 0 else end + len(_WEIGHTS_ONLY_END)
    end += text[end : end + 1] == "."
    # the reason is never cut; what surrounds it is, each side to the limit
    return _cut(text[:start], limit) + _weights_only_reason(text[start:end]) + _cut(text[end:], limit)


def _cut(text: str, limit: int) -> str:
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
