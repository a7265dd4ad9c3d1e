"""Command line: ``python -m haste {eval,train,export}``."""

from __future__ import annotations

import argparse
import sys

DEFAULT_DATA = "../shared/data/cifar10-jpeg"


def _train(args) -> int:
    from .train import TrainConfig, train

    fields = {k: getattr(args, k) for k in ("model", "data", "epochs", "batch_size", "max_lr", "seed")}
    config = TrainConfig(**fields, bf16=args.bf16, train_limit=args.limit)
    train(config, args.out)
    return 0


def _export(args) -> int:
    from .train import export

    row = export(args.run, args.weights_dir)
    print(row)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m haste", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a CIFAR-10 stand-in checkpoint (resumable)")
    train.add_argument("--model", required=True, help="e.g. cifar10/resnet34")
    train.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 ImageFolder or torchvision root")
    train.add_argument("--out", required=True, help="run folder; an existing run there is resumed")
    train.add_argument("--epochs", type=int, default=40)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--max-lr", type=float, default=0.2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=False,
                       help="bf16 autocast (fast on CPUs with AVX512-BF16/AMX and on GPUs)")
    train.add_argument("--limit", type=int, default=None, help="use only N training images")
    train.set_defaults(run=_train)

    export = commands.add_parser("export", help="ship a finished run as float16 safetensors")
    export.add_argument("--run", required=True)
    export.add_argument("--weights-dir", default=None)
    export.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
