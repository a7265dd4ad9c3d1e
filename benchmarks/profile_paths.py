"""Where each path's time goes: torch.profiler tables of dense, eval and compressed, and torch.compile.

    python benchmarks/profile_paths.py [--device cuda] [--batch-size 256] [--parts profile compile]

On CIFAR-10 ResNet34 (shipped weights, random init where none) at L = 14, on CIFAR-10 test images
(random images where the data is absent).
``profile``: for every path, its median wall time and the profiler's table of one forward pass,
sorted by the time ops spent on the device (on the CPU: in the process). Comparing the device
time with the wall time tells whether a path is bound by the GPU or by the host launching its
kernels. ``compile``: dense and the eval path under ``torch.compile``, the first call's time, the
largest difference to eager outputs, and eager against compiled time per batch. On a GPU, float32
with TF32 off, as ``speed.py --device cuda``. Nothing is written: the tables are printed.
"""

from __future__ import annotations

import argparse
import copy
import time
import traceback

import torch
from common import (  # benchmarks/ is on sys.path when run as a script
    DEFAULT_DATA,
    load_model,
    median_seconds,
    model_inputs,
    prepare_device,
    synchronize,
)
from torch.profiler import ProfilerActivity, profile

import haste

MODEL = "cifar10/resnet34"


def timed(module, images, reps=10) -> float:
    """Median wall time of ``module(images)`` after two untimed calls."""
    return median_seconds(lambda: module(images), images.device, reps, warmup=2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--device", type=torch.device, default=torch.device("cpu"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--parts", nargs="+", default=["profile"], choices=["profile", "compile"])
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 (default: $HASTE_DATA or ../shared)")
    args = parser.parse_args(argv)
    prepare_device(parser, args.device)
    on_gpu = args.device.type == "cuda"

    def sync():
        synchronize(args.device)

    images, source = model_inputs(MODEL, args.batch_size, args.data)
    images = images.to(args.device)
    dense, weights = load_model(MODEL)
    dense = dense.to(args.device)
    print("weights", weights, "batch", args.batch_size, "of", source, "torch", torch.__version__)
    paths = {
        "dense": dense,
        "eval": haste.convert(copy.deepcopy(dense), 14),
        "compressed": haste.set_execution(haste.convert(copy.deepcopy(dense), 14), "compressed"),
    }
    if "profile" in args.parts:
        profile_paths(paths, images, sync, on_gpu)
    if "compile" in args.parts:
        compile_paths(paths, images, sync)


def profile_paths(paths: dict, images: torch.Tensor, sync, on_gpu: bool) -> None:
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    # the name of the device column changed across torch versions
    keys = ["self_device_time_total", "self_cuda_time_total"] if on_gpu else ["self_cpu_time_total"]
    with torch.inference_mode():
        for name, module in paths.items():
            module(images)
            module(images)
            sync()
            with profile(activities=activities) as prof:
                module(images)
                sync()
            wall = timed(module, images, 5)
            print(f"== profile {name}, batch {len(images)}, wall {wall:.4f} s", flush=True)
            for key in keys:
                try:
                    print(prof.key_averages().table(sort_by=key, row_limit=14, max_name_column_width=50))
                    break
                except Exception as error:  # noqa: BLE001
                    print("sort key", key, "failed:", error)


def compile_paths(paths: dict, images: torch.Tensor, sync) -> None:
    with torch.no_grad():
        for name in ("dense", "eval"):
            try:
                reference = paths[name](images)
                started = time.perf_counter()
                compiled = torch.compile(paths[name])
                difference = (compiled(images) - reference).abs().max().item()
                sync()
                print(
                    f"== compile {name}: first call {time.perf_counter() - started:.1f} s, "
                    f"max |compiled - eager| {difference:.3g}",
                    flush=True,
                )
                eager, fast = timed(paths[name], images), timed(compiled, images)
                print(f"   {name}: eager {eager:.4f} s, compiled {fast:.4f} s per batch of {len(images)}")
            except Exception:  # noqa: BLE001  (a compiler failure is a finding, not a crash)
                traceback.print_exc()


if __name__ == "__main__":
    main()
