"""CIFAR-10 architectures in the layout of huyvnphan/PyTorch_CIFAR10, the zoo the paper used.

Parameter names match that zoo, so its published ``<arch>.pt`` state dicts load with
``strict=True``. ResNets are torchvision ResNets with a 3x3 stride-1 stem and the stride-2 max-pool
kept; VGGs are configurations A/B/D/E with batch norm, convs with bias, global average pooling and
the 512-4096-4096-10 classifier.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import resnet as tv_resnet

# Layer configurations of Simonyan & Zisserman: channel counts, "M" is a 2x2 max-pool.
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11_bn": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13_bn": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16_bn": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19_bn": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


class CifarVGG(nn.Module):
    """VGG with batch norm for 32x32 inputs: features -> global average pool -> 3-layer MLP."""

    def __init__(self, config: list[int | str], num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [
                    nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1),
                    nn.BatchNorm2d(int(item)),
                    nn.ReLU(inplace=True),
                ]
                in_channels = int(item)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Linear(512, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def _cifar_resnet(block: type[nn.Module], layers: list[int], num_classes: int) -> tv_resnet.ResNet:
    model = tv_resnet.ResNet(block, layers, num_classes=num_classes)
    # The zoo replaces torchvision's 7x7 stride-2 stem by a 3x3 stride-1 conv but keeps the max-pool.
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def resnet18(num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(tv_resnet.BasicBlock, [2, 2, 2, 2], num_classes)


def resnet34(num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(tv_resnet.BasicBlock, [3, 4, 6, 3], num_classes)


def resnet50(num_classes: int = 10) -> nn.Module:
    return _cifar_resnet(tv_resnet.Bottleneck, [3, 4, 6, 3], num_classes)


def vgg11_bn(num_classes: int = 10) -> nn.Module:
    return CifarVGG(VGG_CONFIGS["vgg11_bn"], num_classes)


def vgg13_bn(num_classes: int = 10) -> nn.Module:
    return CifarVGG(VGG_CONFIGS["vgg13_bn"], num_classes)


def vgg16_bn(num_classes: int = 10) -> nn.Module:
    return CifarVGG(VGG_CONFIGS["vgg16_bn"], num_classes)


def vgg19_bn(num_classes: int = 10) -> nn.Module:
    return CifarVGG(VGG_CONFIGS["vgg19_bn"], num_classes)
