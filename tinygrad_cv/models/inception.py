"""GoogLeNet's inception module (Szegedy et al., 2014), naive and with 1x1 bottlenecks.

The module runs several branches side by side on the same input (1x1, 3x3 and 5x5
convolutions, so three receptive-field sizes, plus a 3x3 max pool) and stacks their
outputs along the channel axis. The course's example, on a 28x28x256 input with 128 1x1,
192 3x3 and 96 5x5 filters::

    naive:       depth 128 + 192 + 96 + 256 = 672 (the pool passes its 256 channels through)
    conv MACs:   28*28*128*1*1*256 + 28*28*192*3*3*256 + 28*28*96*5*5*256 = 854,196,224 ("854M ops")

With 64-filter 1x1 bottlenecks before the 3x3 and 5x5 convs and after the pool
(``reduce3x3=64, reduce5x5=64, pool_proj=64``) the depth is 128 + 192 + 96 + 64 = 480 and
the conv MACs are 271,351,808 -- the slide's lines sum to that, although it prints
"Total: 358M ops".

Branch names follow torchvision's Inception block (``branch1`` .. ``branch4``); each
conv is followed by a ReLU, as in GoogLeNet.
"""
from __future__ import annotations

from .. import nn
from ..creation import cat
from ..tensors import Tensor

__all__ = ["InceptionModule", "inception_module"]


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), nn.ReLU()]


class InceptionModule(nn.Module):
    """Four parallel branches on the same input, concatenated along the channel axis (dim 1).

    branch1: 1x1 conv; branch2: [1x1 reduce ->] 3x3 conv (pad 1); branch3: [1x1 reduce ->]
    5x5 conv (pad 2); branch4: 3x3 max pool (stride 1, pad 1) [-> 1x1 projection]. All
    keep H x W, so the outputs stack depth-wise: ``out_channels`` = ch1x1 + ch3x3 + ch5x5 +
    (pool_proj, or in_channels when the pool's channels pass through).
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int, reduce3x3: int | None = None,
                 reduce5x5: int | None = None, pool_proj: int | None = None):
        super().__init__()
        sizes = {"in_channels": in_channels, "ch1x1": ch1x1, "ch3x3": ch3x3, "ch5x5": ch5x5,
                 "reduce3x3": reduce3x3, "reduce5x5": reduce5x5, "pool_proj": pool_proj}
        optional = ("reduce3x3", "reduce5x5", "pool_proj")
        bad = {k: v for k, v in sizes.items() if not (v is None and k in optional)
               and (isinstance(v, bool) or not isinstance(v, int) or v < 1)}
        if bad:
            raise ValueError(f"inception_module: channel counts must be positive ints "
                             f"(reductions may be None), got {bad}")
        self.in_channels = in_channels
        self.branch1 = nn.Sequential(*_conv_relu(in_channels, ch1x1, 1))
        self.branch2 = nn.Sequential(*(_conv_relu(in_channels, reduce3x3, 1) if reduce3x3 else []),
                                     *_conv_relu(reduce3x3 or in_channels, ch3x3, 3))
        self.branch3 = nn.Sequential(*(_conv_relu(in_channels, reduce5x5, 1) if reduce5x5 else []),
                                     *_conv_relu(reduce5x5 or in_channels, ch5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     *(_conv_relu(in_channels, pool_proj, 1) if pool_proj else []))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + (pool_proj or in_channels)
        self.naive = reduce3x3 is None and reduce5x5 is None and pool_proj is None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"inception module expects input of shape (N, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, naive={self.naive}"


def inception_module(in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int, reduce3x3: int | None = None,
                     reduce5x5: int | None = None, pool_proj: int | None = None) -> InceptionModule:
    """An inception module: naive without the reductions, GoogLeNet's bottleneck version with them.

    ``inception_module(256, 128, 192, 96)`` is the course's naive example (28x28x256 -> 28x28x672);
    ``inception_module(256, 128, 192, 96, reduce3x3=64, reduce5x5=64, pool_proj=64)`` its
    bottleneck version (-> 28x28x480).
    """
    return InceptionModule(in_channels, ch1x1, ch3x3, ch5x5, reduce3x3, reduce5x5, pool_proj)
