"""docs/extending.md's worked examples run as written (the code is read from the Markdown, so the
document and the test cannot drift apart)."""

import re
import tempfile
from pathlib import Path

import pytest

from haste import zoo

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def section_code(heading: str) -> str:
    """The ```python block of the ``## heading`` section of docs/extending.md."""
    text = DOC.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, flags=re.M | re.S)
    assert len(blocks) == 1, f"expected one python block under '## {heading}', found {len(blocks)}"
    return blocks[0]


def test_a_new_model_family_is_one_builder_and_one_registry_entry(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "MODELS", dict(zoo.MODELS))  # the example's entry stays in this test
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its weights folder: below tmp_path
    namespace: dict = {"__name__": "__main__"}
    exec(compile(section_code("A new model family"), str(DOC), "exec"), namespace)
    assert "cifar10/tiny_cnn" in zoo.MODELS
    assert Path(namespace["folder"]).parent == tmp_path
    assert capsys.readouterr().out.startswith("stand-in ")


def test_register_refuses_a_taken_name_and_an_unknown_source(monkeypatch):
    monkeypatch.setattr(zoo, "MODELS", dict(zoo.MODELS))
    taken = zoo.spec("cifar10/resnet18")
    with pytest.raises(ValueError, match="registered already"):
        zoo.register(taken)
    with pytest.raises(ValueError, match="not among"):
        zoo.register(
            zoo.ModelSpec(
                "cifar10/other", taken.builder, "cifar10", 32, taken.mean, taken.std, weights=("nowhere",)
            )
        )
