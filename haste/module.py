"""``HasteConv2d``: a drop-in ``nn.Conv2d`` that merges similar input channels per patch.

All state lives on the module (hyperplanes, ``num_hyperplanes``, ``merge``, statistics), so a
converted model is steered at run time: ``layer.num_hyperplanes = 12`` redraws the hyperplanes from
the layer's seed, ``layer.merge = False`` makes the layer exactly ``nn.Conv2d``.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .compressed import haste_conv2d_compressed
from .cost import CostRecorder, LayerStats
from .functional import haste_conv2d
from .hashing import draw_hyperplanes
from .settings import (
    DEFAULT_NUM_HYPERPLANES,
    DEFAULTS,
    check_centre,
    check_execution,
    check_flag,
    check_grouping,
    check_num_hyperplanes,
    check_patch_size,
    check_projection,
    check_seed,
    check_sparsity,
)
from .tiling import Tiling, conv_geometry
from .weight_cache import same_bits


class HasteConv2d(nn.Conv2d):
    """Hashing-based conv: per image and patch, channels with equal LSH codes are merged.

    Build it with :meth:`from_conv`; the weight and bias stay those of the original conv.
    Attributes (all steerable at run time, each checked when set, as :class:`haste.HasteSettings`
    checks them): ``num_hyperplanes`` (L), ``sparsity``, ``patch_size`` (output tile side P),
    ``seed``, ``projection`` ("ternary" or "gaussian"), ``centre``, ``grouping`` ("lsh"; "random" is
    a control: LSH's bucket count per patch, random groups; or a :class:`haste.grouping.Grouping`),
    ``execution`` ("gemm": fastest for large batches, the merge applied as channel replacement before
    one GEMM per layer; "compressed": per-tile convolutions at the merged depth, as in the paper, for
    every grouping but "random"; both compute the same function, in float32 up to rounding, which
    can flip a hash bit; "eval", the old name of "gemm", still works), ``merge`` (False: exactly
    ``nn.Conv2d``), ``record_patches`` (keep the kept-channel fraction of every patch in
    ``stats.kept_fraction``). Buffer ``hyperplanes``: ``[window_pixels, L]``; the FLOP counts follow
    it however it changes (``load_state_dict``, in-place edits, a new tensor). ``padding`` may be
    ``"same"`` (odd kernels, stride 1) or ``"valid"``; the layer holds it as numbers.

    As a drop-in ``nn.Conv2d``: under ``torch.autocast`` the layer computes in the autocast dtype
    (hashing and merging in float32, the GEMM in the autocast dtype), an empty batch gives the empty
    output, and NaN or infinite inputs leave every output finite that ``nn.Conv2d`` leaves finite.
    """

    # two-dimensional and numeric here (nn.Conv2d types them as any-length tuples, padding maybe text)
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    def __init__(
        self,
        *args,
        num_hyperplanes: int = DEFAULT_NUM_HYPERPLANES,
        sparsity: float = DEFAULTS.sparsity,
        patch_size: int = DEFAULTS.patch_size,
        seed: int = 0,
        projection: str = DEFAULTS.projection,
        centre: bool = DEFAULTS.centre,
        grouping: Any = DEFAULTS.grouping,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        _check_supported(self)
        self.padding = _numeric_padding(self)  # "same" / "valid" as numbers: the tiling needs them
        self._num_hyperplanes = check_num_hyperplanes(num_hyperplanes)
        self._sparsity, self._patch_size = check_sparsity(sparsity), check_patch_size(patch_size)
        self._seed, self._projection = check_seed(seed), check_projection(projection)
        self.centre = centre
        self.grouping = grouping
        self.execution = "gemm"
        self.merge = True
        self.record_patches = False
        self._cost = CostRecorder(
            self.in_channels, self.out_channels, self.kernel_size[0] * self.kernel_size[1]
        )
        self._cost_planes: tuple | None = None  # (hyperplanes, version, snapshot) of the cost constants
        self.register_buffer("hyperplanes", self._draw().to(self.weight.device))  # drawn on the CPU

    @classmethod
    def from_conv(
        cls,
        conv: nn.Conv2d,
        num_hyperplanes: int = DEFAULT_NUM_HYPERPLANES,
        sparsity: float = DEFAULTS.sparsity,
        patch_size: int = DEFAULTS.patch_size,
        seed: int = 0,
        **options,
    ) -> HasteConv2d:
        """A HASTE layer that shares ``conv``'s weight and bias (refuses unsupported convs)."""
        _check_supported(conv)
        layer = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=_numeric_padding(conv),
            bias=conv.bias is not None,
            num_hyperplanes=num_hyperplanes,
            sparsity=sparsity,
            patch_size=patch_size,
            seed=seed,
            device=conv.weight.device,
            **options,
        )
        layer.weight = conv.weight
        layer.bias = conv.bias
        return layer

    def to_conv(self) -> nn.Conv2d:
        """The plain ``nn.Conv2d`` this layer was built from (sharing weight and bias)."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            bias=self.bias is not None,
            device=self.weight.device,
        )
        conv.weight, conv.bias = self.weight, self.bias
        return conv

    # --- steering: changing these redraws the hyperplanes from the layer's seed -------------------
    def configure(self, num_hyperplanes=None, sparsity=None, patch_size=None, seed=None, projection=None):
        """Change any of these settings and redraw the hyperplanes; invalid values change nothing."""
        settings = {
            "_num_hyperplanes": self._num_hyperplanes
            if num_hyperplanes is None
            else check_num_hyperplanes(num_hyperplanes),
            "_sparsity": self._sparsity if sparsity is None else check_sparsity(sparsity),
            "_patch_size": self._patch_size if patch_size is None else check_patch_size(patch_size),
            "_seed": self._seed if seed is None else check_seed(seed),
            "_projection": self._projection if projection is None else check_projection(projection),
        }
        windows = [(settings["_patch_size"] - 1) * s + k for s, k in zip(self.stride, self.kernel_size)]
        hyperplanes = draw_hyperplanes(
            windows[0] * windows[1],
            settings["_num_hyperplanes"],
            settings["_sparsity"],
            settings["_seed"],
            settings["_projection"],
        )
        for name, value in settings.items():
            setattr(self, name, value)
        self.hyperplanes = hyperplanes.to(self.hyperplanes)  # keeps the buffer's device and dtype

    num_hyperplanes = property(
        lambda self: self._num_hyperplanes, lambda self, value: self.configure(num_hyperplanes=value)
    )
    sparsity = property(lambda self: self._sparsity, lambda self, value: self.configure(sparsity=value))
    patch_size = property(lambda self: self._patch_size, lambda self, value: self.configure(patch_size=value))
    seed = property(lambda self: self._seed, lambda self, value: self.configure(seed=value))
    projection = property(lambda self: self._projection, lambda self, value: self.configure(projection=value))

    # --- settings that need no redraw, checked when set ------------------------------------------
    def _set_checked(self, name: str, check, value) -> None:
        object.__setattr__(self, name, check(value))

    centre = property(
        lambda self: self._centre, lambda self, value: self._set_checked("_centre", check_centre, value)
    )
    merge = property(
        lambda self: self._merge,
        lambda self, value: self._set_checked("_merge", functools.partial(check_flag, "merge"), value),
    )
    record_patches = property(
        lambda self: self._record_patches,
        lambda self, value: self._set_checked(
            "_record_patches", functools.partial(check_flag, "record_patches"), value
        ),
    )

    def _set_grouping(self, value) -> None:
        value = check_grouping(value)
        if value == "random" and getattr(self, "_execution", "gemm") == "compressed":
            raise ValueError(f"grouping={value!r} runs on the gemm path only, and execution is 'compressed'")
        self._grouping = value

    def _set_execution(self, value) -> None:
        value = check_execution(value)
        if value == "compressed" and self._grouping == "random":
            raise ValueError("execution='compressed' does not run grouping='random', and the layer has it")
        self._execution = value

    grouping = property(lambda self: self._grouping, _set_grouping)
    execution = property(lambda self: self._execution, _set_execution)

    @property
    def window(self) -> tuple[int, int]:
        (s_h, s_w), (k_h, k_w) = self.stride, self.kernel_size
        return (self._patch_size - 1) * s_h + k_h, (self._patch_size - 1) * s_w + k_w

    def _draw(self) -> torch.Tensor:
        win_h, win_w = self.window
        return draw_hyperplanes(
            win_h * win_w, self._num_hyperplanes, self._sparsity, self._seed, self._projection
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint saved at another L carries hyperplanes of another width: adopt them.
        saved = state_dict.get(prefix + "hyperplanes")
        if saved is not None and saved.shape != self.hyperplanes.shape:
            if saved.shape[0] != self.hyperplanes.shape[0]:
                raise ValueError(
                    f"{prefix}hyperplanes: {tuple(saved.shape)} does not fit windows of "
                    f"{self.hyperplanes.shape[0]} pixels (another patch size?)"
                )
            self._num_hyperplanes = check_num_hyperplanes(saved.shape[1])
            self.hyperplanes = torch.empty_like(saved, device=self.hyperplanes.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- forward ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.merge:
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        if x.ndim != 4:
            raise ValueError(f"HasteConv2d expects [N, C, H, W] input, got shape {tuple(x.shape)}")
        if _autocast_applies(x):  # as nn.Conv2d under autocast: compute in the autocast dtype
            device = x.device.type
            with torch.autocast(device, enabled=False):
                return self._haste_forward(x.to(torch.get_autocast_dtype(device)))
        return self._haste_forward(x)

    def _haste_forward(self, x: torch.Tensor) -> torch.Tensor:
        arguments = (self.stride, self.padding, self.hyperplanes, self._patch_size, self.centre)
        grouping = {"grouping": self.grouping, "seed": self._seed}
        if self.execution == "gemm":
            out, num_buckets = haste_conv2d(x, self.weight, self.bias, *arguments, **grouping)
        else:
            out, num_buckets = haste_conv2d_compressed(x, self.weight, self.bias, *arguments, **grouping)
        self._record(x.shape, num_buckets)
        return out

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_hyperplanes={self._num_hyperplanes}, "
            f"sparsity={self._sparsity:.3g}, patch_size={self._patch_size}, seed={self._seed}, "
            f"merge={self.merge}"
        )

    # --- accounting: haste.cost's recorder counts what ran; its cost model turns counts into FLOPs --
    def _hyperplanes_changed(self) -> bool:
        """Whether the hyperplanes differ from those the cost constants were made from (and note them).

        A new tensor or a version bump (``load_state_dict``, in-place edits) is seen anywhere. On the
        CPU a comparison with a snapshot also sees edits through ``.data``, which bump no version;
        elsewhere it would wait for the device, for every layer.
        """
        planes = self.hyperplanes
        version = None if planes.is_inference() else planes._version  # inference tensors have none
        kept = self._cost_planes
        on_cpu = planes.device.type == "cpu"
        if kept is not None and kept[0] is planes and kept[1] == version:
            if not on_cpu or same_bits(kept[2], planes.detach()):
                return False
        snapshot = planes.detach().clone(memory_format=torch.contiguous_format) if on_cpu else None
        self._cost_planes = (planes, version, snapshot)
        return True

    # Host-side bookkeeping: under torch.compile, tracing it would guard on the growing counters
    # and recompile the layer on every call.
    @torch.compiler.disable
    def _record(self, shape: torch.Size, num_buckets: torch.Tensor) -> None:
        if self._hyperplanes_changed():
            self._cost.forget_tiles()
        tiling = Tiling((shape[2], shape[3]), self.kernel_size, self.stride, self.padding, self._patch_size)
        self._cost.record(tiling, self.hyperplanes, num_buckets, self.record_patches)

    @property
    def stats(self) -> LayerStats:
        """Counts and FLOPs since the last reset (reading them waits for the layer's queued GPU work)."""
        return self._cost.stats

    def reset_stats(self) -> None:
        self._cost.reset()


def _autocast_applies(x: torch.Tensor) -> bool:
    """Whether autocast would run a conv of ``x`` in its own dtype (it leaves float64 alone)."""
    device = x.device.type
    return (
        x.dtype in (torch.float32, torch.float16, torch.bfloat16)
        and torch.amp.is_autocast_available(device)
        and torch.is_autocast_enabled(device)
    )


def _numeric_padding(conv: nn.Conv2d) -> tuple[int, int]:
    return conv_geometry((conv.kernel_size[0], conv.kernel_size[1]), conv.stride, conv.padding)[1]


def _own_forward(conv: nn.Conv2d) -> str | None:
    """The method of nn.Conv2d's forward that ``conv``'s class replaces (HASTE would drop it), if any."""
    for name in ("forward", "_conv_forward"):
        if getattr(type(conv), name) is not getattr(nn.Conv2d, name):
            return name
    return None


def unsupported_reason(conv: nn.Conv2d) -> str | None:
    """Why HASTE cannot replace ``conv``, or None if it can."""
    if not isinstance(conv, HasteConv2d) and (method := _own_forward(conv)) is not None:
        return f"{type(conv).__name__} overrides nn.Conv2d.{method}, which HASTE would not run"
    if parametrize.is_parametrized(conv):
        return "a parametrised weight (torch.nn.utils.parametrize, e.g. weight_norm) is not supported"
    if not isinstance(conv.weight, nn.Parameter):
        return "a weight computed by a hook (e.g. the old torch.nn.utils.weight_norm) is not supported"
    if conv.groups != 1:
        return f"grouped conv (groups={conv.groups}) is not supported"
    if any(d != 1 for d in conv.dilation):
        return f"dilation {conv.dilation} is not supported"
    if conv.padding_mode != "zeros":
        return f"padding_mode={conv.padding_mode!r} is not supported (zeros only)"
    try:
        _numeric_padding(conv)
    except ValueError as error:
        return str(error)
    return None


def _check_supported(conv: nn.Conv2d) -> None:
    reason = unsupported_reason(conv)
    if reason is not None:
        raise ValueError(f"HasteConv2d: {reason}")
