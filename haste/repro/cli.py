"""Command line: ``python -m haste {eval,train,export}``."""

from __future__ import annotations

import argparse
import sys

from .train import TrainConfig

DEFAULT_DATA = "../shared/data/cifar10-jpeg"


def _eval(args) -> int:
    import json

    import pandas as pd

    from .experiments import HasteSettings, sweep

    settings = HasteSettings(
        sparsity=args.sparsity,
        patch_size=args.patch_size,
        skip=args.skip,
        include_pointwise=args.include_pointwise,
    )
    results = sweep(
        args.model,
        args.hyperplanes,
        [args.seed],
        args.data,
        weights=None if args.weights == "random" else args.weights,
        limit=args.limit,
        batch_size=args.batch_size,
        settings=settings,
        baseline=args.baseline,
        weights_dir=args.weights_dir,
        download=args.download,
    )
    first = results.iloc[0]
    print(f"{args.model}  weights: {first.weights_source} {first.weights_sha256[:12]}")
    table = results[
        [
            "num_hyperplanes",
            "accuracy",
            "images",
            "flops_dense",
            "flops_haste",
            "flops_reduction",
            "flops_reduction_no_overhead",
        ]
    ].copy()
    table["num_hyperplanes"] = table.num_hyperplanes.map(lambda v: "dense" if pd.isna(v) else int(v))
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if args.json:
        rows = results.astype(object).where(results.notna(), None).to_dict("records")
        with open(args.json, "w") as handle:
            json.dump(rows[0] if len(rows) == 1 else rows, handle, indent=2)
    return 0


def _train(args) -> int:
    from .train import train

    fields = {k: getattr(args, k) for k in ("model", "data", "epochs", "batch_size", "max_lr", "seed")}
    config = TrainConfig(**fields, bf16=args.bf16, train_limit=args.limit)
    train(config, args.out)
    return 0


def _export(args) -> int:
    from .train import export

    row = export(args.run_dir, args.weights_dir, data=args.data)
    print(row)
    return 0


def _slim(args) -> int:
    from .train import slim

    print(slim(args.run_dir, args.out))
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m haste", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    evaluate = commands.add_parser("eval", help="evaluate a model with HASTE at one or several L")
    evaluate.add_argument("--model", required=True, help="e.g. cifar10/resnet34, imagenet/resnet50")
    evaluate.add_argument(
        "--weights", default="default", help="'default' (shipped/torchvision), a state-dict file, or 'random'"
    )
    evaluate.add_argument("--weights-dir", default=None)
    evaluate.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help="CIFAR-10 ImageFolder tree or torchvision root; ImageNet val folder",
    )
    evaluate.add_argument("--download", action="store_true", help="download CIFAR-10 (torchvision)")
    evaluate.add_argument(
        "--hyperplanes",
        type=_positive_int,
        nargs="+",
        default=[14],
        help="L; several values sweep them in one run",
    )
    evaluate.add_argument("--sparsity", type=float, default=2 / 3)
    evaluate.add_argument("--patch-size", type=_positive_int, default=3)
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--skip", type=int, default=1, help="leading convs left dense")
    evaluate.add_argument("--include-pointwise", action="store_true", help="also compress 1x1 convs")
    evaluate.add_argument("--baseline", action="store_true", help="also evaluate the dense model")
    evaluate.add_argument("--limit", type=_positive_int, default=None, help="first N test images")
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.add_argument("--json", default=None, help="write the results to this JSON file")
    evaluate.set_defaults(run=_eval)

    train = commands.add_parser("train", help="train a CIFAR-10 stand-in checkpoint (resumable)")
    train.add_argument("--model", required=True, help="e.g. cifar10/resnet34")
    train.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 ImageFolder or torchvision root")
    train.add_argument("--out", required=True, help="run folder; an existing run there is resumed")
    # the defaults are TrainConfig's: the recipe of the shipped checkpoints
    train.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    train.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    train.add_argument("--max-lr", type=float, default=TrainConfig.max_lr)
    train.add_argument("--seed", type=int, default=TrainConfig.seed)
    train.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=TrainConfig.bf16,
        help="bf16 autocast (default on; fast on GPUs and CPUs with AVX512-BF16/AMX, "
        "--no-bf16 on AVX2-only CPUs, where it is far slower)",
    )
    train.add_argument("--limit", type=int, default=None, help="use only N training images")
    train.set_defaults(run=_train)

    # dest="run_dir": "run" is the attribute that holds each command's handler
    export = commands.add_parser("export", help="ship a finished run as float16 safetensors")
    export.add_argument(
        "--run", dest="run_dir", required=True, help="run folder (last.pt) or a slim run file from `slim`"
    )
    export.add_argument("--weights-dir", default=None)
    export.add_argument(
        "--data", default=None, help="CIFAR-10 to evaluate on, when the run was trained elsewhere"
    )
    export.set_defaults(run=_export)

    slim = commands.add_parser("slim", help="a finished run without optimiser state, float16 (small)")
    slim.add_argument("--run", dest="run_dir", required=True, help="run folder")
    slim.add_argument("--out", required=True, help="file to write (.pt)")
    slim.set_defaults(run=_slim)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
