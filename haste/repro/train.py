"""Training the CIFAR-10 stand-in checkpoints: a one-cycle SGD recipe that resumes exactly.

The state after every epoch (model, optimiser, schedule, log) is written atomically to
``<out>/last.pt``; starting the same command again continues from there. Augmentation and dropout
are seeded per epoch, so an interrupted run ends with the same weights as one run straight through.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import zoo
from ..zoo.data import TensorBatches, load_cifar10
from ..zoo.files import atomic_save as _atomic_save  # module-level name: tests interrupt a run here
from ..zoo.files import atomic_write_bytes, atomic_write_rows, one_line
from .provenance import git_commit
from .recipe import EPOCH_SEED_STRIDE, TrainConfig


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def accuracy(model, batches, device, bf16: bool = False) -> tuple[float, float]:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model`` over ``batches``."""
    model.eval()
    correct, loss_sum, count = 0, 0.0, 0
    for images, labels in batches:
        images, labels = images.to(device), labels.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
        loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        count += len(labels)
    return 100.0 * correct / count, loss_sum / count


def train(config: TrainConfig, out_dir: str | os.PathLike, test_images=None, progress=True) -> Path:
    """Train (or resume) ``config.model`` into ``out_dir``; returns the path of ``last.pt``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: a file, not a run folder")
    state_path = out / "last.pt"
    state = None
    if state_path.is_file():  # checked before any work: a foreign file, or another recipe
        advice = f"; use another --out, or remove {state_path}"
        state = read_run(state_path, RESUME_KEYS, "cpu", advice)
        # the data may have moved (another checkout, another machine); the recipe may not change
        recipe = {k: v for k, v in asdict(config).items() if k != "data"}
        if {k: v for k, v in state["config"].items() if k != "data"} != recipe:
            raise ValueError(
                f"{state_path} was written with another configuration: "
                f"{state['config']}; use another --out or the same settings"
            )
    out.mkdir(parents=True, exist_ok=True)
    device = _device()
    torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick its fastest kernels
    torch.manual_seed(config.seed)
    model = zoo.build(config.model).to(device)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    spec = zoo.spec(config.model)
    images, labels = load_cifar10(config.data, "train")
    train_batches = TensorBatches(
        images,
        labels,
        config.batch_size,
        spec.mean,
        spec.std,
        augment=True,
        shuffle=True,
        seed=config.seed,
        limit=config.train_limit,
        channels_last=config.channels_last,
    )
    if test_images is None:
        test_images = load_cifar10(config.data, "test")
    test_images, test_labels = test_images
    test_batches = TensorBatches(
        test_images, test_labels, 500, spec.mean, spec.std, channels_last=config.channels_last
    )

    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.max_lr,
        momentum=config.momentum,
        nesterov=True,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=config.max_lr,
        total_steps=config.epochs * len(train_batches),
        pct_start=config.warmup_fraction,
        anneal_strategy="cos",
        cycle_momentum=False,
        div_factor=25.0,
        final_div_factor=1e3,
    )
    log: list[dict] = []
    start_epoch = 0
    commit = git_commit()  # the code that started the run; a resumed run keeps it
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        log, start_epoch = state["log"], state["epoch"]
        commit = state.get("commit", commit)
        if start_epoch >= config.epochs:
            print(
                f"{config.model} in {out} is finished (epoch {start_epoch}/{config.epochs}): nothing to "
                f"train; `python -m haste export --run {out}` ships it",
                flush=True,
            )
        else:
            print(f"resuming {config.model} after epoch {start_epoch}/{config.epochs}", flush=True)

    for epoch in range(start_epoch, config.epochs):
        torch.manual_seed(config.seed * EPOCH_SEED_STRIDE + epoch)  # dropout: same masks after a resume
        train_batches.set_epoch(epoch)
        model.train()
        started, started_cpu = time.time(), time.process_time()
        loss_sum, correct, count = 0.0, 0, 0
        bar = tqdm(
            train_batches,
            desc=f"{config.model} epoch {epoch + 1}/{config.epochs}",
            disable=not progress,
            leave=False,
        )
        for images, targets in bar:
            images, targets = images.to(device), targets.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(images)
            loss = F.cross_entropy(logits.float(), targets, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(targets)
            correct += (logits.argmax(1) == targets).sum().item()
            count += len(targets)
            bar.set_postfix(loss=f"{loss_sum / count:.3f}")
        test_acc, test_loss = accuracy(model, test_batches, device, config.bf16)
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / count,
            "train_acc": 100 * correct / count,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.time() - started,  # wall time: counts pauses and a busy machine
            "cpu_seconds": time.process_time() - started_cpu,
        }  # CPU time of all threads
        log.append(row)
        _atomic_save(
            {
                "config": asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1,
                "log": log,
                "commit": commit,
            },
            state_path,
        )
        atomic_write_rows(log, row, out / "log.csv")
        print(
            json.dumps({"model": config.model, **{k: round(float(v), 4) for k, v in row.items()}}), flush=True
        )
    return state_path


# what every run file holds (a slim file too), and what resuming a run needs besides
RUN_KEYS = ("config", "epoch", "log", "model")
RESUME_KEYS = RUN_KEYS + ("optimizer", "scheduler")


def read_run(path: Path, keys=RUN_KEYS, map_location="cpu", advice: str = "") -> dict:
    """The state in a run file, loaded as plain data only (``weights_only``: a file that would run
    code when unpickled is refused, not run); a one-line ValueError unless it is a dict with ``keys``
    and a config of :class:`TrainConfig`'s fields."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated or foreign files surface as many exception types
        raise ValueError(f"{path}: not a readable training run ({one_line(error)}){advice}") from error
    missing = [key for key in keys if key not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise ValueError(
            f"{path}: not a training run of `python -m haste train` (it lacks {', '.join(missing)}){advice}"
        )
    fields = set(TrainConfig.__dataclass_fields__)
    if not isinstance(state["config"], dict) or not {"model", "data"} <= set(state["config"]) <= fields:
        raise ValueError(f"{path}: not a training run of `python -m haste train` (its config){advice}")
    return state


def _finished_state(run: str | os.PathLike) -> tuple[dict, TrainConfig]:
    """State and recipe of a finished run: a run folder (``last.pt``) or a file from :func:`slim`."""
    path = Path(run)
    path = path / "last.pt" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"no training run at {run} (expected a run folder or a slim run file)")
    state = read_run(path)
    config, epoch = TrainConfig(**state["config"]), state["epoch"]
    if epoch != config.epochs:
        raise ValueError(f"{run}: training stopped at epoch {epoch}/{config.epochs}")
    return state, config


def _half(state_dict: dict) -> dict:
    return {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state_dict.items()}


def slim(run_dir: str | os.PathLike, out_file: str | os.PathLike) -> Path:
    """Write a finished run without its optimiser state and with float16 weights (a quarter the size).

    This is what travels back from a machine that trained a model; :func:`export` takes it as a run.
    """
    state, _ = _finished_state(run_dir)
    slim_state = {key: state[key] for key in ("config", "epoch", "log", "commit") if key in state}
    slim_state["model"] = _half(state["model"])
    out = Path(out_file)
    _atomic_save(slim_state, out)
    return out


def export(
    run: str | os.PathLike,
    weights_dir: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
) -> dict:
    """Write a finished run as float16 safetensors, evaluate the file as loaded, update the manifest.

    ``run`` is a run folder or a :func:`slim` file; ``data`` overrides the CIFAR-10 location recorded
    in the run (a run trained on another machine).
    """
    from safetensors.torch import save

    from ..zoo.manifest import STAND_IN_MANIFEST, write_rows
    from ..zoo.weights import read_manifest, sha256_file, shipped_weights_dir

    state, config = _finished_state(run)
    data = data or config.data
    weights_dir = Path(weights_dir or shipped_weights_dir())
    arch = config.model.split("/", 1)[1]
    relative = f"cifar10/{arch}.safetensors"
    target = weights_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(save(_half(state["model"])), target)

    model, _ = zoo.load(config.model, weights=target)
    spec = zoo.spec(config.model)
    test_images, test_labels = load_cifar10(data, "test")
    test = TensorBatches(test_images, test_labels, 500, spec.mean, spec.std)
    test_acc, _ = accuracy(model, test, torch.device("cpu"))
    recipe = {k: v for k, v in state["config"].items() if k not in ("model", "data", "train_limit")}
    row = {
        "model": config.model,
        "file": relative,
        "sha256": sha256_file(target),
        "test_accuracy": f"{test_acc:.2f}",
        "epochs": config.epochs,
        "recipe": json.dumps(recipe, sort_keys=True),
        "data_source": Path(data).name,
        "train_commit": state.get("commit", "unknown"),
        "train_hours": f"{sum(r['seconds'] for r in state['log']) / 3600:.2f}",
        # runs started before CPU time was logged have no total
        "train_cpu_hours": f"{sum(r['cpu_seconds'] for r in state['log']) / 3600:.2f}"
        if all("cpu_seconds" in r for r in state["log"])
        else "",
    }
    manifest = read_manifest(weights_dir / STAND_IN_MANIFEST)
    manifest[config.model] = row
    write_rows(manifest, "stand-in", weights_dir / STAND_IN_MANIFEST)
    return row
