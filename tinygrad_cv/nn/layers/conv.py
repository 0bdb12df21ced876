"""Conv2d: a learned bank of filters slid over the image (NCHW, PyTorch's weight layout).

ConvNd holds what Conv2d and ConvTranspose2d (conv_transpose.py) share: the argument
checks, the parameters and PyTorch's default initialisation.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ...backends.shapes import pair
from ...tensors import Tensor

IntOrPair = int | Sequence[int]


class ConvNd(Module):
    """The shared body of the conv layers: checked sizes, ``weight`` and ``bias``, and the init.

    ``transposed`` swaps the weight's first two axes: (in_channels, out_channels/groups, kh, kw)
    instead of (out_channels, in_channels/groups, kh, kw). ``extra`` names further pair options
    (``output_padding``, ``dilation``) as ``name: (value, lowest allowed, default)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair,
                 padding: IntOrPair, groups: int, bias: bool, *, transposed: bool = False,
                 extra: dict[str, tuple[IntOrPair, int, int]] | None = None):
        super().__init__()
        kind = type(self).__name__
        if in_channels < 1 or out_channels < 1 or groups < 1:
            raise ValueError(f"{kind} needs positive sizes, got in_channels={in_channels}, "
                             f"out_channels={out_channels}, groups={groups}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{kind}: in_channels={in_channels} and out_channels={out_channels} "
                             f"must both be divisible by groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        options = {"kernel_size": (kernel_size, 1, None), "stride": (stride, 1, 1), "padding": (padding, 0, 0),
                   **(extra or {})}
        self._defaults = {}
        for name, (value, low, default) in options.items():
            v = pair(value, f"{kind}: {name}")
            if min(v) < low:
                raise ValueError(f"{kind}: {name} must be >= {low}, got {v if len(set(v)) > 1 else v[0]}")
            setattr(self, name, v)
            self._defaults[name] = None if default is None else (default, default)
        kh, kw = self.kernel_size
        first, second = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        self.weight = Parameter(np.zeros((first, second, kh, kw), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.zeros(out_channels, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform(a=sqrt(5)) on the weight, uniform(+-1/sqrt(fan_in)) on the
        bias, fan_in from the weight's second axis times kh * kw."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(init.calculate_fan_in(self.weight))
            init.uniform_(self.bias, -bound, bound)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        for name, default in self._defaults.items():
            if name not in ("kernel_size", "stride") and getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(ConvNd):
    """PyTorch's nn.Conv2d: weight (out_channels, in_channels/groups, kh, kw), bias (out_channels,).

    Output size per axis (W - F + 2P) / S + 1; fan_in = in_channels/groups * kh * kw.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups, bias)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)
