"""The public API on one screen: ``haste.<name>`` loads on first use, the command line's help needs no
torch, and seeds are bounded where they are drawn from."""

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import haste
from haste.repro.recipe import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_from_the_module_the_table_names():
    for name, module in haste._API.items():
        value = getattr(haste, name)
        assert value is getattr(__import__(f"haste.{module}", fromlist=[name]), name), name
    assert set(haste.__all__) == set(haste._API) and set(haste._API) <= set(dir(haste))
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        haste.nosuch  # noqa: B018


def test_the_type_checkers_imports_are_the_lazy_table():
    tree = ast.parse((ROOT / "haste" / "__init__.py").read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If))  # if TYPE_CHECKING:
    imported = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == haste._API


def test_a_submodule_is_an_attribute_after_import_haste_alone_and_never_hides_a_function():
    script = """
import types
import haste
assert isinstance(haste.cost, types.ModuleType)
from haste.convert import haste_layers  # the submodules named like the functions they define
import haste.evaluate
assert haste.convert.__name__ == "convert" and haste.evaluate.__name__ == "evaluate"
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr


def test_help_of_every_command_imports_no_torch():
    script = """
import sys
from haste.repro import cli
parser = cli.build_parser()
commands = next(a for a in parser._actions if a.dest == "command").choices
for argv in (["--help"], *([name, "--help"] for name in commands)):
    try:
        cli.main(argv)
    except SystemExit as stop:
        assert stop.code == 0, argv
print("torch" in sys.modules, len(commands))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    torch_loaded, commands = done.stdout.split()[-2:]
    assert torch_loaded == "False" and int(commands) >= 8


def test_a_seed_whose_last_layer_overflows_the_generators_is_refused_before_converting():
    model = nn.Sequential(nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3))
    limit = 2**64  # torch.Generator().manual_seed takes seeds below this
    largest = (limit - 1 - 2) // 10_000  # layer 2 (the last) draws from seed * 10,000 + 2
    converted = haste.convert(model, 4, skip=0, seed=largest)
    assert isinstance(converted[2], haste.HasteConv2d)
    with pytest.raises(ValueError, match=r"seed \d+: too large: layer i draws"):
        haste.convert(model, 4, skip=0, seed=largest + 1, inplace=True)
    assert all(type(m) is nn.Conv2d for m in model)  # nothing converted
    with pytest.raises(ValueError, match=r"\[0, 2\*\*64\)"):
        haste.draw_hyperplanes(9, 4, seed=limit)
    haste.draw_hyperplanes(9, 4, seed=limit - 1)  # the generators' own bound, accepted


def test_random_grouping_at_the_largest_layer_seed_draws_without_overflow():
    layer = haste.HasteConv2d.from_conv(nn.Conv2d(4, 4, 3), 4, seed=2**64 - 1, grouping="random")
    assert layer(torch.randn(1, 4, 6, 6)).shape == (1, 4, 4, 4)


def test_training_seeds_are_bounded_by_the_epochs_draws():
    TrainConfig("cifar10/resnet18", "data", epochs=2, seed=(2**64 - 1 - 2) // 100_003)
    for seed in ((2**64 - 1 - 2) // 100_003 + 1, -1):
        with pytest.raises(ValueError, match="epoch e draws from seed"):
            TrainConfig("cifar10/resnet18", "data", epochs=2, seed=seed)


def _tiny():
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3))


@pytest.mark.parametrize(
    "call",
    [
        lambda: haste.set_hyperplanes(haste.convert(_tiny(), 8), 10),  # deprecated name
        lambda: haste.set_execution(haste.convert(_tiny(), 8), "eval"),  # deprecated value
        lambda: setattr(haste.convert(_tiny(), 8)[2], "execution", "eval"),
        lambda: haste.convert(_tiny(), 8, skip=["nomatch"]),
        lambda: haste.convert(_tiny(), 8, skip=5),
        lambda: haste.convert(nn.Conv2d(3, 8, 3), 8),  # a single conv, left dense
    ],
    ids=["set_hyperplanes", "set_execution", "layer.execution", "skip pattern", "skip count", "single conv"],
)
def test_every_warning_names_the_callers_line_however_deep_it_is_raised(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    assert caught and [Path(w.filename) for w in caught] == [Path(__file__)] * len(caught)
