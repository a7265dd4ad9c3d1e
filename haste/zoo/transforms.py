"""How a model's images are prepared: the normalisation its weights were trained with and, for
ImageNet, the resize and centre crop. A result row records the transform by name (``transform``)."""

from __future__ import annotations

from dataclasses import dataclass

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_transform_name(resize: int | None, crop: int, preprocessing: str) -> str:
    """How ImageNet images are prepared, as recorded in result rows: ``resize256-crop224-torchvision``."""
    return f"{f'resize{resize}-' if resize else ''}crop{crop}-{preprocessing}"


def imagenet_transform(mean, std, resize: int | None = 256, crop: int = 224):
    """Resize the shorter side to ``resize`` (bilinear; ``None``: no resize), centre-crop ``crop``,
    normalise ``(x / 255 - mean) / std`` per RGB channel."""
    from torchvision import transforms

    steps = [transforms.Resize(resize)] if resize else []
    steps += [transforms.CenterCrop(crop), transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


@dataclass(frozen=True)
class Transform:
    """The preparation a model's weights expect. ``preprocessing`` names the normalisation in the
    rows' ``transform`` of ImageNet models ("torchvision", "caffe"); CIFAR-10's 32x32 images are
    normalised as they are."""

    dataset: str  # "cifar10" or "imagenet"
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: int  # the model's input size
    preprocessing: str = "torchvision"

    def name(self, resize: int | None = 256) -> str:
        """The rows' ``transform``: ``normalise-cifar10``, ``resize256-crop224-torchvision``..."""
        if self.dataset == "cifar10":
            return "normalise-cifar10"
        return imagenet_transform_name(resize, self.crop, self.preprocessing)

    def imagenet(self, resize: int | None = 256):
        """The torchvision transform of one ImageNet image (:func:`imagenet_transform`)."""
        return imagenet_transform(self.mean, self.std, resize, self.crop)
