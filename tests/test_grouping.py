"""Grouping schemes: docs/extending.md's worked example, run as written, against the per-patch loop
of ``tests/reference.py``; the built-in schemes unchanged; the numba kernels' fallback notice."""

import re
import warnings
from pathlib import Path

import pytest
import torch
from reference import reference_haste_conv
from torch import nn

import haste
from haste import HasteConv2d
from haste.compressed import haste_conv2d_compressed
from haste.grouping import BUILT_IN, Grouping

EXTENDING = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
SECTION = "## A new hashing scheme"


def section_code(path: Path, heading: str) -> str:
    """The ```python blocks under ``heading`` (to the next ``## `` heading), joined in order."""
    text = path.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return "\n".join(re.findall(r"^```python\n(.*?)^```$", body, re.DOTALL | re.MULTILINE))


@pytest.fixture(scope="module")
def example() -> dict:
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fallback notice, checked below
        exec(compile(section_code(EXTENDING, SECTION), str(EXTENDING), "exec"), namespace)
    return namespace


def test_the_section_has_the_example():
    code = section_code(EXTENDING, SECTION)
    assert "class GaussianSigns(haste.Grouping)" in code and "haste.convert(" in code


# (c_in, c_out, kernel, stride, padding, height, width, patch): edge tiles, strides, 1-D kernels;
# sizes a strided conv reads to the last pixel (test_references.py: the known edge-tile bug)
CASES = [
    (6, 4, (3, 3), (1, 1), (1, 1), 8, 7, 3),
    (5, 3, (3, 3), (2, 1), (1, 1), 9, 6, 2),
    (6, 2, (3, 1), (1, 2), (1, 0), 7, 9, 3),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("execution", ["gemm", "compressed"])
@pytest.mark.parametrize("centre", [True, False])
def test_the_worked_example_matches_the_per_patch_reference(example, case, execution, centre):
    c_in, c_out, kernel, stride, padding, height, width, patch = case
    scheme = example["GaussianSigns"](bits=3, seed=5)
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding).double()
    layer = HasteConv2d.from_conv(conv, 4, patch_size=patch, grouping=scheme, centre=centre).double()
    layer.execution = execution
    x = torch.randn(2, c_in, height, width, dtype=torch.float64)
    x[:, 1] = x[:, 0] + 0.01 * torch.randn_like(x[:, 0])  # a near pair: buckets with members
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with torch.no_grad():
            out = layer(x)
    planes = scheme.projection(layer.hyperplanes.shape[0])  # the scheme's, not the layer's
    expected, buckets = reference_haste_conv(
        x, layer.weight, layer.bias, layer.stride, layer.padding, planes, patch, centre=centre
    )
    assert torch.allclose(out, expected, rtol=0, atol=1e-10)
    assert layer.stats.buckets == sum(buckets) and min(buckets) < c_in  # merged somewhere


def test_a_new_scheme_falls_back_to_the_torch_version_with_one_notice(example):
    class Halves(Grouping):
        name = "halves"

        def group(self, windows, hyperplanes, centre, seed):
            n, tiles, _, channels = windows.shape
            ids = (torch.arange(channels) >= channels // 2).long().expand(n, tiles, channels)
            return ids, torch.full((n, tiles), 2)

    layer = HasteConv2d(4, 3, 3, padding=1, grouping=Halves())
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad(), pytest.warns(UserWarning, match="'halves' has no numba kernel"):
        out = layer(x)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(layer(x), out)  # once
        layer.execution = "compressed"
        compressed = layer(x)
    assert torch.allclose(compressed, out, atol=1e-5)
    with pytest.raises(ValueError, match="numba"):
        haste_conv2d_compressed(
            x, layer.weight, None, 1, 1, layer.hyperplanes, 3, backend="numba", grouping=Halves()
        )


def test_a_scheme_that_answers_the_wrong_shape_is_refused():
    class Wrong(Grouping):
        def group(self, windows, hyperplanes, centre, seed):
            return torch.zeros(windows.shape[0], windows.shape[-1], dtype=torch.long), torch.ones(1)

    layer = HasteConv2d(4, 3, 3, padding=1, grouping=Wrong())
    with torch.no_grad(), warnings.catch_warnings(), pytest.raises(ValueError, match="returned ids"):
        warnings.simplefilter("ignore", UserWarning)
        layer(torch.randn(1, 4, 6, 6))


def test_the_built_in_schemes_run_their_own_paths_silently():
    for name in BUILT_IN:
        layer = HasteConv2d(4, 3, 3, padding=1, grouping=name)
        assert layer.grouping == name
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("error")
            layer(torch.randn(2, 4, 6, 6))
    converted = haste.convert(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)), 4, grouping="random")
    assert converted[1].grouping == "random"
