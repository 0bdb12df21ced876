"""Dropout layer: active in training mode, the identity in evaluation mode."""
from __future__ import annotations

from .. import functional as F
from ..module import Module
from ...tensors import Tensor


class Dropout(Module):
    """Inverted dropout with drop probability p (survivors scaled by 1/(1-p) while training)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
