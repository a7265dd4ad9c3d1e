"""The training recipe of the shipped checkpoints, apart from the training loop: the command line
reads its defaults without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import SEED_LIMIT

EPOCH_SEED_STRIDE = 100_003  # epoch e of a run with seed s draws its order and augmentation from s * this + e


@dataclass
class TrainConfig:
    """Recipe: SGD + Nesterov, one-cycle LR (linear warm-up, cosine decay), label smoothing.

    The defaults are the recipe of the shipped checkpoints (``weights/manifest.csv``); the command
    line and ``scripts/train_*.sh`` take theirs from here.
    """

    model: str
    data: str
    epochs: int = 30
    batch_size: int = 256
    max_lr: float = 0.2
    warmup_fraction: float = 0.15
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    seed: int = 0
    bf16: bool = True  # autocast; faster on GPUs and CPUs with AMX/AVX512-BF16, far slower on AVX2
    channels_last: bool = True
    train_limit: int | None = None  # for smoke tests only

    def __post_init__(self):
        # checked here, before any data is read: the epochs draw from seed * 100,003 + epoch
        if not 0 <= self.seed * EPOCH_SEED_STRIDE + self.epochs < SEED_LIMIT:
            raise ValueError(
                f"seed {self.seed}: out of range: epoch e draws from seed * 100,003 + e, which torch's "
                "generators take only in [0, 2**64)"
            )
