"""ConvTranspose2d: a learned upsampling, each input pixel scattering a filter into the output."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ...backends.shapes import pair
from ...tensors import Tensor


class ConvTranspose2d(Module):
    """PyTorch's nn.ConvTranspose2d: weight (in_channels, out_channels/groups, kh, kw), bias (out_channels,).

    Output size per axis (H - 1)*S - 2P + D*(k - 1) + output_padding + 1: with k = S = 2 and
    P = 0 it exactly doubles the map. Default init as PyTorch: kaiming_uniform(a=sqrt(5)) on the
    weight and uniform(+-1/sqrt(fan_in)) on the bias, where PyTorch takes fan_in from the
    weight's second axis: out_channels/groups * kh * kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 output_padding: int | Sequence[int] = 0, groups: int = 1, bias: bool = True,
                 dilation: int | Sequence[int] = 1):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or groups < 1:
            raise ValueError(f"ConvTranspose2d needs positive sizes, got in_channels={in_channels}, "
                             f"out_channels={out_channels}, groups={groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"ConvTranspose2d: in_channels={in_channels} and out_channels={out_channels} "
                             f"must both be divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")
        self.output_padding, self.dilation = pair(output_padding, "output_padding"), pair(dilation, "dilation")
        for name, v, low in (("kernel_size", self.kernel_size, 1), ("stride", self.stride, 1),
                             ("padding", self.padding, 0), ("dilation", self.dilation, 1)):
            if min(v) < low:
                raise ValueError(f"ConvTranspose2d: {name} must be >= {low}, got {v}")
        if any(not 0 <= op < s for op, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding {self.output_padding} must be non-negative and "
                             f"smaller than the stride {self.stride}")
        kh, kw = self.kernel_size
        self.weight = Parameter(np.zeros((in_channels, out_channels // groups, kh, kw), dtype=np.float32))
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
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.groups, self.dilation)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, v, default in (("padding", self.padding, (0, 0)), ("output_padding", self.output_padding, (0, 0)),
                                 ("dilation", self.dilation, (1, 1))):
            if v != default:
                s += f", {name}={v}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
