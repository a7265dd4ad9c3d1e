"""``haste.evaluate``: top-1 accuracy and the FLOP report in one pass over the data."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sized
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm  # text bars: they reach the terminal from notebooks run by papermill

from .convert import reset_stats
from .report import FlopReport, cached_dense_flops, flop_report
from .settings import user_stacklevel


@dataclass
class EvalResult:
    """Accuracy (percent) and FLOPs per image, averaged over the evaluated images.

    ``correct``: whether each image was classified correctly (bool ``[images]``, in batch order), for
    paired comparisons of two models on the same images; not part of :meth:`to_dict`.
    """

    accuracy: float
    images: int
    report: FlopReport
    correct: torch.Tensor | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "images": self.images, **self.report.totals()}


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    progress: bool = True,
    record_patches: bool = False,
    description: str = "evaluating",
) -> EvalResult:
    """Run ``model`` (dense or converted) over ``(images [B, C, H, W], labels [B])`` batches.

    The HASTE layers' statistics are reset first; with ``record_patches`` each layer also keeps the
    fraction of channels kept in every patch (``layer.stats.kept_fraction``). An image whose logits
    are not all finite counts as wrong (``argmax`` would pick a NaN), with one warning per call.
    """
    model.eval()
    reset_stats(model, record_patches=record_patches)
    device = next(model.parameters()).device
    hits, nonfinite, input_shape = [], 0, None
    total = len(batches) if isinstance(batches, Sized) else None
    for images, labels in tqdm(batches, total=total, desc=description, disable=not progress):
        if images.ndim != 4:
            raise ValueError(f"expected image batches [B, C, H, W], got shape {tuple(images.shape)}")
        if input_shape is None:
            input_shape = tuple(images.shape[1:])
        elif tuple(images.shape[1:]) != input_shape:
            raise ValueError(f"image shape changed from {input_shape} to {tuple(images.shape[1:])}")
        logits = model(images.to(device))
        finite = torch.isfinite(logits).all(1).cpu()
        hits.append((logits.argmax(1).cpu() == labels) & finite)
        nonfinite += len(finite) - int(finite.sum().item())
    correct = torch.cat(hits) if hits else torch.zeros(0, dtype=torch.bool)
    if not len(correct):
        raise ValueError("no images to evaluate (no batches, or empty ones only)")
    if nonfinite:
        warnings.warn(
            f"{nonfinite} of {len(correct)} images gave non-finite logits (NaN or Inf); they count as wrong",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    assert input_shape is not None  # at least one batch was seen
    report = flop_report(model, input_shape, cached_dense_flops(model, input_shape))
    return EvalResult(100.0 * correct.sum().item() / len(correct), len(correct), report, correct)
