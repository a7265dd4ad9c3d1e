"""Synthetic data for smoke tests: code paths run end to end without the real datasets."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def synthetic_image_folder(
    root: str | os.PathLike,
    classes: int = 2,
    per_class: int = 4,
    size: tuple[int, int] = (80, 64),
    seed: int = 0,
) -> Path:
    """A tiny ImageFolder of random JPEGs, to smoke-test ImageNet code paths without ImageNet."""
    from PIL import Image

    generator = torch.Generator().manual_seed(seed)
    root = Path(root)
    for label in range(classes):
        folder = root / f"n{label:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = torch.randint(0, 256, (size[1], size[0], 3), generator=generator, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{index:04d}.JPEG")
    return root
