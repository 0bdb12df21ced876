"""AlexNet (Krizhevsky et al., 2012), the course's simplified single-tower version.

The course's listing, for a 227x227x3 input (output size (W - F + 2P)/S + 1)::

    [55x55x96]  CONV1: 96 11x11 filters at stride 4, pad 0   (227-11)/4+1 = 55
    [27x27x96]  MAX POOL1: 3x3 filters at stride 2            (55-3)/2+1 = 27
    [27x27x96]  NORM1: Normalization layer                    (omitted here, see below)
    [27x27x256] CONV2: 256 5x5 filters at stride 1, pad 2
    [13x13x256] MAX POOL2: 3x3 filters at stride 2
    [13x13x256] NORM2: Normalization layer                    (omitted here)
    [13x13x384] CONV3: 384 3x3 filters at stride 1, pad 1
    [13x13x384] CONV4: 384 3x3 filters at stride 1, pad 1
    [13x13x256] CONV5: 256 3x3 filters at stride 1, pad 1
    [6x6x256]   MAX POOL3: 3x3 filters at stride 2
    [4096]      FC6: 4096 neurons
    [4096]      FC7: 4096 neurons
    [1000]      FC8: 1000 neurons (class scores)

A ReLU follows every conv and FC layer (AlexNet was the first famous net to use it), and
dropout 0.5 comes before FC6 and FC7. The NORM layers (local response normalization,
since fallen out of use) have no parameters and keep the shape, so they are left out. The original was split over
two GPUs (two towers); this is the single-tower version the course draws. Layout and
indices as torchvision's AlexNet (``features.0`` is CONV1, ``classifier.1`` FC6), with its
``avgpool`` to 6x6 (the identity for a 227x227 input).
"""
from __future__ import annotations

from .. import nn
from ..tensors import Tensor

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """features (CONV1..CONV5 with POOL1..3) -> avgpool 6x6 -> classifier (FC6, FC7, FC8)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4, padding=0), nn.ReLU(),      # 0 CONV1 -> 55x55x96
            nn.MaxPool2d(3, stride=2),                                 # 2 POOL1 -> 27x27x96
            nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(),               # 3 CONV2 -> 27x27x256
            nn.MaxPool2d(3, stride=2),                                 # 5 POOL2 -> 13x13x256
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),              # 6 CONV3 -> 13x13x384
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),              # 8 CONV4 -> 13x13x384
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),              # 10 CONV5 -> 13x13x256
            nn.MaxPool2d(3, stride=2),                                 # 12 POOL3 -> 6x6x256
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),   # 1 FC6
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),          # 4 FC7
            nn.Linear(4096, num_classes),                                   # 6 FC8
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


def alexnet(num_classes: int = 1000) -> AlexNet:
    """The course's simplified AlexNet for 227x227x3 input; 62,378,344 parameters with 1000 classes."""
    return AlexNet(num_classes)
