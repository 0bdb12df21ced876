"""Pooling layers: no parameters, they shrink the spatial size."""
from __future__ import annotations

from typing import Sequence

from .. import functional as F
from ..module import Module
from ...tensor import Tensor


class _Pool2d(Module):
    def __init__(self, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
                 padding: int | Sequence[int] = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects input of shape (N, C, H, W), got {tuple(x.shape)}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over each kernel_size window (stride defaults to kernel_size); max routes the gradient."""

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each kernel_size window; the gradient is shared equally."""

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
