"""Where a run computes (``--device``) and which part of it this process takes (``--shard K/N``)."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` or ``"auto"``: the GPU when one is present, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unknown device {device!r}: {str(error).splitlines()[0]}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device} asked for, but torch finds no CUDA GPU here; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {device} asked for, but torch finds {torch.cuda.device_count()} GPU(s)")
    return device


def device_key(device: torch.device) -> dict:
    """What the result cache's key holds of the device: its type, except the CPU's (none, so that
    measurements cached before devices were chosen still count). A GPU's rounding may flip a code
    whose projection is within rounding of zero, so its measurements are kept apart from the CPU's;
    they are shared across GPUs of one type, which is what lets shards on several GPUs merge."""
    return {} if device.type == "cpu" else {"device": device.type}


class Shard:
    """Part ``index`` of ``count``: the HASTE measurements of a run, numbered in the run's fixed order
    (model, seed, L), that this process evaluates are those numbered ``index``, ``index + count``, ...

    One object is shared by the sweeps of a run (``sweep_models``), so the numbering runs on
    across models. Every shard also evaluates the dense models, which every row's drop needs.
    """

    def __init__(self, index: int, count: int):
        if not 0 <= index < count:
            raise ValueError(f"shard {index}/{count}: expected K/N with 0 <= K < N")
        self.index, self.count, self._position = index, count, 0

    def takes_next(self) -> bool:
        """Whether the next measurement in the run's order is this shard's (and count it)."""
        position, self._position = self._position, self._position + 1
        return position % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def as_shard(shard: str | tuple[int, int] | Shard | None) -> Shard | None:
    """``"K/N"`` or ``(K, N)`` as a :class:`Shard` (a ``Shard`` as it is; ``None`` for no sharding)."""
    if shard is None or isinstance(shard, Shard):
        return shard
    try:
        index, count = (int(part) for part in (shard.split("/") if isinstance(shard, str) else shard))
    except (ValueError, TypeError) as error:
        raise ValueError(f"shard {shard!r}: expected K/N, e.g. 0/4 for the first of four") from error
    return Shard(index, count)
