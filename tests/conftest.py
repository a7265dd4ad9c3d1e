import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

SHARED_CIFAR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg"


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


@pytest.fixture
def cifar_root():
    if not (SHARED_CIFAR / "test").is_dir():
        pytest.skip(f"CIFAR-10 JPEG mirror not found at {SHARED_CIFAR}")
    return SHARED_CIFAR


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    # Tests never write into the user's cache; integration tests reuse a per-session one.
    monkeypatch.setenv("HASTE_CACHE", str(tmp_path / "cache"))
