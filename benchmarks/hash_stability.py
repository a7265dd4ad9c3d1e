"""How often hash bits flip, and how much accuracy and FLOPs move, with batch size and thread count.

    python benchmarks/hash_stability.py [--limit N] [--batch-sizes 1 32 256] [--threads 1 2]

The same images go through the same converted model (the shipped CIFAR-10 ResNet34, L = 14, seed 0,
the paper's settings) once per configuration (batch size x torch thread count). The GEMMs upstream
of a HASTE layer round differently with another batch size or thread count, so its input differs in
the last bits, and a hash bit whose projection is within rounding of zero can take the other side.
Against the reference configuration (batch 256, 2 threads: how the committed sweeps ran), every
configuration reports the fraction of hash bits that flipped (channel codes recomputed from each
run's own layer inputs, projected in float64 so that the measurement adds no rounding of its own),
the fraction of channel codes and of patches' bucket counts that changed, the images whose predicted
class changed, the largest and median change of a logit, and its accuracy and FLOPs.

Images are processed in blocks: every configuration runs over a block before the next block, so
the codes of one block only are held. Writes ``results/hash_stability.csv`` (one row per
configuration) and ``results/hash_stability_layers.csv`` (bit-flip rate per configuration and
layer), each with the commit, the checkpoint's SHA-256 and the configuration.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import time
from pathlib import Path

import numba
import pandas as pd
import torch
from common import cpu_name  # benchmarks/ is on sys.path when run as a script

import haste
from haste import zoo
from haste.functional import extract_windows
from haste.hashing import hash_windows
from haste.report import dense_flops, flop_report
from haste.repro.provenance import git_commit
from haste.repro.result_cache import code_fingerprint
from haste.tiling import Tiling
from haste.zoo.data import cifar10_batches

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = (256, 2)  # (batch size, threads)


def commit_of_the_tree() -> str:
    """HEAD, marked ``-dirty`` when tracked files differ from it (the numbers then name no commit)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    )
    return git_commit() + ("-dirty" if status.stdout.strip() else "")


def layer_codes(layer: haste.HasteConv2d, x: torch.Tensor) -> torch.Tensor:
    """The channel codes ``[N, tiles, C]`` (int32) of a HASTE layer's input, projected in float64."""
    tiling = Tiling(tuple(x.shape[-2:]), layer.kernel_size, layer.stride, layer.padding, layer.patch_size)
    windows = extract_windows(x.double(), tiling)
    return hash_windows(windows, layer.hyperplanes.double(), layer.centre).to(torch.int32)


class Recorder:
    """Keeps the inputs of every HASTE layer of ``model``, call by call, and hashes them on request."""

    def __init__(self, model):
        self.inputs: dict[str, list[torch.Tensor]] = {}
        self.layers = dict(haste.haste_layers(model))
        for name, layer in self.layers.items():
            layer.register_forward_pre_hook(self._hook(name))

    def _hook(self, name):
        def record(module, inputs):
            self.inputs.setdefault(name, []).append(inputs[0].clone())

        return record

    def take_codes(self) -> dict[str, torch.Tensor]:
        """The codes of everything recorded since the last call (hashed in one batch per layer)."""
        codes = {name: layer_codes(self.layers[name], torch.cat(xs)) for name, xs in self.inputs.items()}
        self.inputs.clear()
        return codes


def flipped_bits(a: torch.Tensor, b: torch.Tensor, num_hyperplanes: int) -> int:
    different = a ^ b
    return sum(int(((different >> bit) & 1).sum()) for bit in range(num_hyperplanes))


def bucket_counts(codes: torch.Tensor) -> torch.Tensor:
    """Distinct codes per patch: ``[N, tiles]``."""
    ordered = codes.sort(dim=-1).values
    return 1 + (ordered[..., 1:] != ordered[..., :-1]).sum(-1)


@torch.inference_mode()
def run(model, images: torch.Tensor, batch_size: int, threads: int):
    torch.set_num_threads(threads)
    return torch.cat([model(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="cifar10/resnet34")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpeg"))
    parser.add_argument("--hyperplanes", type=int, default=14)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="the first N test images (default: all)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--block", type=int, default=256, help="images per block (>= the largest batch)")
    parser.add_argument("--out", default=str(ROOT / "results" / "hash_stability"))
    args = parser.parse_args()

    dense, info = zoo.load(args.model)
    images, labels = next(iter(cifar10_batches(args.data, "test", batch_size=10**9, limit=args.limit)))
    if args.block < max(args.batch_sizes):
        parser.error("--block must be at least the largest batch size")
    configs = [(batch, threads) for batch in args.batch_sizes for threads in args.threads]
    if REFERENCE not in configs:
        configs.append(REFERENCE)
    converted = haste.convert(dense, args.hyperplanes, seed=args.seed)
    runs = {}
    for config in configs:
        model = copy.deepcopy(converted)
        runs[config] = {"model": model, "recorder": Recorder(model), "logits": []}
    layer_names = [name for name, _ in haste.haste_layers(converted)]
    counters = ("bits", "flipped", "codes", "codes_changed", "patches", "patches_changed")
    totals = {config: dict.fromkeys(counters, 0) for config in configs}
    per_layer = {(config, name): [0, 0] for config in configs for name in layer_names}  # flipped, bits
    started = time.perf_counter()
    for start in range(0, len(images), args.block):
        block = images[start : start + args.block]
        codes = {}
        for config, state in runs.items():
            state["logits"].append(run(state["model"], block, *config))
            codes[config] = state["recorder"].take_codes()
        for config in configs:
            count = totals[config]
            for name in layer_names:
                mine, theirs = codes[config][name], codes[REFERENCE][name]
                flipped = flipped_bits(mine, theirs, args.hyperplanes)
                per_layer[config, name][0] += flipped
                per_layer[config, name][1] += mine.numel() * args.hyperplanes
                count["flipped"] += flipped
                count["bits"] += mine.numel() * args.hyperplanes
                count["codes"] += mine.numel()
                count["codes_changed"] += int((mine != theirs).sum())
                counts_mine, counts_theirs = bucket_counts(mine), bucket_counts(theirs)
                count["patches"] += counts_mine.numel()
                count["patches_changed"] += int((counts_mine != counts_theirs).sum())
        done = start + len(block)
        print(f"{done} images, {time.perf_counter() - started:.0f} s", flush=True)

    commit, input_shape = commit_of_the_tree(), tuple(images.shape[1:])
    dense_counts = dense_flops(converted, input_shape)
    reference_logits = torch.cat(runs[REFERENCE]["logits"])
    rows, layer_rows = [], []
    provenance = {
        "model": args.model,
        "weights_sha256": info.sha256,
        "num_hyperplanes": args.hyperplanes,
        "seed": args.seed,
        "images": len(images),
        "reference": f"batch {REFERENCE[0]}, {REFERENCE[1]} threads",
    }
    environment = {
        "torch": torch.__version__,
        "numba": numba.__version__,
        "cpu": cpu_name(),
        "commit": commit,
        "code_fingerprint": code_fingerprint(),
    }
    for (batch, threads), state in runs.items():
        logits = torch.cat(state["logits"])
        report = flop_report(state["model"], input_shape, dense_counts)
        change = (logits - reference_logits).abs()
        count = totals[batch, threads]
        rows.append(
            {
                **provenance,
                "batch_size": batch,
                "threads": threads,
                "accuracy": 100.0 * float((logits.argmax(1) == labels).float().mean()),
                "flops_haste": report.model_haste,
                "flops_reduction": report.reduction,
                "bits_compared": count["bits"],
                "bits_flipped": count["flipped"],
                "bit_flip_rate": count["flipped"] / count["bits"],
                "codes_changed_rate": count["codes_changed"] / count["codes"],
                "patches_bucket_count_changed_rate": count["patches_changed"] / count["patches"],
                "predictions_changed": int((logits.argmax(1) != reference_logits.argmax(1)).sum()),
                "max_abs_logit_change": float(change.max()),
                "median_abs_logit_change": float(change.median()),
                **environment,
            }
        )
        for name in layer_names:
            flipped, bits = per_layer[(batch, threads), name]
            layer_rows.append(
                {
                    **provenance,
                    "batch_size": batch,
                    "threads": threads,
                    "layer": name,
                    "bit_flip_rate": flipped / bits,
                    **environment,
                }
            )
    table = pd.DataFrame(rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.6g")
    pd.DataFrame(layer_rows).to_csv(out.with_name(out.name + "_layers.csv"), index=False, float_format="%.6g")
    shown = ["batch_size", "threads", "accuracy", "flops_reduction", "bit_flip_rate", "codes_changed_rate"]
    shown += ["patches_bucket_count_changed_rate", "predictions_changed", "max_abs_logit_change"]
    shown += ["median_abs_logit_change"]
    print(f"{args.model} L={args.hyperplanes} seed {args.seed}, {len(images)} images")
    print(f"against {provenance['reference']}")
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    print(f"commit {commit}; wrote {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
