"""Wide residual networks (Zagoruyko & Komodakis, 2016) for 32x32 CIFAR images.

The paper's claim: the residual connection is what matters, not extreme depth, and
widening the blocks (k times as many filters in every 3x3 conv) buys more accuracy
per unit of training time than stacking more thin blocks. WRN-d-k has depth d and
widening factor k; its body (Table 1 of the paper)::

    conv1    3x3, 16                                       32 x 32
    conv2    N x [3x3, 16k ; 3x3, 16k]                      32 x 32
    conv3    N x [3x3, 32k ; 3x3, 32k]   (first stride 2)   16 x 16
    conv4    N x [3x3, 64k ; 3x3, 64k]   (first stride 2)    8 x  8
    BN, ReLU, 8x8 global average pool, linear classifier

with N = (d - 4) / 6 blocks per group (the paper's convention, d = 6N + 4). Each block
is a **pre-activation** basic block, BN -> ReLU -> conv3x3 -> BN -> ReLU -> [dropout] ->
conv3x3, added to the shortcut; where the width or the stride changes the shortcut is a
1x1 conv of the pre-activated input. Convs have no bias (a BN follows or precedes each).

Totals with 10 classes: WRN-28-10 36,479,194 parameters (the paper's 36.5M), WRN-16-8
10,961,370 (11.0M); WRN-28-10 costs 5.25G multiply-adds on a 32x32 image. The original
ResNet for CIFAR is the thin case k = 1 (WRN-d-1 ~ ResNet-d with pre-activation).

Names: ``conv1``, ``block1`` .. ``block3`` (Sequentials of :class:`WideBasic`: ``bn1``,
``relu1``, ``conv1``, ``bn2``, ``relu2``, ``dropout``, ``conv2``, ``shortcut``), ``bn``,
``relu``, ``avgpool``, ``fc`` (the usual PyTorch port's layout; torchvision has no CIFAR WRN).
"""
from __future__ import annotations

from .. import nn
from ..tensors import Tensor
from .resnet import conv1x1, conv3x3, init_like_torchvision

__all__ = ["WideBasic", "WideResNet", "wide_resnet"]


class WideBasic(nn.Module):
    """Pre-activation block: conv2(dropout(relu(bn2(conv1(relu(bn1(x))))))) + shortcut."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.conv2 = conv3x3(planes, planes)
        self.shortcut = conv1x1(in_planes, planes, stride) if stride != 1 or in_planes != planes else None

    def forward(self, x: Tensor) -> Tensor:
        o = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(o)))
        if self.dropout is not None:
            out = self.dropout(out)
        out = self.conv2(out)
        # identity shortcut carries x itself; a projection sees the pre-activated input (as the paper's code)
        return out + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    """WRN-depth-widen for 32x32 inputs: 3x3 stem, three groups of (depth - 4) / 6 wide blocks
    (16k, 32k, 64k channels; the second and third start with stride 2), BN-ReLU, pool, fc."""

    def __init__(self, depth: int = 28, widen: int = 10, num_classes: int = 10, dropout: float = 0.0,
                 in_channels: int = 3):
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
            raise ValueError(f"wide_resnet: depth must be 6N + 4 with N >= 1 (10, 16, 22, 28, 40, ...), got {depth!r}")
        if isinstance(widen, bool) or not isinstance(widen, int) or widen < 1:
            raise ValueError(f"wide_resnet: widen (the paper's k) must be a positive int, got {widen!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not 0 <= dropout < 1:
            raise ValueError(f"wide_resnet: dropout must be in [0, 1), got {dropout}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = conv3x3(in_channels, widths[0])
        c = widths[0]
        for g, (w, stride) in enumerate(zip(widths[1:], (1, 2, 2)), start=1):
            blocks = [WideBasic(c if i == 0 else w, w, stride if i == 0 else 1, dropout) for i in range(n)]
            setattr(self, f"block{g}", nn.Sequential(*blocks))
            c = w
        self.bn = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)
        self.depth, self.widen = depth, widen
        init_like_torchvision(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(self.avgpool(self.relu(self.bn(x))).flatten(1))

    def extra_repr(self) -> str:
        return f"WRN-{self.depth}-{self.widen}"


def wide_resnet(depth: int = 28, widen: int = 10, num_classes: int = 10, dropout: float = 0.0) -> WideResNet:
    """WRN-depth-widen; ``wide_resnet(28, 10)``: 36,479,194 parameters, ``wide_resnet(16, 8)``: 10,961,370."""
    return WideResNet(depth, widen, num_classes, dropout)
