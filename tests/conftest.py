import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from haste.data import CHECKOUT_CIFAR10, cifar10_root  # noqa: E402


def _real_cifar10() -> Path:
    """The CIFAR-10 the integration tests read: ``$HASTE_DATA``, else the checkout's default."""
    try:
        return cifar10_root()
    except FileNotFoundError:
        return CHECKOUT_CIFAR10  # absent: the tests that need it skip, naming it


SHARED_CIFAR = _real_cifar10()


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
    # Tests never write into the user's cache; integration tests reuse a per-session one.
    monkeypatch.setenv("HASTE_CACHE", str(tmp_path / "cache"))
