"""What is known of the paper's results (``docs/paper.md``), and the drop we allow."""

from __future__ import annotations

import pandas as pd

# Known numbers of the paper (docs/paper.md): accuracy drop (pp) and FLOPs reduction (%).
PAPER_POINTS = pd.DataFrame(
    [
        {
            "dataset": "cifar10",
            "model": "cifar10/resnet34",
            "baseline": 93.34,
            "accuracy_drop": 1.25,
            "flops_reduction": 46.72,
            "source": "abstracts",
        },
        {
            "dataset": "cifar10",
            "model": "cifar10/vgg19_bn",
            "baseline": 93.95,
            "accuracy_drop": 1.63,
            "flops_reduction": 38.83,
            "source": "secondary",
        },
        # ImageNet: torchvision checkpoints on the 50,000 validation images; both from secondary sources
        {
            "dataset": "imagenet",
            "model": "imagenet/resnet34",
            "baseline": float("nan"),
            "accuracy_drop": 1.25,
            "flops_reduction": 18.69,
            "source": "secondary, uncertain",
        },
        {
            "dataset": "imagenet",
            "model": "imagenet/wide_resnet101_2",
            "baseline": float("nan"),
            "accuracy_drop": float("nan"),  # not known
            "flops_reduction": 31.54,
            "source": "secondary; 'up to', its drop not known",
        },
    ]
)
DEFAULT_MAX_DROP = 1.25  # pp; the allowed accuracy drop of models without a published point


def allowed_drops(model_names) -> dict[str, float]:
    """Per model, the largest mean accuracy drop (pp) its operating point may have: the paper's."""
    paper = PAPER_POINTS.set_index("model").accuracy_drop.dropna()  # unknown drops: the default
    return {name: float(paper.get(name, DEFAULT_MAX_DROP)) for name in model_names}
