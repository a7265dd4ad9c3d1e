"""Data-free, training-free baselines for HASTE: static compressions of a trained CNN from its weights
(and stored BN statistics) alone, no images, no calibration, no fine-tuning.

Each method is a function ``compress(model, target, input_shape) -> (compressed copy, Compression)``,
``target`` the whole model's FLOPs reduction in percent (fvcore's count, as HASTE's), reached by a
uniform per-layer rule; the record says what each layer lost and the FLOPs that leaves:

=============  ===========================================================================
``magnitude``  remove the filters of smallest L1 norm (Li et al. 2017), no compensation
``merging``    remove the filters a kept one reproduces best, and fold each into it (after
               Neuron Merging, Kim et al. 2020): a duplicate filter goes without loss
``lowrank``    factorise every conv but the stem by a truncated, BN-weighted SVD of its
               weights (a ``k x k`` conv to rank ``r``, then a 1x1 conv)
=============  ===========================================================================

The filter methods cut only where the structure allows (:mod:`haste.baselines.structure`): in a
ResNet the inner convs of each block. The HASTE core never imports this package.
"""

from collections.abc import Callable

from torch import nn

from . import lowrank, magnitude, merging
from .record import Compression, Factorised, RemovedFilters

Method = Callable[..., tuple[nn.Module, Compression]]
METHODS: dict[str, Method] = {
    magnitude.METHOD: magnitude.compress,
    merging.METHOD: merging.compress,
    lowrank.METHOD: lowrank.compress,
}

__all__ = ["METHODS", "Compression", "Factorised", "RemovedFilters", "lowrank", "magnitude", "merging"]
