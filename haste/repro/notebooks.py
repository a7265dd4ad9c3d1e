"""Run the reproduction notebooks through papermill: ``python -m haste.repro.notebooks``.

Each notebook's parameters are the ones its tagged ``parameters`` cell declares (read with
``papermill.inspect_notebook``); quick mode adds ``notebooks/quick/<name>.yaml``. Options given
here (``results_dir``, ``data``, ``weights``, ``device``, ``shard``, ...) go only to the notebooks
that declare them; with ``--shard`` only the notebooks that declare it run. CIFAR-10 is found
by ``haste.data.cifar10_root`` (``--data``, else ``$HASTE_DATA``, else the checkout's default) and
checked before the first notebook runs. Cell output and progress bars stream to the terminal as the
notebooks run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
# run_all.sh's order: the tables and figures read the sweeps' CSVs
ORDER = [
    "01_cifar10_sweep",
    "07_patch_size",
    "08_paper_reconciliation",  # reads 01's and 07's rows; 02 names the convention closest to the paper
    "02_cifar10_main_table",
    "03_tradeoff_figure",
    "04_patch_compression",
    "05_ablations",
    "06_imagenet",
    "09_checkpoint_quality",
]


def quick_parameters(name: str) -> dict:
    """The parameters quick mode gives notebook ``name`` (its ``notebooks/quick/<name>.yaml``)."""
    import yaml

    path = NOTEBOOKS / "quick" / f"{name}.yaml"
    return yaml.safe_load(path.read_text()) or {} if path.is_file() else {"quick": True}


def declared_parameters(name: str) -> set[str]:
    import papermill

    return set(papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb")))


def check_names(names: list[str]) -> None:
    unknown = [name for name in names if not (NOTEBOOKS / f"{name}.ipynb").is_file()]
    if unknown:
        raise SystemExit(f"error: no notebook {', '.join(unknown)}; known: {', '.join(ORDER)}")


def cifar10_location(names: list[str], data: str | None) -> str | None:
    """The absolute CIFAR-10 location for the notebooks ``names``, checked; None if none reads it.

    Absolute, because the kernels run in ``notebooks/``, not where the path was given.
    """
    from ..data import check_cifar10, cifar10_root

    if not any("data" in declared_parameters(name) for name in names):
        return None
    return str(check_cifar10(cifar10_root(data)))


def missing_checkpoints(names: list[str], quick: bool) -> list[str]:
    """The trained checkpoints a full run of ``09_checkpoint_quality`` reads that are not there
    (``scripts/checkpoint_quality.sh`` trains them; quick mode needs none)."""
    import ast

    import papermill

    if quick or "09_checkpoint_quality" not in names:
        return []
    declared = papermill.inspect_notebook(str(NOTEBOOKS / "09_checkpoint_quality.ipynb"))
    checkpoints = ast.literal_eval(declared["checkpoints"]["default"])
    return [
        f"{epochs} epochs: {folder}"
        for epochs, folder in checkpoints.items()
        if folder != "shipped" and not Path(folder).expanduser().is_dir()
    ]


def run(names: list[str], quick: bool, out_dir: str | Path, log_output: bool = True, **options) -> None:
    """Execute ``names`` in order into ``out_dir``; ``options`` go to the notebooks that declare them.

    ``log_output``: copy the cells' stdout and stderr (prints, progress bars) to this process's as
    they come, unchanged.
    """
    import papermill

    check_names(names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        declared = declared_parameters(name)
        parameters = {k: v for k, v in options.items() if k in declared and v is not None}
        if quick:
            parameters.update(quick_parameters(name))
        print(f"== {name} ({'quick' if quick else 'full'})", flush=True)
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            str(out_dir / f"{name}.ipynb"),
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            # the streams as written (a progress bar redraws in place), not papermill's log records,
            # whose INFO level (all of stdout) a logger without configured handlers drops
            log_output=False,
            progress_bar=False,
            stdout_file=sys.stdout if log_output else None,
            stderr_file=sys.stderr if log_output else None,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m haste.repro.notebooks", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "names", nargs="*", help=f"notebooks to run, in order (default: all, {ORDER[0]} first)"
    )
    parser.add_argument("--quick", action="store_true", help="quick mode: notebooks/quick/<name>.yaml")
    parser.add_argument(
        "--data",
        default=None,
        help="CIFAR-10: an ImageFolder tree or a torchvision root "
        "(default: $HASTE_DATA, else the checkout's ../shared/data/cifar10-jpeg)",
    )
    parser.add_argument("--results-dir", default=str(ROOT / "results"), help="where the CSVs and figures go")
    parser.add_argument("--executed-dir", default=str(ROOT / "executed"), help="where executed notebooks go")
    parser.add_argument(
        "--weights",
        default=None,
        help="CIFAR-10 checkpoints: stand-in (default), paper (python -m haste download paper-weights) "
        "or a folder of <arch>.pt files; the paper's results go to <results-dir>/paper-weights/",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: a GPU if present)")
    parser.add_argument(
        "--shard",
        default=None,
        metavar="K/N",
        help="the sweeps evaluate every N-th measurement from the K-th into the result cache and write "
        "no CSV; run again without --shard, once every shard has finished, to write them",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    names = args.names or ORDER
    check_names(names)
    executed_dir = Path(args.executed_dir)
    if args.shard is not None:  # the other notebooks read the CSVs, which a shard does not write
        names = [name for name in names if "shard" in declared_parameters(name)]
        print(f"--shard {args.shard}: running only the notebooks that shard ({', '.join(names)})")
        executed_dir /= "shard-" + args.shard.replace("/", "-of-")  # shards run side by side
    try:
        data = cifar10_location(names, args.data)
    except FileNotFoundError as error:
        parser.exit(2, f"error: {error}\n")
    missing = missing_checkpoints(names, args.quick)
    if missing:  # before hours of other notebooks, not after them
        parser.exit(
            2,
            f"error: 09_checkpoint_quality needs checkpoints not trained yet ({'; '.join(missing)}): "
            "run bash scripts/checkpoint_quality.sh first (PRECISION=--no-bf16 on a CPU without native "
            "bf16), or leave the notebook out\n",
        )
    weights = args.weights
    if weights not in (None, "stand-in", "default", "paper", "random"):
        weights = str(Path(weights).resolve())  # a folder; the kernels run in notebooks/
    options = {"weights": weights, "device": args.device, "shard": args.shard}
    run(names, args.quick, executed_dir, results_dir=args.results_dir, data=data, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
