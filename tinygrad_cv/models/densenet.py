"""DenseNet-121 (Huang et al., 2017) with torchvision's structure and parameter names.

Inside a **dense block** every layer sees the feature maps of *all* the layers before
it, stacked along the channel axis, and adds ``growth_rate`` (k) new maps of its own::

    x_l = H_l([x_0, x_1, ..., x_{l-1}])      ([...]: concatenation along channels, ``tg.cat``)

so a block that starts with c_0 channels hands c_0 + l * k channels to its l-th layer
and ends with c_0 + L * k. Features are reused instead of re-learned, which is why the
layers can be narrow (k = 32). Each layer H_l is a **bottleneck** in pre-activation
order, BN -> ReLU -> 1x1 conv to 4k channels -> BN -> ReLU -> 3x3 conv to k channels.
Between blocks a **transition** (BN -> ReLU -> 1x1 conv -> 2x2 average pool, stride 2)
halves the spatial size and, with compression theta = 0.5, halves the channels.

DenseNet-121 (k = 32, 64 stem channels, blocks of 6, 12, 24, 16 layers)::

    conv0 7x7/2 -> pool0 3x3/2                     64 x 56 x 56
    denseblock1 (6 layers)  64 + 6*32  = 256       transition1 -> 128 x 28 x 28
    denseblock2 (12)       128 + 12*32 = 512       transition2 -> 256 x 14 x 14
    denseblock3 (24)       256 + 24*32 = 1024      transition3 -> 512 x 7 x 7
    denseblock4 (16)       512 + 16*32 = 1024      norm5 -> ReLU -> global pool -> classifier

121 = 1 stem conv + 2 * (6 + 12 + 24 + 16) layer convs + 3 transition convs + 1 linear.
7,978,856 parameters with 1000 classes (torchvision's densenet121), 2.83G multiply-adds (torchvision lists 2.83 GFLOPS, counting multiply-adds)
at 224x224.

Names as torchvision's: ``features.conv0``, ``features.norm0``, ``features.denseblock1
.denselayer1.norm1`` / ``conv1`` / ``norm2`` / ``conv2``, ``features.transition1.conv``,
``features.norm5``, ``classifier``, so state_dict keys map 1:1. One difference of form:
here a dense layer takes the block's running concatenation as one tensor (torchvision
passes the list and concatenates inside the layer); the arithmetic is the same.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from .. import nn
from ..creation import cat
from ..tensors import Tensor
from .resnet import init_like_torchvision

__all__ = ["DenseLayer", "DenseBlock", "Transition", "DenseNet", "densenet121"]


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (to bn_size * k channels) - BN-ReLU-conv3x3 (to k): k new maps from all before."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    """``num_layers`` dense layers; layer l sees in_channels + l * k channels, the block returns
    in_channels + num_layers * k: x <- cat([x, layer(x)], dim=1) after every layer."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4):
        super().__init__()
        for i in range(num_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size))
        self.in_channels = in_channels
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"dense block expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        for layer in self._modules.values():
            x = cat([x, layer(x)], dim=1)
        return x


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (in -> out channels) - 2x2 average pool, stride 2: between dense blocks."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(in_channels)),
            ("relu", nn.ReLU()),
            ("conv", nn.Conv2d(in_channels, out_channels, 1, bias=False)),
            ("pool", nn.AvgPool2d(2, stride=2)),
        ]))


class DenseNet(nn.Module):
    """Stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), dense blocks with transitions between them,
    a final BN, ReLU, global average pool and one linear classifier."""

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, compression: float = 0.5,
                 num_classes: int = 1000):
        super().__init__()
        if growth_rate < 1 or num_init_features < 1 or bn_size < 1 or not block_config \
                or any(n < 1 for n in block_config):
            raise ValueError(f"DenseNet needs positive sizes, got growth_rate={growth_rate}, "
                             f"block_config={list(block_config)}, num_init_features={num_init_features}, "
                             f"bn_size={bn_size}")
        if not 0 < compression <= 1:
            raise ValueError(f"DenseNet compression (theta) must be in (0, 1], got {compression}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        layers: list[tuple[str, nn.Module]] = [
            ("conv0", nn.Conv2d(3, num_init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU()),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]
        c = num_init_features
        for i, n in enumerate(block_config, start=1):
            block = DenseBlock(n, c, growth_rate, bn_size)
            layers.append((f"denseblock{i}", block))
            c = block.out_channels
            if i != len(block_config):
                out = int(c * compression)
                layers.append((f"transition{i}", Transition(c, out)))
                c = out
        layers.append(("norm5", nn.BatchNorm2d(c)))
        self.features = nn.Sequential(OrderedDict(layers))
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        self.growth_rate = growth_rate
        init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.relu(self.features(x))).flatten(1))


def densenet121(num_classes: int = 1000) -> DenseNet:
    """DenseNet-121: k = 32, blocks (6, 12, 24, 16), theta = 0.5; 7,978,856 parameters with 1000 classes."""
    return DenseNet(32, (6, 12, 24, 16), 64, 4, 0.5, num_classes)
