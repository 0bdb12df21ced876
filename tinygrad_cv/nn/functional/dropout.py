"""Inverted dropout: zero each input with probability p, scale the survivors by 1/(1-p)."""
from __future__ import annotations

import numpy as np

from ...graph import Op
from ...random import rng
from ...tensors import Tensor


class DropoutOp(Op):
    """y = x * mask, mask_i = 1/(1-p) with probability 1-p, else 0 (drawn once per call of dropout)."""

    name, inputs = "dropout", ("x",)

    def __init__(self, mask: np.ndarray, p: float):
        self.mask, self.p = mask, p          # the mask is this op's argument, drawn by dropout()

    @property
    def derivatives(self) -> tuple[str, ...]:
        return (f"the mask: 1/(1-p) where kept, 0 where dropped (p = {self.p:g})",)

    def forward(self, ctx, x):
        return x * self.mask.astype(x.dtype, copy=False)

    def backward(self, ctx, up):
        return (up * self.mask.astype(up.dtype, copy=False),)   # dy/dx = mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout; identity when not training or p == 0 (expected value unchanged)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return x
    dtype = np.dtype(x.dtype if x.dtype.kind == "f" else np.float32)
    if p == 1.0:
        mask = np.zeros(x.shape, dtype=dtype)
    else:
        keep = rng().random(x.shape, dtype=np.float32) >= np.float32(p)
        mask = keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))
    return Tensor.apply(DropoutOp(mask, p), x)
