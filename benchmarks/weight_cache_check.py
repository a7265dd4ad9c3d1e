"""What checking a kept weight copy costs, against rebuilding it (see ``haste/weight_cache.py``).

    python benchmarks/weight_cache_check.py [--threads 2] [--reps 20]

For one 512x512x3x3 weight and for all HASTE layers of the shipped CIFAR-10 ResNet34 (random init
if it is absent): the median CPU time of rebuilding the GEMM path's matrix and the compressed
path's filter table, and of the checks a kept copy could use (the byte comparison with a snapshot
that ``weight_cache`` uses, ``torch.equal``). Then one forward pass at batch 1: dense, the GEMM path
as it runs, and the GEMM path rebuilding its matrix every call. CPU time (``time.process_time``),
so that other jobs on a shared machine inflate it less than wall time; prints one table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd
import torch

import haste
from haste import functional, weight_cache, zoo
from haste.compressed import _build_filter_table
from haste.functional import _gemm_matrix


def cpu_ms(function, reps: int) -> float:
    function()
    times = []
    for _ in range(reps):
        started = time.process_time()
        function()
        times.append(time.process_time() - started)
    return 1e3 * statistics.median(times)


def costs(weights: list[torch.Tensor], reps: int) -> dict[str, float]:
    snapshots = [w.clone() for w in weights]
    return {
        "rebuild GEMM matrix": cpu_ms(lambda: [_gemm_matrix(w, w.dtype).contiguous() for w in weights], reps),
        "rebuild filter table": cpu_ms(lambda: [_build_filter_table(w) for w in weights], max(1, reps // 4)),
        "check: bytes (weight_cache)": cpu_ms(
            lambda: [weight_cache.same_bits(s, w) for s, w in zip(snapshots, weights)], reps
        ),
        "check: torch.equal": cpu_ms(lambda: [torch.equal(s, w) for s, w in zip(snapshots, weights)], reps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [{"case": "one 512x512x3x3 weight", **costs([torch.randn(512, 512, 3, 3)], args.reps)}]
    try:
        dense, _ = zoo.load("cifar10/resnet34")
    except FileNotFoundError:
        dense, _ = zoo.load("cifar10/resnet34", weights=None)
    converted = haste.convert(dense, 14)
    weights = [layer.weight.detach() for _, layer in haste.haste_layers(converted)]
    rows.append({"case": f"ResNet34's {len(weights)} HASTE layers", **costs(weights, args.reps)})
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        forward = {"forward: dense": cpu_ms(lambda: dense(x), args.reps)}
        forward["forward: GEMM path"] = cpu_ms(lambda: converted(x), args.reps)
        kept = functional.rearranged
        functional.rearranged = lambda weight, name, build, *settings: build(weight.detach())
        try:
            forward["forward: GEMM path, matrix rebuilt"] = cpu_ms(lambda: converted(x), args.reps)
        finally:
            functional.rearranged = kept
    rows.append({"case": "ResNet34, batch 1", **forward})
    table = pd.DataFrame(rows).set_index("case").T
    print(f"median CPU ms, {args.threads} threads, torch {torch.__version__}")
    print(table.to_string(float_format=lambda v: f"{v:.2f}", na_rep=""))


if __name__ == "__main__":
    main()
