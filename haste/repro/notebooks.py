"""Run the reproduction notebooks through papermill: ``python -m haste.repro.notebooks``.

Each notebook's parameters are the ones its tagged ``parameters`` cell declares (read with
``papermill.inspect_notebook``); quick mode adds ``notebooks/quick/<name>.yaml``. Options given
here (``results_dir``, ``data``, ``weights``, ``device``, ``shard``, ...) go only to the notebooks
that declare them; with ``--shard`` only the notebooks that declare it run. CIFAR-10 is found
by ``haste.zoo.data.cifar10_root`` (``--data``, else ``$HASTE_DATA``, else the checkout's default) and
checked before the first notebook runs. Cell output and progress bars stream to the terminal as the
notebooks run.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import time
from dataclasses import dataclass
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
    "10_baselines",  # reads 01's summary
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
    from ..zoo.data import check_cifar10, cifar10_root

    if not any("data" in declared_parameters(name) for name in names):
        return None
    return str(check_cifar10(cifar10_root(data)))


class KernelNoiseFilter:
    """A text stream that passes on what a notebook's cells write but the kernel's own notices, which
    say nothing about the reproduction (its transport, and the interrupt papermill sends at shutdown),
    and that shows a warning as the one line ``warning: <message>`` (Python's ``<file>:<line>:
    <category>:`` prefix and the source line under it point into the reproduction's code)."""

    NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel")
    WARNING = re.compile(r"^\S.*?:\d+: \w*Warning: (?P<message>.*)$")

    def __init__(self, stream):
        self.stream, self.pending, self.after_warning = stream, "", False

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            after_warning, self.after_warning = self.after_warning, False
            if after_warning and line.startswith("  "):  # the source line Python prints under it
                continue
            if any(noise in line for noise in self.NOISE):
                continue
            if (warning := self.WARNING.match(line)) is not None:
                self.stream.write(f"warning: {warning['message']}\n")
                self.after_warning = True
                continue
            self.stream.write(line + "\n")
        if self.pending and "\r" in self.pending:  # a progress bar redrawn in place: pass it on now
            self.stream.write(self.pending)
            self.pending = ""
        return len(text)

    def flush(self) -> None:
        if self.pending and not any(noise in self.pending for noise in self.NOISE):
            self.stream.write(self.pending)
        self.pending = ""
        self.stream.flush()


@dataclass
class Outcome:
    """What became of one notebook in a run: ``ran``, ``skipped`` (inputs missing), ``failed`` or
    ``not run`` (after a failure)."""

    name: str
    status: str
    seconds: float = 0.0
    reason: str = ""


def format_summary(outcomes: list[Outcome], quick: bool) -> str:
    total = sum(outcome.seconds for outcome in outcomes)
    width = max(len(outcome.name) for outcome in outcomes)
    lines = [f"== summary ({'quick' if quick else 'full'} run, {total:.0f} s)"]
    for outcome in outcomes:
        time = f"{outcome.seconds:6.0f} s" if outcome.status in ("ran", "failed") else " " * 8
        lines.append(f"{outcome.status:<8} {outcome.name:<{width}} {time} {outcome.reason}".rstrip())
    return "\n".join(lines)


def run(
    names: list[str], quick: bool, out_dir: str | Path, log_output: bool = True, **options
) -> list[Outcome]:
    """Execute ``names`` in order into ``out_dir``; ``options`` go to the notebooks that declare them.

    A notebook whose inputs need a preparation that has not been done
    (:func:`haste.repro.prepare.missing_inputs`) is skipped with one line saying what is missing and
    how to make it; its results are left as they are. Prints a summary at the end (what ran, what
    was skipped and why, the wall time of each) and returns it; a failing notebook stops the run,
    after the summary, with papermill's error.

    ``log_output``: copy the cells' stdout and stderr (prints, progress bars) to this process's as
    they come, unchanged.
    """
    import papermill

    from .prepare import missing_inputs

    check_names(names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = [Outcome(name, "not run") for name in names]
    try:
        for outcome in outcomes:
            name = outcome.name
            declared = declared_parameters(name)
            parameters = {k: v for k, v in options.items() if k in declared and v is not None}
            missing = missing_inputs(name, quick, parameters)
            if missing:
                outcome.status, outcome.reason = "skipped", missing
                print(f"== {name}: skipped, {missing}; its results stay as they are", flush=True)
                continue
            if quick:
                parameters.update(quick_parameters(name))
            print(f"== {name} ({'quick' if quick else 'full'})", flush=True)
            outcome.status, start = "failed", time.monotonic()
            try:
                papermill.execute_notebook(
                    str(NOTEBOOKS / f"{name}.ipynb"),
                    str(out_dir / f"{name}.ipynb"),
                    parameters=parameters,
                    cwd=str(NOTEBOOKS),
                    # the streams as written (a progress bar redraws in place), not papermill's log
                    # records, whose INFO level (all of stdout) a logger without handlers drops
                    log_output=False,
                    progress_bar=False,
                    stdout_file=sys.stdout if log_output else None,
                    stderr_file=KernelNoiseFilter(sys.stderr) if log_output else None,
                    # the kernel's own log (its transport warning) says nothing about the notebook
                    extra_arguments=["--IPKernelApp.log_level=ERROR"],
                )
            finally:
                outcome.seconds = time.monotonic() - start
            outcome.status = "ran"
    finally:
        print(format_summary(outcomes, quick), flush=True)
    return outcomes


def check_options(weights: str | None, device: str | None, shard: str | None, names: list[str]) -> None:
    """``--weights``, ``--device`` and ``--shard`` as the notebooks would take them, before the first
    notebook runs: a ``ValueError`` or ``FileNotFoundError`` with one line saying what is wrong."""
    from .devices import as_shard, resolve_device
    from .experiments import STAND_IN_CHOICES, load_arguments

    try:
        resolve_device(device)
        as_shard(shard)
    except ValueError as error:
        option = "--device" if "device" in str(error) else "--shard"
        raise ValueError(f"{option}: {error}") from error
    if weights is None or weights in STAND_IN_CHOICES + ("random",):
        return
    if not any("weights" in declared_parameters(name) and name != "06_imagenet" for name in names):
        return
    import papermill

    declared = papermill.inspect_notebook(str(NOTEBOOKS / "01_cifar10_sweep.ipynb"))
    for model_name in ast.literal_eval(declared["model_names"]["default"]):
        try:
            load_arguments(model_name, weights)
        except (FileNotFoundError, ValueError) as error:
            raise type(error)(f"--weights {weights}: {str(error).splitlines()[0]}") from error


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
    try:
        check_names(names)
    except SystemExit as error:  # the one-line error and exit status 2 of run_all.sh's own check
        parser.exit(2, f"{error}\n")
    # quick and full runs keep their executed copies apart
    executed_dir = Path(args.executed_dir) / ("quick" if args.quick else "")
    if args.shard is not None:  # the other notebooks read the CSVs, which a shard does not write
        names = [name for name in names if "shard" in declared_parameters(name)]
        print(f"--shard {args.shard}: running only the notebooks that shard ({', '.join(names)})")
        executed_dir /= "shard-" + args.shard.replace("/", "-of-")  # shards run side by side
    weights = args.weights
    if weights not in (None, "stand-in", "default", "paper", "random"):
        weights = str(Path(weights).resolve())  # a folder; the kernels run in notebooks/
    try:
        check_options(weights, args.device, args.shard, names)
        data = cifar10_location(names, args.data)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"error: {error}\n")
    options = {"weights": weights, "device": args.device, "shard": args.shard}
    try:
        run(names, args.quick, executed_dir, results_dir=args.results_dir, data=data, **options)
    except Exception as error:  # after the summary; papermill has shown the cell's traceback above
        failed = getattr(error, "ename", type(error).__name__), getattr(error, "evalue", str(error))
        print(f"error: a notebook failed: {failed[0]}: {str(failed[1]).strip()[:300]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
