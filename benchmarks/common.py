"""What the benchmarks share: the device and CPU name, one loader, one timer and one peak-memory helper.

``speed.py``, ``eval_speed.py``, ``profile_paths.py`` and ``hash_stability.py`` import it
(``benchmarks/`` is on ``sys.path`` when they run as scripts).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import haste
from haste import zoo
from haste.zoo.data import cifar10_batches

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = os.environ.get("HASTE_DATA", str(REPO.parent / "shared" / "data" / "cifar10-jpeg"))
PATHS = ("dense", "eval", "compressed")


# -- the device ---------------------------------------------------------------------------------


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux; else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def prepare_device(parser: argparse.ArgumentParser, device: torch.device) -> None:
    """Refuse a device that cannot run here; on a GPU, plain float32 for dense and HASTE alike."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            parser.error("--device cuda: torch sees no CUDA device here")
        # cuDNN takes TF32 for float32 convolutions by default, torch's matrix products do not
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    elif device.type != "cpu":
        parser.error(f"--device must be cpu or cuda, not {device}")


def pin_threads(threads: int | None) -> None:
    """Torch's thread count; the numba kernels follow it (``haste.fused.torch_threads``)."""
    if threads:
        torch.set_num_threads(threads)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device``: CUDA runs asynchronously, so a timer has to wait."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the loader ---------------------------------------------------------------------------------


def load_model(name: str, path: str = "dense", hyperplanes: int = 14) -> tuple[nn.Module, str]:
    """``name`` with its shipped or cached weights (random init where there are none), in eval mode,
    as the dense model or converted to HASTE's ``path`` (``"eval"`` or ``"compressed"``) at L =
    ``hyperplanes``; and a label of the weights (source and SHA-256 prefix)."""
    try:
        model, info = zoo.load(name, download=False)
        weights = f"{info.source} {info.sha256[:12]}"
    except (FileNotFoundError, ValueError, RuntimeError, OSError):
        model, _ = zoo.load(name, weights=None)
        weights = "random init (no checkpoint found)"
    if path != "dense":
        model = haste.set_execution(haste.convert(model, hyperplanes), path)
    return model.eval(), weights


def input_batches(name: str, batch: int, data: str, count: int = 1) -> tuple[list[torch.Tensor], str]:
    """``count`` input batches for ``name``: CIFAR-10 test images where the data is (a fixed random
    subset), else seeded random images of the model's input size; and what they are."""
    if name.startswith("cifar10/"):
        try:
            batches = cifar10_batches(data, "test", batch, limit=batch * count)
            return [images for images, _ in batches], "CIFAR-10 test images"
        except FileNotFoundError:
            pass
    size = zoo.spec(name).input_size
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(batch, 3, size, size, generator=generator) for _ in range(count)], "random images"


def model_inputs(name: str, batch: int, data: str) -> tuple[torch.Tensor, str]:
    """One input batch for ``name`` (see :func:`input_batches`)."""
    images, source = input_batches(name, batch, data)
    return images[0], source


# -- the timer ----------------------------------------------------------------------------------


def seconds(run: Callable[[], object], device: torch.device) -> float:
    """Wall time of one call of ``run``, including the device work it queued."""
    started = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - started


def median_seconds(run: Callable[[], object], device: torch.device, reps: int, warmup: int = 1) -> float:
    """Median of ``reps`` timed calls of ``run`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    synchronize(device)
    return statistics.median(seconds(run, device) for _ in range(reps))


# -- peak memory --------------------------------------------------------------------------------


def peak_memory_mib(
    module: nn.Module, inputs: torch.Tensor, case: tuple, threads: int | None = None
) -> float:
    """Peak memory of one forward pass of ``module`` on ``inputs``, in MiB.

    On a GPU: the CUDA memory the pass allocates at its peak, above what was allocated before it.
    On the CPU: the peak resident set size (torch, model, data and the pass) of a fresh process
    that rebuilds the same ``case`` (the arguments of :func:`run_case`) and runs it once, since a
    process's peak keeps everything it ever held.
    """
    if inputs.device.type == "cuda":
        synchronize(inputs.device)
        torch.cuda.reset_peak_memory_stats(inputs.device)
        before = torch.cuda.memory_allocated(inputs.device)
        with torch.inference_mode():
            module(inputs)
        synchronize(inputs.device)
        return (torch.cuda.max_memory_allocated(inputs.device) - before) / 2**20
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=run_case, args=(*case, threads, queue))
    process.start()
    peak = queue.get()
    process.join()
    return peak


def run_case(name: str, path: str, hyperplanes: int, batch: int, data: str, threads, queue) -> None:
    """In a child process: build one case, run one forward pass, report the peak resident set."""
    pin_threads(threads)
    model, _ = load_model(name, path, hyperplanes)
    inputs, _ = model_inputs(name, batch, data)
    with torch.inference_mode():
        model(inputs)
    queue.put(peak_resident_mib())


def peak_resident_mib() -> float:
    """This process's peak resident set size. ``VmHWM`` belongs to the process image, whereas
    ``getrusage``'s ``ru_maxrss`` survives ``exec`` and so carries the parent's peak into a spawned
    child (measured: every child reported the parent's size)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
