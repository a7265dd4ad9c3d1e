import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from haste.zoo.data import CHECKOUT_CIFAR10, cifar10_root  # noqa: E402


def _real_cifar10() -> Path:
    """The CIFAR-10 the integration tests read: ``$HASTE_DATA``, else the checkout's default."""
    try:
        return cifar10_root()
    except FileNotFoundError:
        return CHECKOUT_CIFAR10  # absent: the tests that need it skip, naming it


SHARED_CIFAR = _real_cifar10()

# Every test runs against a private home and cache, from before the first test module is imported
# to the end of the session, session- and module-scoped fixtures included: nothing is read from or
# written to the user's ~/.cache/haste (decoded data, result entries, downloads).
PRIVATE_VARIABLES = ("HOME", "HASTE_CACHE", "XDG_CACHE_HOME", "TORCH_HOME")
_saved_environment: dict[str, str | None] = {}
PRIVATE: Path | None = None  # the session's private folder


def pytest_configure(config):
    global PRIVATE
    PRIVATE = Path(tempfile.mkdtemp(prefix="haste-tests-"))
    folders = {
        "HOME": PRIVATE / "home",
        "HASTE_CACHE": PRIVATE / "cache",
        "XDG_CACHE_HOME": PRIVATE / "home" / ".cache",
        "TORCH_HOME": PRIVATE / "torch",
    }
    for variable, folder in folders.items():
        _saved_environment[variable] = os.environ.get(variable)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(folder)


def pytest_unconfigure(config):
    for variable, value in _saved_environment.items():
        if value is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = value
    if PRIVATE is not None:
        shutil.rmtree(PRIVATE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def cifar_root():
    if not (SHARED_CIFAR / "test").is_dir():
        pytest.skip(f"CIFAR-10 not found at {SHARED_CIFAR} (set HASTE_DATA)")
    return SHARED_CIFAR


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # A fresh cache per test on top of the session's private one, so tests cannot see each other's
    # entries; fixtures of wider scope use the session's.
    monkeypatch.setenv("HASTE_CACHE", str(tmp_path / "cache"))
