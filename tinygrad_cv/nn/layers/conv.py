"""Conv2d: a learned bank of filters slid over the image (NCHW, PyTorch's weight layout)."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ...tensors import Tensor


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) != 2 or not all(isinstance(i, (int, np.integer)) for i in t):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(t[0]), int(t[1])


class Conv2d(Module):
    """PyTorch's nn.Conv2d: weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,).

    Default init as PyTorch: kaiming_uniform(a=sqrt(5)) for the weight and
    uniform(+-1/sqrt(fan_in)) for the bias, fan_in = in_channels/groups * kh * kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0, groups: int = 1,
                 bias: bool = True):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or groups < 1:
            raise ValueError(f"Conv2d needs positive sizes, got in_channels={in_channels}, "
                             f"out_channels={out_channels}, groups={groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: in_channels={in_channels} and out_channels={out_channels} "
                             f"must both be divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        for name, pair, low in (("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1),
                                ("padding", self.padding, 0)):
            if min(pair) < low:
                raise ValueError(f"Conv2d: {name} must be >= {low}, got {pair if len(set(pair)) > 1 else pair[0]}")
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, kh, kw), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.zeros(out_channels, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(init.calculate_fan_in(self.weight))
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
