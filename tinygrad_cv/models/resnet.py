"""ResNet-18/34/50 (He et al., 2015) with torchvision's structure and parameter names.

A stem conv, then four stages of residual blocks (each stage doubles the filters
and halves the spatial size with a stride-2 conv), global average pooling and a
single fully connected layer. ResNet-18/34 use blocks of two 3x3 convs; ResNet-50
uses the bottleneck block (1x1 to reduce the channels, 3x3, 1x1 to expand them 4x).

Each block computes ``relu(F(x) + x)``: it learns the residual F(x) = H(x) - x, and
its shortcut carries x (a 1x1 conv with stride 2 plus BN, ``downsample``, where the
shape changes). Names match torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ``fc``), so state_dict keys map 1:1.

Global average pooling before the classifier is nn.AdaptiveAvgPool2d.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import nn
from ..random import rng
from ..tensors import Tensor

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50"]


def _normal_(t: Tensor, std: float) -> Tensor:
    """N(0, std) in place, drawn as float32 straight from the library's generator (fast for big convs)."""
    if nn.init.skipping():
        return t
    t.data[...] = rng().standard_normal(t.shape, dtype=np.float32) * np.float32(std)
    return t


def init_like_torchvision(model: nn.Module) -> None:
    """torchvision's init for conv nets: conv weights He normal with fan_out (std sqrt(2/fan_out)),
    conv biases 0, BatchNorm weight 1 and bias 0. Linear layers keep PyTorch's default init."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            out_c, _, kh, kw = m.weight.shape
            _normal_(m.weight, math.sqrt(2.0 / (out_c * kh * kw)))
            if m.bias is not None:
                m.bias.data[...] = 0.0
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.weight is not None:
            m.weight.data[...] = 1.0
            m.bias.data[...] = 0.0


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (the BN after it has one)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution without bias: mixes channels, keeps (or strides) the spatial size."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)). ResNet-18/34."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride, torchvision's "v1.5") -> 1x1 expand by 4, plus shortcut.

    ResNet-50+: the 1x1 convs cut the depth the 3x3 conv works on, as GoogLeNet's bottlenecks.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """conv1 7x7/2 -> maxpool 3x3/2 -> layer1..layer4 (64, 128, 256, 512 planes; 2..4 stride 2)
    -> global average pool -> fc. ``layers`` is the number of blocks per stage."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int], num_classes: int = 1000):
        super().__init__()
        if len(layers) != 4 or any(n < 1 for n in layers):
            raise ValueError(f"ResNet needs four positive block counts, got layers={list(layers)}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_like_torchvision(self)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18: BasicBlocks [2, 2, 2, 2]; 11,689,512 parameters with 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes)


def resnet34(num_classes: int = 1000) -> ResNet:
    """ResNet-34: BasicBlocks [3, 4, 6, 3]; 21,797,672 parameters with 1000 classes."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50: Bottlenecks [3, 4, 6, 3]; 25,557,032 parameters with 1000 classes."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes)
