"""Loss modules (PyTorch's nn.CrossEntropyLoss and friends) around the functional losses."""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ..module import Module
from ...tensors import Tensor


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(logits, target, self.reduction)


class NLLLoss(_Loss):
    def forward(self, log_probs: Tensor, target: Any) -> Tensor:
        return F.nll_loss(log_probs, target, self.reduction)


class MSELoss(_Loss):
    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class BCELoss(_Loss):
    def forward(self, probs: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(probs, target, self.reduction)
