"""Wall time of dense against both HASTE execution paths, on one machine in one run.

    python benchmarks/speed.py [--quick] [--threads 2] [--parts layers trained cifar imagenet] [--device cpu]

Writes ``results/speed/layers.csv``, ``trained_layers.csv`` and ``models.csv``
(``results/quick/speed`` with ``--quick``, ``results/speed_cuda`` with ``--device cuda``) and a figure
of the measured speed-up against the ideal one.

* ``layers``: one 3x3 conv (stride 1, padding 1, C_in = C_out) over a grid of channel counts,
  spatial sizes, L, batch sizes and two synthetic input kinds that bracket a trained network:
  ``iid`` (ReLU of i.i.d. Gaussian noise: no channel is like another, HASTE's worst case) and
  ``redundant`` (every channel one of ``C/4`` base channels plus 5% noise: HASTE's good case).
  The bucket counts they give are reported as ``kept_fraction``.
* ``trained``: every HASTE layer of the shipped CIFAR-10 ResNet34 and VGG19-BN, at the L of the
  committed main table (``results/cifar10_main_table.csv``), batch 32 and 256, on the activations
  that CIFAR-10 test images give it: the realistic setting, layer by layer.
* ``cifar``: CIFAR-10 ResNet34 and VGG19-BN at batch 1 and 256, on CIFAR-10 test images (random
  images if the data is absent), with the shipped stand-in weights (random init where none), at
  the main table's L (``--hyperplanes`` for a model not in it).
* ``imagenet``: ImageNet ResNet50 at 224x224, batch 1 and 32, torchvision weights if they are
  cached (random init otherwise), random images.

Timing: every case builds the three paths, runs each once untimed, then times them in turn
(dense, eval, compressed, dense, ...) and keeps the median. FLOPs count one multiply-add as one
FLOP, as everywhere in haste; ``gflops_per_s`` is the FLOPs a path is counted for (dense FLOPs for
dense, HASTE FLOPs with overhead for both HASTE paths) over its median time. ``ideal_speedup`` is
``1 / (1 - reduction)``. Peak memory (models only): every path runs once more in a child process
of its own, whose peak resident set size (``VmHWM``: torch, model, data and the forward pass) is
reported. Torch's and numba's thread counts are pinned to ``--threads``.

``--device cuda``: everything runs on the GPU, in float32 with TF32 off for the dense convolutions
and HASTE's matrix products alike (cuDNN would otherwise take TF32 for the convolutions only). The
timers wait for the GPU after every run. Peak memory is then the CUDA memory one forward pass
allocates on top of the resident models and inputs. HASTE runs its torch code there (the numba
kernels are CPU-only).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import statistics
import sys
from pathlib import Path

import pandas as pd
import torch
from common import (  # benchmarks/ is on sys.path when run as a script
    DEFAULT_DATA,
    PATHS,
    REPO,
    cpu_name,
    load_model,
    model_inputs,
    peak_memory_mib,
    pin_threads,
    prepare_device,
    seconds,
    synchronize,
)
from torch import nn
from tqdm import tqdm

import haste
from haste.report import flop_report
from haste.repro import derived
from haste.repro.provenance import git_commit


def time_paths(modules: dict[str, nn.Module], inputs: torch.Tensor, reps: int) -> dict[str, float]:
    """Median wall time of every module on ``inputs``, timed in turn after one untimed run each."""
    times = {path: [] for path in modules}
    with torch.inference_mode():
        for module in modules.values():
            module(inputs)
        synchronize(inputs.device)
        for _ in range(reps):
            for path, module in modules.items():
                times[path].append(seconds(lambda module=module: module(inputs), inputs.device))
    return {path: statistics.median(values) for path, values in times.items()}


def haste_paths(dense: nn.Module, hyperplanes: int, **options) -> dict[str, nn.Module]:
    converted = haste.convert(copy.deepcopy(dense), hyperplanes, **options)
    compressed = haste.set_execution(copy.deepcopy(converted), "compressed")
    return {"dense": dense, "eval": converted, "compressed": compressed}


def measured_reduction(model: nn.Module, inputs: torch.Tensor) -> tuple[float, float, float]:
    """FLOP reduction (%), dense and HASTE FLOPs per image, and the conv FLOPs kept, on ``inputs``."""
    haste.reset_stats(model)
    with torch.inference_mode():
        model(inputs)
    if isinstance(model, haste.HasteConv2d):
        stats = model.stats
        per_image = stats.dense / stats.images, stats.total / stats.images
        return 100 * (1 - stats.total / stats.dense), *per_image, stats.conv / stats.dense
    report = flop_report(model, tuple(inputs.shape[1:]))
    kept = float((report.layers["flops_conv"].sum()) / report.layers["flops_dense"].sum())
    return report.reduction, report.model_dense, report.model_haste, kept


def result_row(times, reduction, dense_flops, haste_flops, kept, batch) -> list[dict]:
    rows = []
    for path, median_s in times.items():
        flops = (dense_flops if path == "dense" else haste_flops) * batch
        rows.append(
            {
                "path": path,
                "median_s": median_s,
                "ratio_to_dense": median_s / times["dense"],
                "speedup": times["dense"] / median_s,
                "gflops_per_s": flops / median_s / 1e9,
                "flops_reduction": 0.0 if path == "dense" else reduction,
                "ideal_speedup": 1.0 if path == "dense" else 1 / (1 - reduction / 100),
                "kept_fraction": 1.0 if path == "dense" else kept,
            }
        )
    return rows


def layer_grid(quick: bool) -> list[tuple[int, int, int, int]]:
    """(channels, spatial size, L, batch) cases."""
    shapes = (
        [(64, 32), (256, 8)]
        if quick
        else [(64, 56), (64, 16), (128, 28), (128, 8), (256, 14), (256, 4), (512, 7), (512, 2)]
    )
    hyperplanes = [14] if quick else [8, 14, 20]
    batches = [1] if quick else [1, 32]
    return [
        (c, s, L, b, kind)
        for (c, s), L, b, kind in itertools.product(shapes, hyperplanes, batches, INPUT_KINDS)
    ]


INPUT_KINDS = ("iid", "redundant")


def layer_inputs(kind: str, batch: int, channels: int, size: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if kind == "iid":
        return torch.randn(batch, channels, size, size, generator=generator).relu_()
    base = torch.randn(batch, channels // 4, size, size, generator=generator)
    noise = torch.randn(batch, channels, size, size, generator=generator)
    return (base.repeat_interleave(4, dim=1) + 0.05 * noise).relu_()


def bench_layers(args) -> list[dict]:
    rows = []
    for channels, size, num_hyperplanes, batch, kind in tqdm(layer_grid(args.quick), desc="layers"):
        torch.manual_seed(0)
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval().to(args.device)
        inputs = layer_inputs(kind, batch, channels, size).to(args.device)
        modules = haste_paths(conv, num_hyperplanes, skip=0)
        times = time_paths(modules, inputs, args.reps)
        reduction, dense_flops, haste_flops, kept = measured_reduction(modules["eval"], inputs)
        for row in result_row(times, reduction, dense_flops, haste_flops, kept, batch):
            rows.append(
                {
                    "channels": channels,
                    "size": size,
                    "num_hyperplanes": num_hyperplanes,
                    "batch": batch,
                    "inputs": kind,
                    **row,
                }
            )
    return rows


def operating_points() -> dict[str, int]:
    """L of every model in the committed main table (the paper's operating point, reproduced)."""
    table = REPO / "results" / "cifar10_main_table.csv"
    if not table.exists():
        return {}
    frame = pd.read_csv(table)
    return dict(zip(frame["model"], frame["num_hyperplanes"].astype(int)))


def layer_inputs_of(model: nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input every ``HasteConv2d`` of ``model`` receives on ``inputs``."""
    seen, hooks = {}, []
    for name, module in model.named_modules():
        if isinstance(module, haste.HasteConv2d):

            def keep(module, args, output, name=name):
                seen[name] = args[0].detach()

            hooks.append(module.register_forward_hook(keep))
    with torch.inference_mode():
        model(inputs)
    for hook in hooks:
        hook.remove()
    return seen


def bench_trained_layers(args) -> list[dict]:
    """Every HASTE layer of the shipped CIFAR-10 checkpoints at their operating point L, timed on
    the activations that real test images give it: where the compressed path pays off, and where not."""
    rows = []
    points = operating_points()
    names = [name for name in TRAINED_MODELS if name in points]
    for name in names:
        model, weights = load_model(name)
        if weights.startswith("random"):
            print(f"{name}: no shipped checkpoint, skipped")
            continue
        converted = haste.convert(model.to(args.device), points[name])
        for batch in (32,) if args.quick else (32, 256):
            images, source = model_inputs(name, batch, args.data)
            images = images.to(args.device)
            activations = layer_inputs_of(converted, images)
            layers = dict(converted.named_modules())
            for layer_name, x in tqdm(activations.items(), desc=f"{name} layers, batch {batch}"):
                # HASTE layers output channels-last tensors; the dense model feeds its layers plain
                # NCHW, in which oneDNN ran a 512-channel 2x2 layer 2.7x faster (3.0 against 8.2 ms)
                x = x.contiguous()
                layer = layers[layer_name]
                modules = {
                    "dense": layer.to_conv().eval(),
                    "eval": copy.deepcopy(layer),
                    "compressed": haste.set_execution(copy.deepcopy(layer), "compressed"),
                }
                times = time_paths(modules, x, args.reps if batch < 256 else max(1, args.reps // 2))
                reduction, dense_flops, haste_flops, kept = measured_reduction(modules["eval"], x)
                for row in result_row(times, reduction, dense_flops, haste_flops, kept, batch):
                    rows.append(
                        {
                            "model": name,
                            "weights": weights,
                            "inputs": source,
                            "layer": layer_name,
                            "channels": layer.in_channels,
                            "size": x.shape[-1],
                            "batch": batch,
                            "num_hyperplanes": points[name],
                            **row,
                        }
                    )
    return rows


TRAINED_MODELS = ("cifar10/resnet34", "cifar10/vgg19_bn")


def model_cases(parts, quick: bool) -> list[tuple[str, int]]:
    cases = []
    if "cifar" in parts:
        cases += [
            (name, batch)
            for name in ("cifar10/resnet34", "cifar10/vgg19_bn")
            for batch in ((1, 32) if quick else (1, 256))
        ]
    if "imagenet" in parts:
        cases += [("imagenet/resnet50", batch) for batch in ((1,) if quick else (1, 32))]
    return cases


def bench_models(args) -> list[dict]:
    rows = []
    for name, batch in tqdm(model_cases(args.parts, args.quick), desc="models"):
        model, weights = load_model(name)
        inputs, source = model_inputs(name, batch, args.data)
        model, inputs = model.to(args.device), inputs.to(args.device)
        hyperplanes = operating_points().get(name, args.hyperplanes)
        modules = haste_paths(model, hyperplanes)
        reps = args.reps if batch == 1 else max(1, args.reps // 5)
        times = time_paths(modules, inputs, reps)
        reduction, dense_flops, haste_flops, kept = measured_reduction(modules["eval"], inputs)
        memory = {
            path: peak_memory_mib(
                modules[path], inputs, (name, path, hyperplanes, batch, args.data), args.threads
            )
            for path in PATHS
        }
        for row in result_row(times, reduction, dense_flops, haste_flops, kept, batch):
            rows.append(
                {
                    "model": name,
                    "weights": weights,
                    "inputs": source,
                    "batch": batch,
                    "num_hyperplanes": hyperplanes,
                    "timed_runs": reps,
                    **row,
                    "peak_mib": memory[row["path"]],
                }
            )
    return rows


def machine(device: torch.device) -> dict:
    cpu = cpu_name()
    context = {
        "device": f"cpu: {cpu}",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "commit": git_commit(),
        "memory": "peak resident set size of a process running the path",
    }
    if device.type == "cuda":
        context["device"] = f"cuda: {torch.cuda.get_device_name(device)} (host {cpu}), float32, TF32 off"
        context["memory"] = "peak CUDA memory of one forward pass above the resident models and inputs"
    return context


def write(rows: list[dict], path: Path, context: dict) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for key, value in context.items():
        frame[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")  # never a half-written CSV under its real name
    frame.to_csv(partial, index=False, float_format="%.6g")
    os.replace(partial, path)
    print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return frame


def plot(panels: dict[str, pd.DataFrame | None], out: Path) -> None:
    """One panel per non-empty frame (title -> rows): measured against ideal speed-up of both paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    from haste.repro.plotting import save_figure

    panels = {title: frame for title, frame in panels.items() if frame is not None and not frame.empty}
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.2), squeeze=False)
    for axis, (title, frame) in zip(axes[0], panels.items()):
        haste_rows = frame[frame["path"] != "dense"]
        sns.scatterplot(data=haste_rows, x="ideal_speedup", y="speedup", hue="path", style="batch", ax=axis)
        low, high = haste_rows["ideal_speedup"].min(), haste_rows["ideal_speedup"].max()
        axis.plot([low, high], [low, high], color="grey", lw=0.8, ls="--", label="measured = ideal")
        axis.axhline(1.0, color="black", lw=0.8)
        axis.set(
            ylim=(0, None),
            xlabel="ideal speed-up 1 / (1 - FLOP reduction)",
            ylabel="measured speed-up over dense (>1: faster)",
            title=title,
        )
        axis.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: hides no point
    figure.tight_layout()
    save_figure(figure, out, "speedup")
    print(f"wrote {out / 'speedup'}.png/.pdf")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small grid, for a smoke run")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["layers", "trained", "cifar", "imagenet"],
        choices=["layers", "trained", "cifar", "imagenet"],
    )
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads (pinned)")
    parser.add_argument("--reps", type=int, default=None, help="timed runs per path (default 10, quick 2)")
    parser.add_argument("--hyperplanes", type=int, default=14, help="L for the model cases")
    parser.add_argument("--data", default=DEFAULT_DATA, help="CIFAR-10 (default: $HASTE_DATA or ../shared)")
    parser.add_argument(
        "--device", type=torch.device, default=torch.device("cpu"), help="cpu or cuda (a GPU; see above)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.reps = args.reps or (2 if args.quick else 10)
    prepare_device(parser, args.device)
    suffix = "" if args.device.type == "cpu" else f"_{args.device.type}"
    out = args.out or REPO / "results" / (f"quick/speed{suffix}" if args.quick else f"speed{suffix}")
    pin_threads(args.threads)
    context = machine(args.device)
    print(
        f"{context['device']}, {context['threads']} threads, torch {context['torch']}, "
        f"python {sys.version.split()[0]}, commit {context['commit']}"
    )
    if "layers" in args.parts:
        write(bench_layers(args), out / "layers.csv", context)
    if "trained" in args.parts:
        trained = write(bench_trained_layers(args), out / "trained_layers.csv", context)
        if not trained.empty:
            print(
                trained[trained["path"] == "compressed"]
                .groupby(["model", "batch", "channels"])[["speedup", "ideal_speedup"]]
                .median()
                .to_string()
            )
    if {"cifar", "imagenet"} & set(args.parts):
        model_rows = write(bench_models(args), out / "models.csv", context)
        print(
            model_rows[
                ["model", "batch", "path", "median_s", "speedup", "ideal_speedup", "peak_mib"]
            ].to_string(index=False)
        )
    plot_folder(out)
    if args.out is None and not args.quick:  # the committed folders: the tables derived from them follow
        for name in ("speed_by_width.csv", "speed_throughput.csv", "speed_closest.csv"):
            derived.write(name, REPO / "results")


PANELS = {
    "layers.csv": "single 3x3 layers, synthetic inputs",
    "trained_layers.csv": "layers of the trained CIFAR-10 models",
    "models.csv": "whole models",
}


def plot_folder(out: Path) -> None:
    """The figure of every CSV in ``out``, this run's and those of earlier runs of other parts."""
    plot({title: pd.read_csv(out / name) for name, title in PANELS.items() if (out / name).exists()}, out)


if __name__ == "__main__":
    main()
