"""MobileNet v1 (Howard et al., 2017): depthwise separable convolutions.

A standard 3x3 conv from M to N channels costs 3*3*M*N multiply-adds per output position;
MobileNet splits it into a **depthwise** 3x3 conv (one filter per channel: ``groups=M``,
3*3*M) and a **pointwise** 1x1 conv (M*N), each followed by BatchNorm and ReLU -- about
8 to 9 times less computation. The body follows the paper's Table 1 (the course's copy)::

    Conv / s2        3x3x3x32            224x224x3
    Conv dw / s1 + Conv 1x1 32->64       112x112x32
    Conv dw / s2 + Conv 1x1 64->128      112x112x64
    Conv dw / s1 + Conv 1x1 128->128     56x56x128
    Conv dw / s2 + Conv 1x1 128->256     56x56x128
    Conv dw / s1 + Conv 1x1 256->256     28x28x256
    Conv dw / s2 + Conv 1x1 256->512     28x28x256
    5x Conv dw / s1 + Conv 1x1 512->512  14x14x512
    Conv dw / s2 + Conv 1x1 512->1024    14x14x512
    Conv dw / s1 + Conv 1x1 1024->1024   7x7x1024
    Avg Pool 7x7, FC 1024x1000, Softmax

The table prints "Conv dw / s2" for the second-to-last depthwise conv, but its own input
sizes (7x7x1024 before and after) say stride 1, which is what is built here. With the
width multiplier alpha every layer has int(alpha * channels) channels. 1.0 MobileNet-224:
4,231,976 parameters (the paper's "4.2 million"), 568.7M multiply-adds (the paper's 569M).

There is no torchvision MobileNet v1; names: ``features.0`` the first conv block
(``features.0.0`` conv, ``.1`` BN, ``.2`` ReLU), ``features.1`` .. ``features.13`` the
depthwise separable blocks (``depthwise``, ``bn1``, ``relu1``, ``pointwise``, ``bn2``,
``relu2``), ``avgpool``, ``fc``.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import nn
from ..tensors import Tensor
from .resnet import init_like_torchvision

__all__ = ["DepthwiseSeparable", "MobileNetV1", "mobilenet_v1"]

# (output channels of the pointwise conv, stride of the depthwise conv) for the 13 blocks
BLOCKS: list[tuple[int, int]] = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                                 (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


class DepthwiseSeparable(nn.Sequential):
    """Depthwise 3x3 conv (groups = channels) + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__(OrderedDict([
            ("depthwise", nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1,
                                    groups=in_channels, bias=False)),
            ("bn1", nn.BatchNorm2d(in_channels)),
            ("relu1", nn.ReLU()),
            ("pointwise", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
            ("bn2", nn.BatchNorm2d(out_channels)),
            ("relu2", nn.ReLU()),
        ]))


class MobileNetV1(nn.Module):
    """features (first conv + 13 depthwise separable blocks) -> global average pool -> fc."""

    def __init__(self, num_classes: int = 1000, width_mult: float = 1.0, in_channels: int = 3):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not width_mult > 0:
            raise ValueError(f"width_mult (the paper's alpha) must be positive, got {width_mult}")

        def width(c: int) -> int:
            return max(1, int(c * width_mult))

        c = width(32)
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, c, 3, stride=2, padding=1, bias=False),
                                                 nn.BatchNorm2d(c), nn.ReLU())]
        for out, stride in BLOCKS:
            layers.append(DepthwiseSeparable(c, width(out), stride))
            c = width(out)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self.width_mult = width_mult
        init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.avgpool(self.features(x)).flatten(1))


def mobilenet_v1(num_classes: int = 1000, width_mult: float = 1.0) -> MobileNetV1:
    """MobileNet v1 with width multiplier ``width_mult``; 4,231,976 parameters at 1.0 with 1000 classes."""
    return MobileNetV1(num_classes, width_mult)
