"""Grouping schemes: how the channels of every tile window fall into buckets.

A scheme is a :class:`Grouping`: one method from a batch of tile windows to every channel's bucket
and every window's bucket count. The torch versions of both execution paths run any scheme; the
numba kernels compute LSH only, so another scheme runs the torch versions there too (slower on the
CPU, with a one-time warning). ``docs/extending.md`` writes a scheme of its own.
"""

from __future__ import annotations

import warnings

import torch

from .hashing import bucket_ids, hash_windows
from .settings import SEED_LIMIT, user_stacklevel


class Grouping:
    """A way to group the channels of every tile window; subclass it and define :meth:`group`.

    ``name``: what ``HasteConv2d.grouping`` and the warnings call it. ``numba``: whether the numba
    kernels compute this scheme (the built-in LSH only).
    """

    name = "custom"
    numba = False

    def group(
        self, windows: torch.Tensor, hyperplanes: torch.Tensor, centre: bool, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Bucket ids and bucket counts of ``windows`` ``[N, tiles, pixels, C]``.

        ``windows``: the input values of every tile's window, channels last (float32 or float64;
        zeros where a window reaches past the padded input; NaN or infinite where the input is).
        ``hyperplanes`` ``[pixels, L]``, ``centre`` and ``seed``: the layer's. Returns
        ``(ids [N, tiles, C], counts [N, tiles])``: ids in ``0 .. counts - 1``, every id used
        (:func:`haste.hashing.bucket_ids` numbers any codes so). Channels with equal ids are merged.
        """
        raise NotImplementedError


class LSH(Grouping):
    """HASTE's grouping: equal codes of the (centred) projections on the hyperplanes."""

    name = "lsh"
    numba = True

    def group(self, windows, hyperplanes, centre, seed):
        n, tiles, _, channels = windows.shape
        ids, counts = bucket_ids(hash_windows(windows, hyperplanes, centre).view(n * tiles, channels))
        return ids.view(n, tiles, channels), counts.view(n, tiles)


class RandomGroups(Grouping):
    """A control, not HASTE: LSH's bucket count ``m`` in every window, the channels grouped at random.

    Channel ``c`` of tile ``t`` goes to group ``rank[t, c] % m``, with a fixed random rank of every
    channel in every tile drawn from the layer's seed: groups of equal size, independent of the data.
    """

    name = "random"

    def group(self, windows, hyperplanes, centre, seed):
        _, counts = LSH().group(windows, hyperplanes, centre, seed)
        tiles, channels = windows.shape[1], windows.shape[-1]
        generator = torch.Generator().manual_seed((seed + 1_000_003) % SEED_LIMIT)
        ranks = torch.rand(tiles, channels, generator=generator).argsort(1).argsort(1).to(windows.device)
        return ranks.unsqueeze(0) % counts.unsqueeze(-1), counts


BUILT_IN: dict[str, Grouping] = {"lsh": LSH(), "random": RandomGroups()}
_NOTIFIED: set[type] = set()  # the schemes whose fallback to the torch version was announced


def resolve(grouping: str | Grouping) -> Grouping:
    """The scheme of a ``grouping`` setting: a built-in one's name, or a :class:`Grouping`."""
    return BUILT_IN[grouping] if isinstance(grouping, str) else grouping


def grouped(scheme: Grouping, windows: torch.Tensor, hyperplanes, centre: bool, seed: int):
    """``scheme.group(...)``, its answer checked for shape: ``(ids [N * tiles, C], counts [N * tiles])``."""
    n, tiles, _, channels = windows.shape
    ids, counts = scheme.group(windows, hyperplanes, centre, seed)
    if tuple(ids.shape) != (n, tiles, channels) or tuple(counts.shape) != (n, tiles):
        raise ValueError(
            f"grouping {scheme.name!r} returned ids {tuple(ids.shape)} and counts {tuple(counts.shape)}, "
            f"not [{n}, {tiles}, {channels}] and [{n}, {tiles}]"
        )
    return ids.reshape(n * tiles, channels), counts.reshape(n * tiles)


def fallback_notice(scheme: Grouping) -> None:
    """Warn, once per scheme, that a numba kernel could have run the input but not the scheme."""
    if scheme.numba or type(scheme) in _NOTIFIED or any(scheme is s for s in BUILT_IN.values()):
        return
    _NOTIFIED.add(type(scheme))
    warnings.warn(
        f"grouping {scheme.name!r} has no numba kernel: it runs the torch version, slower on the CPU",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
