import json

import pytest
from test_data import make_tree

from haste.repro.cli import main


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


@pytest.mark.parametrize(
    "argv,message",
    [
        (["eval", "--model", "cifar10/nope", "--weights", "random"], "unknown model"),
        (
            ["eval", "--model", "cifar10/resnet18", "--weights", "random", "--data", "/nonexistent"],
            "no CIFAR-10",
        ),
        (["eval", "--model", "cifar10/resnet18", "--weights", "/nonexistent.pt"], "not found"),
    ],
)
def test_bad_arguments_give_one_line_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_hyperplanes_value_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", "cifar10/resnet18", "--hyperplanes", "0"])
    assert exit_info.value.code == 2


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
