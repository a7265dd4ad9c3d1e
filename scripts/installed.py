"""Exit 0 when this checkout is installed with everything pyproject.toml asks for (so that
scripts/install.sh can skip pip, which takes seconds and prints warnings), else 1."""

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

root = Path(__file__).resolve().parents[1]
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
wanted = project["dependencies"] + [
    r for extra in ("notebooks", "test") for r in project["optional-dependencies"][extra]
]
found = importlib.util.find_spec("haste")
if found is None or Path(found.origin).resolve().parent != root / "haste":
    sys.exit(1)  # not installed, or installed from another checkout
for text in wanted:
    requirement = Requirement(text)
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        sys.exit(1)
    if not requirement.specifier.contains(version, prereleases=True):
        sys.exit(1)
