"""HASTE: data-free, dynamic compression of CNNs by locality-sensitive hashing of channels.

import haste
from haste.zoo.data import cifar10_batches                # the zoo: models, weights, data
model = haste.convert(pretrained_cnn, num_hyperplanes=14)  # replaces nn.Conv2d layers
result = haste.evaluate(model, cifar10_batches())          # accuracy + FLOPs per image
haste.set_num_hyperplanes(model, 12)                       # steer L at run time
dense = haste.revert(model)

The method (this package's top-level modules) imports nothing from the zoo (``haste.zoo``) or the
reproduction (``haste.repro``).
"""

from .convert import (
    convert,
    haste_layers,
    merging_disabled,
    reset_stats,
    revert,
    set_execution,
    set_hyperplanes,
    set_merging,
    set_num_hyperplanes,
    summary,
)
from .cost import LayerStats
from .evaluate import EvalResult, evaluate
from .functional import haste_conv2d
from .grouping import Grouping
from .hashing import draw_hyperplanes
from .module import HasteConv2d
from .report import FlopReport, dense_flops, flop_report
from .settings import HasteSettings

__version__ = "0.1.0"


__all__ = [
    "HasteConv2d",
    "HasteSettings",
    "LayerStats",
    "convert",
    "revert",
    "summary",
    "haste_layers",
    "set_num_hyperplanes",
    "set_hyperplanes",
    "set_merging",
    "set_execution",
    "merging_disabled",
    "reset_stats",
    "evaluate",
    "EvalResult",
    "dense_flops",
    "flop_report",
    "FlopReport",
    "haste_conv2d",
    "Grouping",
    "draw_hyperplanes",
]
