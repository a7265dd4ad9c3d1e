"""Wall time and peak memory of HASTE's evaluation path against the dense model, in one run.

    python benchmarks/eval_speed.py [--model cifar10/resnet34] [--batch-size 256] [--rounds 3]

Timing: in one process, the dense and the HASTE model each run over the same CIFAR-10 test batches
(random images if the data is absent), in blocks A B A B so that drift of the machine hits both;
every block starts with an untimed warm-up batch. A block runs batch after batch as an evaluation
does: alternating models batch by batch would make each model re-grow its heap every batch
(measured: HASTE about 1.6x slower that way). Prints the median time per batch and the ratio.
Peak memory: each path runs once more in a child process of its own, whose peak resident set size
is its peak memory. Torch's thread count is left at its default unless --threads is given; it is
printed either way. The HASTE time is split into its numba kernels (hashing, merging, im2col rows;
for the compressed path also the merged products) and the rest (GEMMs, the layers left dense,
batch norm, ...), timed around each kernel call in the same timed batches.

``--device cuda``: both models run on the GPU in float32 with TF32 off (as ``speed.py --device
cuda``), the timers wait for the GPU, peak memory is the CUDA memory one forward pass allocates on
top of the resident model and batch, and there is no kernel split (the numba kernels are CPU-only).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import importlib
import platform
import statistics
import time

import torch
from common import (  # benchmarks/ is on sys.path when run as a script
    DEFAULT_DATA,
    input_batches,
    load_model,
    peak_memory_mib,
    pin_threads,
    prepare_device,
    seconds,
    synchronize,
)

# The numba kernels of each execution path: (module, function), each called by its module's global name.
KERNELS = {
    "eval": [("haste.fused", "merged_columns")],
    "compressed": [("haste.compressed", "_hash_tiles"), ("haste.compressed", "_merged_products")],
}


@contextlib.contextmanager
def timed_kernels(execution: str, seconds: collections.Counter):
    """Add the wall time of every call of the path's kernels to ``seconds[name]``."""
    patched = []
    for module_name, name in KERNELS[execution]:
        module = importlib.import_module(module_name)
        kernel = getattr(module, name)

        def timed(*args, kernel=kernel, name=name):
            started = time.perf_counter()
            try:
                return kernel(*args)
            finally:
                seconds[name] += time.perf_counter() - started

        setattr(module, name, timed)
        patched.append((module, name, kernel))
    try:
        yield
    finally:
        for module, name, kernel in patched:
            setattr(module, name, kernel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default="cifar10/resnet34")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 (default: $HASTE_DATA or ../shared)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3, help="timed batches per block")
    parser.add_argument("--blocks", type=int, default=2, help="blocks per path, alternating")
    parser.add_argument("--hyperplanes", type=int, default=14)
    parser.add_argument(
        "--execution", default="eval", choices=["eval", "compressed"], help="HASTE execution path to time"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--device", type=torch.device, default=torch.device("cpu"), help="cpu or cuda")
    args = parser.parse_args()
    pin_threads(args.threads)
    prepare_device(parser, args.device)
    on_gpu = args.device.type == "cuda"

    paths = {"dense": "dense", "haste": args.execution}  # model -> its execution path
    models = {name: load_model(args.model, path, args.hyperplanes) for name, path in paths.items()}
    images, source = input_batches(args.model, args.batch_size, args.data, args.rounds)
    models = {name: (model.to(args.device), weights) for name, (model, weights) in models.items()}
    images = [batch.to(args.device) for batch in images]
    memory = {
        name: peak_memory_mib(
            models[name][0],
            images[0],
            (args.model, path, args.hyperplanes, args.batch_size, args.data),
            args.threads,
        )
        for name, path in paths.items()
    }
    times: dict[str, list[float]] = {"dense": [], "haste": []}
    kernel_seconds: collections.Counter = collections.Counter()
    with torch.inference_mode():
        for _ in range(args.blocks):
            for path, (model, _) in models.items():
                model(images[0])  # warm-up: heap, index caches
                synchronize(args.device)
                timed = path == "haste" and not on_gpu
                with timed_kernels(args.execution, kernel_seconds) if timed else contextlib.nullcontext():
                    for batch in images:
                        run = lambda batch=batch, model=model: model(batch)
                        times[path].append(seconds(run, args.device))
    median = {path: statistics.median(values) for path, values in times.items()}
    print(
        f"{args.model}, batch {args.batch_size}, L={args.hyperplanes}, {args.execution} path, "
        f"{args.blocks} x {args.rounds} batches of {source}, weights: {models['dense'][1]}"
    )
    threads = torch.get_num_threads()
    device = f"{torch.cuda.get_device_name(args.device)}, float32, TF32 off, " if on_gpu else ""
    print(f"machine: {device}{platform.machine()}, {threads} torch threads, torch {torch.__version__}")
    for path in ("dense", "haste"):
        print(f"  {path:6s} median {median[path]:.3f} s/batch  peak memory {memory[path]:.0f} MiB")
    print(f"HASTE / dense wall time: {median['haste'] / median['dense']:.2f}x")
    if on_gpu:
        return
    # the split uses means (kernel times are summed over all timed batches), the ratio above medians
    batches = len(times["haste"])
    mean_haste, mean_dense = sum(times["haste"]) / batches, sum(times["dense"]) / len(times["dense"])
    in_kernels = sum(kernel_seconds.values()) / batches
    print(f"HASTE time split (means per batch): {mean_haste:.3f} s in all, dense {mean_dense:.3f} s")
    for name in sorted(kernel_seconds):
        print(f"  numba kernel {name}: {kernel_seconds[name] / batches:.3f} s")
    rest = mean_haste - in_kernels
    print(f"  everything else (GEMMs, dense layers, ...): {rest:.3f} s, {rest / mean_dense:.2f}x dense")


if __name__ == "__main__":
    main()
