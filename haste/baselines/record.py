"""What a baseline did to a model: the target, the per-layer rule's ratio, the FLOPs, and per layer
what it removed (filters, and where their weights went) or factorised (the rank kept)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd


@dataclass(frozen=True)
class RemovedFilters:
    """Filters removed from ``producer`` (with their entries of ``norm`` and the matching input
    channels of ``consumer``). Indices are the producer's original filter numbers."""

    producer: str
    norm: str
    consumer: str
    channels: int  # the producer's filters before
    removed: tuple[int, ...]
    # per removed filter, the kept filter whose consumer weights took its weights (-1: none, pruned)
    merged_into: tuple[int, ...]
    scales: tuple[float, ...]  # per removed filter, the factor its consumer weights were added with

    @property
    def kept(self) -> int:
        return self.channels - len(self.removed)


@dataclass(frozen=True)
class Factorised:
    """``layer`` replaced by a ``k x k`` conv to ``rank`` channels and a 1x1 conv back to its outputs."""

    layer: str
    rank: int
    full_rank: int  # min(C_out, C_in * k_h * k_w): the rank at which the factorisation is exact
    flops_before: int  # per image
    flops_after: int


@dataclass
class Compression:
    """The record a baseline returns beside its compressed model. FLOPs per image, fvcore's rules."""

    method: str
    target: float  # the FLOPs reduction asked for, percent of the dense model's whole-model count
    rule: str  # how the per-layer amounts follow from ``ratio``
    ratio: float  # the uniform per-layer ratio the rule needed to reach the target
    flops_dense: int  # fvcore's count of the model before
    flops: int  # the compressed model's count, from what was removed (the tests recount it by fvcore)
    layers: list[RemovedFilters] | list[Factorised] = field(default_factory=list)

    @property
    def flops_reduction(self) -> float:
        return 100.0 * (1.0 - self.flops / self.flops_dense)

    def layer_table(self) -> pd.DataFrame:
        """One row per compressed layer."""
        return pd.DataFrame([asdict(layer) for layer in self.layers])
