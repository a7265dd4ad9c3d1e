"""A fixed battery of small seeded evaluations whose outputs decide whether two versions of the code
compute the same numbers: prints one SHA-256 per case as JSON.

Run against the haste on ``PYTHONPATH`` (a checkout of another commit: ``scripts/restamp_rows.py``
does that), so it uses only what every version of the package has had: ``haste.convert`` with
keyword settings, ``haste.evaluate``, the zoo's ``load`` and its CIFAR-10 loader (``haste.zoo`` and
``haste.zoo.data``; ``haste.models`` and ``haste.data`` in versions before the zoo had its package).
Each case is the SHA-256 of the logits on the first test images and the evaluation's accuracy and
FLOP counts; a case a version cannot run (a setting it lacks) prints as ``"n/a: <reason>"``.

    PYTHONPATH=CHECKOUT python scripts/numeric_battery.py [--data CIFAR10] [--images N]
"""

import argparse
import hashlib
import importlib
import json
import sys

import torch

# Only the haste on PYTHONPATH may run: an editable install's finder would otherwise supply the
# modules that version lacks (haste.zoo for a version before it) from the installed checkout.
sys.meta_path[:] = [finder for finder in sys.meta_path if "__editable__" not in repr(finder)]

CASES = {  # the settings every committed row uses (each with the others at the paper's values)
    "default": {},
    "patch_size=2": {"patch_size": 2},
    "patch_size=4": {"patch_size": 4},
    "patch_size=8": {"patch_size": 8},
    "sparsity=0": {"sparsity": 0.0},
    "sparsity=0.5": {"sparsity": 0.5},
    "sparsity=0.9": {"sparsity": 0.9},
    "gaussian": {"sparsity": 0.0, "projection": "gaussian"},
    "centre=False": {"centre": False},
    "skip=0": {"skip": 0},
    "skip=3": {"skip": 3},
    "include_pointwise": {"include_pointwise": True},
    "grouping=random": {"grouping": "random"},
}
# the targets (FLOPs reductions, %) of the committed baseline rows, each compressed by every method
BASELINE_TARGETS = (10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0)
BASELINE_MODELS = ("cifar10/resnet34", "cifar10/vgg19_bn")
# the cases each model's committed rows need; every other model: "default"
MODEL_CASES = {
    "cifar10/resnet34": list(CASES),
    "cifar10/vgg19_bn": ["default", "patch_size=2", "patch_size=4"],
}


def digest(logits: torch.Tensor, result) -> dict:
    """The SHA-256 of the logits' bytes, and the evaluation's numbers (accuracy, FLOP counts): these
    are compared key by key, since later versions report more of them."""
    counts = {k: v for k, v in sorted(result.to_dict().items()) if isinstance(v, int | float)}
    logits_sha = hashlib.sha256(logits.detach().float().contiguous().numpy().tobytes()).hexdigest()
    return {"logits": logits_sha, **counts}


def zoo_module(name: str):
    """``haste.zoo`` (``name`` ""), ``haste.zoo.data`` ("data"), or where older versions kept them:
    ``haste.models``, ``haste.data``."""
    try:
        return importlib.import_module("haste.zoo" + (f".{name}" if name else ""))
    except ModuleNotFoundError:
        return importlib.import_module(f"haste.{name or 'models'}")


def batches_of(root: str, images: int):
    data, models = zoo_module("data"), zoo_module("")
    pixels, labels = data.load_cifar10(root, "test")
    return data.TensorBatches(pixels[:images], labels[:images], 32, models.CIFAR10_MEAN, models.CIFAR10_STD)


def run_case(model, batches, num_hyperplanes=None, seed=0, **settings) -> dict:
    import haste

    network = (
        model if num_hyperplanes is None else haste.convert(model, num_hyperplanes, seed=seed, **settings)
    )
    logits = torch.cat([network(images) for images, _ in batches])
    return digest(logits, haste.evaluate(network, batches, progress=False))


def baseline_cases(models_loaded: dict, batches) -> dict:
    """Every method of ``haste.baselines`` at every committed target on the paper's two CIFAR-10
    models: the compressed model's logits, accuracy, the FLOPs the method reports and its per-layer
    ratio, where this version has the package."""
    try:
        from haste.baselines import METHODS
    except ImportError as error:
        return {"baselines": f"n/a: {type(error).__name__}"}
    out = {}
    for name in BASELINE_MODELS:
        if name not in models_loaded:
            continue
        for method, compress in METHODS.items():
            for target in BASELINE_TARGETS:
                key = f"{name} baseline {method} {target:g}%"
                try:
                    compressed, record = compress(models_loaded[name], target, (3, 32, 32))
                except (TypeError, ValueError) as error:  # a structure this version does not know
                    out[key] = f"n/a: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
                    continue
                compressed.eval()
                logits = torch.cat([compressed(images) for images, _ in batches])
                labels = torch.cat([labels for _, labels in batches])
                sha = hashlib.sha256(logits.detach().float().contiguous().numpy().tobytes()).hexdigest()
                out[key] = {
                    "logits": sha,
                    "correct": int((logits.argmax(1) == labels).sum()),
                    "flops": int(record.flops),
                    "ratio": float(record.ratio),
                }
    return out


L1_CASE = "cifar10/resnet34 l1-pruning L=14 seed=0"


def l1_control_case(root: str) -> dict:
    """The ablations' static L1 control (``l1_pruning_control``) on ResNet34 at L = 14, seed 0, on 32
    test images: its row's numbers, where this version has the control."""
    control = None
    for module in ("haste.repro.controls", "haste.repro.experiments"):  # where it lives, where it lived
        try:
            control = importlib.import_module(module).l1_pruning_control
            break
        except (ImportError, AttributeError) as error:
            missing = error
    if control is None:
        return {L1_CASE: f"n/a: {type(missing).__name__}"}
    row = control("cifar10/resnet34", [14], [0], root, limit=32, progress=False).iloc[0]
    numbers = {
        name: float(value)
        for name, value in row.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN
    }
    return {L1_CASE: numbers}


def imagenet_cases(root: str) -> dict:
    """The imported Keras ResNet-50 on the first ImageNet images, dense and at ImageNet's settings
    (sparsity 1/2, L = 28), through the runners' own loader, where this version has both."""
    models = zoo_module("")
    name = "imagenet/resnet50-keras"
    try:
        experiments = importlib.import_module("haste.repro.experiments")
        model, info = models.load(name)
    except (ImportError, FileNotFoundError, ValueError) as error:
        return {f"{name} dense": f"n/a: {type(error).__name__}"}
    batches = list(experiments.evaluation_batches(name, root, 8, batch_size=4, resize=None))
    model.eval()
    with torch.no_grad():
        return {
            f"{name} weights": info.sha256,
            f"{name} dense": run_case(model, batches),
            f"{name} L=28 seed=0 sparsity=0.5": run_case(model, batches, 28, 0, sparsity=0.5),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="../shared/data/cifar10-jpeg")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--imagenet", default="../shared/data/imagenet-val-1300")
    args = parser.parse_args()
    torch.set_num_threads(1)  # rounding in the GEMMs depends on the thread count
    import haste

    models = zoo_module("")
    batches = batches_of(args.data, args.images)
    out = {"images": hashlib.sha256(b"".join(x.numpy().tobytes() for x, _ in batches)).hexdigest()}
    names = [name for name in models.MODELS if name.startswith("cifar10/")]
    loaded = {}
    for name in names:
        try:
            model, info = models.load(name)
        except (FileNotFoundError, ValueError) as error:  # not shipped at that commit
            out[f"{name} dense"] = f"n/a: {type(error).__name__}"
            continue
        model.eval()
        loaded[name] = model
        with torch.no_grad():
            out[f"{name} weights"] = info.sha256
            out[f"{name} dense"] = run_case(model, batches)
            for case in MODEL_CASES.get(name, ["default"]):
                settings = CASES[case]
                for seed in (0, 1) if case == "default" else (0,):
                    key = f"{name} L=14 seed={seed} {case}"
                    try:
                        out[key] = run_case(model, batches, 14, seed, **settings)
                    except (TypeError, ValueError) as error:
                        out[key] = f"n/a: {type(error).__name__}: {str(error).splitlines()[0][:80]}"
    with torch.no_grad():
        out.update(baseline_cases(loaded, batches))
    out.update(l1_control_case(args.data))
    out.update(imagenet_cases(args.imagenet))
    out["haste"] = haste.__file__
    package = haste.__file__.rpartition("/")[0]
    foreign = sorted(
        name
        for name, module in sys.modules.items()
        if name.startswith("haste.") and not str(getattr(module, "__file__", package)).startswith(package)
    )
    if foreign:
        raise SystemExit(f"modules from outside {package}: {', '.join(foreign)}")
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
