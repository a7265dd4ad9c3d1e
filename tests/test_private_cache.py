"""Tests never touch the user's home or cache, fixtures of every scope included."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import conftest
import pytest
import torch

from haste.zoo.files import cache_dir

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
USER_LOCATIONS = ("HOME", "HASTE_CACHE", "XDG_CACHE_HOME", "TORCH_HOME")  # where haste, torch would write


@pytest.fixture(scope="module")
def module_environment():
    # a module-scoped fixture runs before the function-scoped HASTE_CACHE of conftest._cache
    return {"home": Path.home(), "cache": cache_dir(), "torch": Path(torch.hub.get_dir())}


def test_fixtures_of_wider_scope_see_the_private_home_and_cache(module_environment):
    private = conftest.PRIVATE
    assert private is not None and private.is_dir()
    for name, path in module_environment.items():
        assert path.is_relative_to(private), name


INNER_TEST = """
import pytest
from test_data import make_tree

from haste.zoo.data import load_cifar10
from haste.repro.result_cache import cached_measurement


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    # what the notebook fixture does before any function-scoped fixture runs: decode data, cache results
    load_cifar10(make_tree(tmp_path_factory.mktemp("data") / "cifar", per_class=1), "test")
    return cached_measurement({"weights_sha256": "ab" * 32, "seed": 0}, lambda: {"accuracy": 1.0})


def test_writes(written):
    assert written["accuracy"] == 1.0
"""


def test_a_session_writes_nothing_into_the_users_home(tmp_path):
    """A pytest session with tests/conftest.py and a module-scoped fixture that writes through haste,
    run with HOME at an empty folder and no HASTE_CACHE: the folder stays empty."""
    home, inner = tmp_path / "home", tmp_path / "inner"
    home.mkdir()
    inner.mkdir()
    (inner / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    (inner / "pytest.ini").write_text("[pytest]\n")
    environment = {key: value for key, value in os.environ.items() if key not in USER_LOCATIONS}
    environment.update(
        HOME=str(home),
        PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT), environment.get("PYTHONPATH", "")]),
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", str(inner)],
        cwd=inner,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert [str(path.relative_to(home)) for path in home.rglob("*")] == []


def test_the_per_test_cache_is_inside_the_tests_tmp_path(tmp_path):
    assert cache_dir() == tmp_path / "cache"
