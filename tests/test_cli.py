import argparse
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from test_data import make_tree

import haste.zoo.data
from haste.repro import cli, notebooks
from haste.repro.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_eval_sweep_writes_json(tmp_path, capsys):
    root = make_tree(tmp_path / "cifar", per_class=1)
    out = tmp_path / "result.json"
    code = main(
        [
            "eval",
            "--model",
            "cifar10/resnet18",
            "--weights",
            "random",
            "--data",
            str(root),
            "--hyperplanes",
            "4",
            "14",
            "--baseline",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert [row["num_hyperplanes"] for row in rows] == [None, 4, 14]
    assert '"num_hyperplanes": 4,' in out.read_text() and '"images": 10,' in out.read_text()  # ints
    keys = {
        "accuracy",
        "flops_dense",
        "flops_haste",
        "flops_overhead",
        "flops_reduction",
        "flops_reduction_no_overhead",
    }
    assert keys <= set(rows[1])
    assert rows[0]["flops_reduction"] == 0
    assert rows[1]["flops_reduction"] > rows[2]["flops_reduction"]  # fewer planes, more merging
    assert "cifar10/resnet18" in capsys.readouterr().out


def run_failing(argv, capsys):
    """``main(argv)``'s stderr, which must be one line, after exit status 2 however it exits."""
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return err


MODEL = ["eval", "--model", "cifar10/resnet18", "--weights", "random"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["eval", "--model", "cifar10/nope", "--weights", "random"], "unknown model"),
        ([*MODEL, "--data", "/nonexistent"], "no CIFAR-10 at /nonexistent"),
        (["eval", "--model", "cifar10/resnet18", "--weights", "/nonexistent.pt"], "not found"),
        # the settings' own messages, as haste.HasteSettings, HasteConv2d and convert give them
        (
            [*MODEL, "--hyperplanes", "1.5"],
            "--hyperplanes: num_hyperplanes must be an integer in [1, 53], not 1.5",
        ),
        ([*MODEL, "--hyperplanes", "0"], "num_hyperplanes must be an integer in [1, 53], not 0"),
        ([*MODEL, "--hyperplanes", "54"], "num_hyperplanes must be an integer in [1, 53], not 54"),
        ([*MODEL, "--skip", "-1"], "--skip: skip must be an integer >= 0 or layer names, not -1"),
        ([*MODEL, "--skip", "20"], "cifar10/resnet18 has 20 convs"),
        ([*MODEL, "--sparsity", "1"], "sparsity must be a number in [0, 1), not 1"),
        ([*MODEL, "--json", "/nonexistent/dir/out.json"], "folder /nonexistent/dir does not exist"),
        (["eval", "--model", "imagenet/resnet18", "--weights", "random"], "needs the ImageNet validation"),
        (["eval"], "required: --model"),
        (["evaluate"], "invalid choice: 'evaluate'"),
    ],
)
def test_bad_arguments_give_one_line_errors_before_any_work(argv, message, capsys, monkeypatch):
    from haste import zoo
    from haste.repro import experiments

    def no_work(*args, **kwargs):
        raise AssertionError("the arguments should have been refused before this")

    monkeypatch.setattr(experiments, "sweep", no_work)
    monkeypatch.setattr(zoo, "load", no_work)
    assert message in run_failing(argv, capsys)


def test_weights_of_another_architecture_are_summarised(tmp_path, capsys):
    vgg = ROOT / "weights" / "cifar10" / "vgg11_bn.safetensors"
    data = make_tree(tmp_path / "cifar", per_class=1)  # the weights are read after the data is found
    argv = ["eval", "--model", "cifar10/resnet18", "--weights", str(vgg), "--data", str(data)]
    assert "unexpected keys: is this a checkpoint of cifar10/vgg11_bn?" in run_failing(argv, capsys)


def test_a_user_file_is_compared_with_the_shipped_checkpoint(tmp_path):
    shipped = ROOT / "weights" / "cifar10" / "resnet18.safetensors"
    copy, corrupt = tmp_path / "copy.safetensors", tmp_path / "corrupt.safetensors"
    shutil.copy(shipped, copy)
    data = bytearray(shipped.read_bytes())
    data[-1] ^= 1  # one bit of the last weight: still a readable file of the right architecture
    corrupt.write_bytes(bytes(data))
    note = lambda path: cli._weights_note(
        argparse.Namespace(model="cifar10/resnet18", weights=str(path), weights_dir=None)
    )
    assert "is the shipped cifar10/resnet18 checkpoint" in note(copy)
    assert "is not the shipped cifar10/resnet18 checkpoint" in note(corrupt)
    assert note("random") is None


def test_data_is_found_from_any_folder(tmp_path, monkeypatch, capsys):
    root = make_tree(tmp_path / "cifar", per_class=1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(haste.zoo.data, "CHECKOUT_CIFAR10", tmp_path / "missing")
    monkeypatch.delenv("HASTE_DATA", raising=False)
    err = run_failing([*MODEL, "--hyperplanes", "8"], capsys)
    assert "HASTE_DATA" in err and "python -m haste download cifar10 --dir DIR" in err
    monkeypatch.setenv("HASTE_DATA", str(root))
    assert main([*MODEL, "--hyperplanes", "8"]) == 0
    assert "10 images" in capsys.readouterr().out


def test_table_shows_flops_in_millions_and_the_drop():
    results = pd.DataFrame(
        {
            "num_hyperplanes": [None, 14.0],
            "accuracy": [90.0, 88.5],
            "accuracy_drop": [0.0, 1.5],
            "flops_haste": [140594176.0, 103391000.0],
            "flops_reduction": [0.0, 26.46],
            "flops_reduction_no_overhead": [0.0, 37.61],
        }
    )
    lines = cli.format_table(results).splitlines()
    assert lines[0].split() == ["L", "accuracy", "(%)", "drop", "(pp)", "MFLOPs", "reduction", "(%)"] + [
        "without",
        "overhead",
        "(%)",
    ]
    assert lines[1].split() == ["dense", "90.00", "0.00", "140.59", "0.00", "0.00"]
    assert lines[2].split() == ["14", "88.50", "1.50", "103.39", "26.46", "37.61"]


def test_help_shows_defaults_and_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    top = capsys.readouterr().out
    assert exit_info.value.code == 0 and "``" not in top
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        assert name in top
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings} has no help"
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 14)", "(default: 0.6667)", "(default: 3)", "(default: 256)", "(default: 1)"):
        assert default in text
    assert "$HASTE_DATA" in text and "fixed random subset" in text


def test_notebook_runner_refuses_missing_data_before_the_first_notebook(tmp_path, monkeypatch, capsys):
    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **k: pytest.fail("a notebook ran"))
    with pytest.raises(SystemExit) as exit_info:
        notebooks.main(["--quick", "--data", str(tmp_path / "nowhere"), "01_cifar10_sweep"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "no CIFAR-10 at" in err


def test_eval_imagenet_model_on_image_folder(tmp_path):
    from PIL import Image

    for wnid in ("n01440764", "n01443537"):
        (tmp_path / "val" / wnid).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (80, 60), (i * 90, 30, 200)).save(tmp_path / "val" / wnid / f"{i}.JPEG")
    out = tmp_path / "imagenet.json"
    code = main(
        [
            "eval",
            "--model",
            "imagenet/resnet18",
            "--weights",
            "random",
            "--data",
            str(tmp_path / "val"),
            "--hyperplanes",
            "12",
            "--batch-size",
            "4",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    row = json.loads(out.read_text())
    assert row["images"] == 4 and row["flops_dense"] > 1e9  # 224x224 ResNet18: 1.8 GFLOPs
    assert 0 < row["flops_reduction"] < 100
