"""Adagrad: per-parameter step sizes shrink with the sum of squared gradients (torch.optim.Adagrad)."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .optimizer import Optimizer


class Adagrad(Optimizer):
    """sum += g^2;  w -= lr_t * g / (sqrt(sum) + eps), lr_t = lr / (1 + (t - 1) * lr_decay)."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _update(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(param, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += grad * grad
        std = np.sqrt(s)
        std += group["eps"]
        param -= clr * (grad / std)
