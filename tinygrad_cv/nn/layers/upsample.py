"""Upsample: a fixed (not learned) resize of each feature map, 'nearest' or 'bilinear'."""
from __future__ import annotations

from typing import Sequence

from .. import functional as F
from ..module import Module
from ...tensors import Tensor


class Upsample(Module):
    """PyTorch's nn.Upsample: F.interpolate with the settings stored; no parameters.

    ``Upsample(scale_factor=2)`` doubles H and W by copying each pixel into a 2x2 block;
    ``mode='bilinear'`` mixes the nearest four inputs instead (backends/resample.py)."""

    def __init__(self, size: int | Sequence[int] | None = None, scale_factor: float | Sequence[float] | None = None,
                 mode: str = "nearest", align_corners: bool | None = None):
        super().__init__()
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        s = f"{what}, mode={self.mode!r}"
        return s + (f", align_corners={self.align_corners}" if self.align_corners is not None else "")
