"""VGG16 and VGG19 (Simonyan & Zisserman, 2014) with torchvision's structure and names.

VGG's idea is depth built from the smallest useful filter: every conv is 3x3 with stride
1 and padding 1, every pool 2x2 with stride 2. Three stacked 3x3 convs see as far as one
7x7 conv, yet they apply three ReLUs instead of one and hold fewer weights
(3 * 3^2 C^2 against 7^2 C^2 with C channels in and out).
Most memory is in the early convs, most parameters in the late FCs.

Init as torchvision for the convs (He normal, fan_out); the FC layers keep PyTorch's
default Linear init (torchvision draws N(0, 0.01): 123M more draws, seconds on a laptop).
Names as torchvision: ``features.N`` (conv, [bn,] relu, ..., pool), ``avgpool``
(adaptive to 7x7, the identity for a 224x224 input) and ``classifier.N`` (FC 4096, relu,
dropout, FC 4096, relu, dropout, FC num_classes).
"""
from __future__ import annotations

from .. import nn
from ..tensors import Tensor
from .resnet import init_like_torchvision

__all__ = ["VGG", "CFGS", "make_layers", "vgg16", "vgg19"]

# configuration D (VGG16) and E (VGG19): output channels of each 3x3 conv, "M" a 2x2 max pool
CFGS: dict[str, list[int | str]] = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def make_layers(cfg: list[int | str], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The conv trunk: CONV3-c [+ BN] + ReLU for each number c, a 2x2/2 max pool for each "M"."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, int(v), 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(int(v)))
            layers.append(nn.ReLU())
            in_channels = int(v)
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """features -> avgpool (7x7) -> flatten -> classifier (25088 -> 4096 -> 4096 -> num_classes)."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def vgg16(num_classes: int = 1000, batch_norm: bool = False) -> VGG:
    """VGG16 (configuration D: 13 convs + 3 FCs); 138,357,544 parameters with 1000 classes."""
    return VGG(make_layers(CFGS["D"], batch_norm), num_classes)


def vgg19(num_classes: int = 1000, batch_norm: bool = False) -> VGG:
    """VGG19 (configuration E: 16 convs + 3 FCs); 143,667,240 parameters with 1000 classes."""
    return VGG(make_layers(CFGS["E"], batch_norm), num_classes)
