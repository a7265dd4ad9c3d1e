"""The package's three layers: the method (core), the zoo above it, the reproduction above both.

Every module under ``haste/`` is parsed (``ast``, imports inside functions and ``TYPE_CHECKING``
blocks included, nothing imported). Core imports only core, and the core has no import cycle; the
zoo imports core and zoo; the baselines import core, zoo and baselines, never the reproduction; the
reproduction may import anything. ``haste/__main__.py`` only dispatches to the CLI, and is excepted;
every other module belongs to a layer.
"""

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "haste"
CORE = {
    "haste",
    "haste.settings",
    "haste.hashing",
    "haste.grouping",
    "haste.tiling",
    "haste.functional",
    "haste.fused",
    "haste.compressed",
    "haste.module",
    "haste.convert",
    "haste.cost",
    "haste.report",
    "haste.conventions",
    "haste.evaluate",
    "haste.weight_cache",
}
DISPATCH = "haste.__main__"  # python -m haste: the CLI's main, nothing else
MAY_IMPORT = {
    "core": {"core"},
    "zoo": {"core", "zoo"},
    "baselines": {"core", "zoo", "baselines"},
    "repro": {"core", "zoo", "baselines", "repro"},
}


def layer(module: str) -> str:
    """The layer of a module of the package: core, zoo, baselines or repro; ``unplaced`` for a
    top-level module that :data:`CORE` does not name (a new module must say where it belongs)."""
    if module in CORE:
        return "core"
    for name in ("repro", "baselines", "zoo"):
        if module == f"haste.{name}" or module.startswith(f"haste.{name}."):
            return name
    return "unplaced"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``path`` imports anywhere in its code."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules  # from . import fused
            found |= submodules
            if node.module or len(submodules) < len(node.names):  # names of ``target`` itself
                found.add(target)
    return {module for module in found if module in modules}


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports, for every module under ``root``."""
    paths = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    return {name: imports(path, root, set(paths)) - {name} for name, path in paths.items()}


def violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every import of a higher layer (the dispatching ``__main__`` excepted)."""
    return sorted(
        f"{module} ({layer(module)}) -> {target} ({layer(target)})"
        for module, targets in graph.items()
        if module != DISPATCH
        for target in targets
        if layer(target) not in MAY_IMPORT[layer(module)]
    )


def core_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle among the core modules (``[a, b, ..., a]``), or ``[]``."""
    core = {module: {t for t in targets if t in CORE} for module, targets in graph.items() if module in CORE}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> list[str]:
        state[module] = "open"
        for target in sorted(core.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[module] = "done"
        return []

    for module in sorted(core):
        if module not in state and (cycle := visit(module, [module])):
            return cycle
    return []


def test_every_layer_imports_only_what_it_may():
    graph = import_graph(PACKAGE)
    assert set(CORE) <= set(graph), sorted(set(CORE) - set(graph))  # the list names real modules
    assert violations(graph) == []


def test_every_module_has_a_layer():
    modules = set(import_graph(PACKAGE)) - {DISPATCH}
    assert sorted(m for m in modules if layer(m) == "unplaced") == []


def test_the_core_has_no_import_cycle():
    assert core_cycle(import_graph(PACKAGE)) == []


def test_main_only_dispatches_to_the_cli():
    assert import_graph(PACKAGE)[DISPATCH] == {"haste.repro.cli"}


def test_the_cost_model_imports_nothing_else_from_the_package():
    assert import_graph(PACKAGE)["haste.cost"] == set()


def test_the_checker_sees_a_core_module_importing_a_higher_layer_inside_a_function(tmp_path):
    copy = tmp_path / "haste"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    cost = copy / "cost.py"
    cost.write_text(cost.read_text() + "\n\ndef planted():\n    from .repro import tables\n")
    (copy / "zoo" / "planted.py").write_text("from haste.repro.cli import main\n")
    assert violations(import_graph(copy)) == [
        "haste.cost (core) -> haste.repro (repro)",
        "haste.cost (core) -> haste.repro.tables (repro)",
        "haste.zoo.planted (zoo) -> haste.repro.cli (repro)",
    ]


@pytest.mark.parametrize(
    "graph,expected",
    [
        (
            {"haste.cost": {"haste.report"}, "haste.report": {"haste.cost"}},
            ["haste.cost", "haste.report", "haste.cost"],
        ),
        ({"haste.module": {"haste.cost"}, "haste.cost": set()}, []),
        ({"haste.a": {"haste.repro.x"}, "haste.repro.x": {"haste.a"}}, []),  # not core modules
    ],
)
def test_the_checker_finds_a_core_cycle_in_a_synthetic_graph(graph, expected):
    assert core_cycle(graph) == expected


def test_the_checker_applies_each_layers_rule_to_a_synthetic_graph():
    graph = {
        "haste.zoo.cifar": {"haste.module", "haste.zoo.data"},
        "haste.baselines.pruning": {"haste.zoo", "haste.repro.tables"},
        "haste.repro.cli": {"haste.baselines.pruning", "haste.zoo"},
        "haste.settings": {"haste.zoo.data"},
    }
    assert violations(graph) == [
        "haste.baselines.pruning (baselines) -> haste.repro.tables (repro)",
        "haste.settings (core) -> haste.zoo.data (zoo)",
    ]
