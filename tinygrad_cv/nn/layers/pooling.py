"""Pooling layers: no parameters, they shrink the spatial size."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import functional as F
from ..module import Module
from ...creation import stack
from ...tensors import Tensor


class _Pool2d(Module):
    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over each kernel_size window (stride defaults to kernel_size); max routes the gradient."""

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each kernel_size window; the gradient is shared equally."""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """PyTorch's nn.AdaptiveAvgPool2d: average over H, W bins so the output is ``output_size``.

    ``AdaptiveAvgPool2d(1)`` is global average pooling (mean over H and W). Bin i along an
    axis of size H covers rows floor(i*H/out) .. ceil((i+1)*H/out) - 1, as PyTorch. No
    parameters; the output size equal to the input size returns the input itself.
    """

    def __init__(self, output_size: int | Sequence[int]):
        super().__init__()
        size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be a positive int or a pair of them, "
                             f"got {output_size!r}")
        self.output_size = (int(size[0]), int(size[1]))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects input of shape (N, C, H, W), got {tuple(x.shape)}")
        n, c, h, w = x.shape
        oh, ow = self.output_size
        if (oh, ow) == (h, w):
            return x
        if oh == 1 and ow == 1:
            return x.mean(axis=(2, 3), keepdims=True)
        if h % oh == 0 and w % ow == 0:                      # equal bins: one reshape and a mean
            return x.reshape(n, c, oh, h // oh, ow, w // ow).mean(axis=(3, 5))
        cells = []
        for i in range(oh):
            h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            for j in range(ow):
                w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
                cells.append(x[:, :, h0:h1, w0:w1].mean(axis=(2, 3)))
        return stack(cells, dim=2).reshape(n, c, oh, ow)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
