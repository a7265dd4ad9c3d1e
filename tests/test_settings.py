"""One spelling of the HASTE settings: checked once, when set, with the same message everywhere."""

import json

import pytest
from test_data import make_tree
from torch import nn

import haste
from haste import HasteConv2d, HasteSettings, zoo
from haste.repro import experiments
from haste.repro.cli import main

BAD_VALUES = [  # (setting, bad value, its text on the command line, message)
    ("num_hyperplanes", 2.5, "2.5", "num_hyperplanes must be an integer in [1, 53], not 2.5"),
    ("num_hyperplanes", True, None, "num_hyperplanes must be an integer in [1, 53], not True"),
    ("num_hyperplanes", 0, "0", "num_hyperplanes must be an integer in [1, 53], not 0"),
    ("num_hyperplanes", 54, "54", "num_hyperplanes must be an integer in [1, 53], not 54"),
    ("patch_size", 2.5, "2.5", "patch_size must be an integer >= 1, not 2.5"),
    ("patch_size", 0, "0", "patch_size must be an integer >= 1, not 0"),
    ("sparsity", 1.0, "1.0", "sparsity must be a number in [0, 1), not 1.0"),
    ("sparsity", "0.5", None, "sparsity must be a number in [0, 1), not '0.5'"),
    ("projection", "binary", "binary", "projection must be one of ['ternary', 'gaussian'], not 'binary'"),
    ("grouping", "kmeans", "kmeans", "grouping must be one of ['lsh', 'random'], not 'kmeans'"),
    ("centre", "yes", None, "centre must be True or False, not 'yes'"),
    ("seed", -1, "-1", "seed must be an integer in [0, 2**64), not -1"),
    ("seed", 1.5, "1.5", "seed must be an integer in [0, 2**64), not 1.5"),
    ("skip", -1, "-1", "skip must be an integer >= 0 or layer names, not -1"),
]
LAYER_ATTRIBUTES = {"num_hyperplanes", "patch_size", "sparsity", "projection", "grouping", "centre", "seed"}
DATACLASS_FIELDS = set(HasteSettings.__dataclass_fields__)


def small_model():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))


@pytest.mark.parametrize("name,value,text,message", BAD_VALUES)
def test_bad_values_are_refused_when_set_with_one_message(name, value, text, message, capsys):
    if name in DATACLASS_FIELDS:
        with pytest.raises(ValueError) as error:
            HasteSettings(**{name: value})
        assert str(error.value) == message
    if name in LAYER_ATTRIBUTES:
        with pytest.raises(ValueError) as error:  # at construction
            HasteConv2d(3, 4, 3, **{name: value})
        assert str(error.value) == message
        layer = HasteConv2d.from_conv(nn.Conv2d(3, 4, 3), 6)
        with pytest.raises(ValueError) as error:  # as an attribute, before any forward pass
            setattr(layer, name, value)
        assert str(error.value) == message
        assert layer.num_hyperplanes == 6 and layer.patch_size == 3 and layer.grouping == "lsh"
    model = small_model()
    with pytest.raises(ValueError) as error:  # convert refuses before it converts anything
        if name == "num_hyperplanes":
            haste.convert(model, value)
        elif name == "seed":
            haste.convert(model, 8, seed=value)
        else:
            haste.convert(model, 8, **{name: value})
    assert str(error.value) == message
    if text is not None:
        option = "--hyperplanes" if name == "num_hyperplanes" else "--" + name.replace("_", "-")
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", "--model", "cifar10/resnet18", option, text])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_convert_takes_the_settings_object_and_the_old_keywords():
    settings = HasteSettings(
        sparsity=0.5, patch_size=2, projection="gaussian", centre=False, grouping="random"
    )
    by_object = haste.convert(small_model(), 8, settings, seed=3)
    by_keywords = haste.convert(
        small_model(),
        8,
        sparsity=0.5,
        patch_size=2,
        projection="gaussian",
        centre=False,
        grouping="random",
        seed=3,
    )
    for model in (by_object, by_keywords):
        (_, layer), *others = list(haste.haste_layers(model))
        assert not others  # the stem stays dense (skip=1)
        assert (layer.sparsity, layer.patch_size, layer.projection) == (0.5, 2, "gaussian")
        assert (layer.centre, layer.grouping, layer.seed) == (False, "random", 3 * 10_000 + 1)
    overridden = haste.convert(small_model(), 8, settings, skip=0, centre=True)  # keywords override
    assert [layer.centre for _, layer in haste.haste_layers(overridden)] == [True, True]
    assert HasteSettings(skip="conv1").skip == ("conv1",) and HasteSettings(skip=["a", "b"]).skip == (
        "a",
        "b",
    )
    with pytest.raises(TypeError, match="HasteSettings"):
        haste.convert(small_model(), 8, 0.5)  # the old positional sparsity
    with pytest.raises(TypeError, match="unknown settings"):
        haste.convert(small_model(), 8, sparsty=0.5)
    with pytest.raises(AttributeError):
        settings.sparsity = 0.1  # frozen
    assert experiments.HasteSettings is HasteSettings  # the reproduction records the library's settings


def test_execution_names_and_the_old_ones():
    model = haste.convert(small_model(), 8)
    layer = next(layer for _, layer in haste.haste_layers(model))
    assert layer.execution == "gemm"
    with pytest.warns(DeprecationWarning, match="'gemm'"):
        haste.set_execution(model, "eval")
    assert layer.execution == "gemm"
    with pytest.warns(DeprecationWarning):
        layer.execution = "eval"
    assert layer.execution == "gemm"
    with pytest.raises(ValueError, match="execution must be one of"):
        layer.execution = "fast"
    with pytest.warns(DeprecationWarning, match="set_num_hyperplanes"):
        haste.set_hyperplanes(model, 10)  # the deprecated name
    assert layer.num_hyperplanes == 10
    haste.set_num_hyperplanes(model, 12)
    assert layer.num_hyperplanes == 12
    with pytest.raises(ValueError, match="num_hyperplanes must be an integer"):
        haste.set_num_hyperplanes(model, 12.0)


def test_the_command_line_exposes_every_setting(tmp_path):
    root = make_tree(tmp_path / "cifar", per_class=1)
    weights = tmp_path / "w.pt"
    import torch

    torch.save(zoo.build("cifar10/resnet18").state_dict(), weights)
    out = tmp_path / "row.json"
    argv = ["eval", "--model", "cifar10/resnet18", "--weights", str(weights), "--data", str(root)]
    argv += ["--hyperplanes", "6", "--projection", "gaussian", "--sparsity", "0", "--no-centre"]
    argv += ["--grouping", "random", "--patch-size", "2", "--skip", "2", "--json", str(out)]
    assert main(argv) == 0
    row = json.loads(out.read_text())
    assert (row["projection"], row["sparsity"], row["centre"], row["grouping"]) == (
        "gaussian",
        0.0,
        False,
        "random",
    )
    assert (row["patch_size"], row["skip"], row["num_hyperplanes"]) == (2, 2, 6)
