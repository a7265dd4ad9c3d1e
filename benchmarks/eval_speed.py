"""Wall time and peak memory of HASTE's evaluation path against the dense model, in one run.

    python benchmarks/eval_speed.py [--model cifar10/resnet34] [--batch-size 256] [--batches 4]

Each path runs in its own child process (so its peak resident memory is its own), over the same
CIFAR-10 test batches (random images if the data is absent), after one warm-up batch. Prints the
median time per batch, the HASTE/dense ratio and the peak memory of each path.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import statistics
import time


def measure(path: str, args, queue) -> None:
    import torch

    import haste
    from haste import models
    from haste.data import cifar10_batches

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    try:
        model, info = models.load(args.model)
    except (FileNotFoundError, ValueError):
        model, info = models.load(args.model, weights=None)
    if path == "haste":
        model = haste.convert(model, args.hyperplanes)
    try:
        batches = list(cifar10_batches(args.data, "test", args.batch_size,
                                       limit=args.batch_size * (args.batches + 1)))  # fmt: skip
        source = "CIFAR-10 test images"
    except FileNotFoundError:
        generator = torch.Generator().manual_seed(0)
        batches = [(torch.randn(args.batch_size, 3, 32, 32, generator=generator), None)
                   for _ in range(args.batches + 1)]  # fmt: skip
        source = "random images (CIFAR-10 not found)"
    times = []
    with torch.inference_mode():
        for index, (images, _) in enumerate(batches):
            started = time.perf_counter()
            model(images)
            if index > 0:  # the first batch is a warm-up
                times.append(time.perf_counter() - started)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put({"path": path, "median_s": statistics.median(times), "times": times, "peak_mib": peak_mib,
               "weights": f"{info.source} {info.sha256[:12]}", "source": source})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default="cifar10/resnet34")
    parser.add_argument("--data", default="../shared/data/cifar10-jpeg")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--hyperplanes", type=int, default=14)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    context = mp.get_context("spawn")
    results = {}
    for path in ("dense", "haste"):
        queue = context.Queue()
        process = context.Process(target=measure, args=(path, args, queue))
        process.start()
        results[path] = queue.get()
        process.join()
    dense, hasted = results["dense"], results["haste"]
    print(f"{args.model}, batch {args.batch_size}, L={args.hyperplanes}, {args.batches} timed batches of "
          f"{dense['source']}, weights {dense['weights']}")  # fmt: skip
    print(f"machine: {platform.processor() or platform.machine()}, torch threads {args.threads}")
    for path, result in results.items():
        print(f"  {path:6s} median {result['median_s']:.3f} s/batch  "
              f"peak memory {result['peak_mib']:.0f} MiB")
    print(f"HASTE / dense wall time: {hasted['median_s'] / dense['median_s']:.2f}x")


if __name__ == "__main__":
    main()
