"""RMSprop: divide the step by a running RMS of the gradient (torch.optim.RMSprop)."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .optimizer import Optimizer


class RMSprop(Optimizer):
    """v = alpha * v + (1 - alpha) * g^2;  w -= lr * g / (sqrt(v) + eps).

    centered=True divides by the estimated std instead (sqrt(v - mean(g)^2)); momentum > 0 keeps
    a velocity buf = momentum * buf + g / (sqrt(v) + eps) and steps w -= lr * buf.
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"invalid alpha value: {group['alpha']}")

    def _update(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        alpha, eps, mu = group["alpha"], group["eps"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
            if mu > 0:
                state["momentum_buffer"] = np.zeros_like(param)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * (grad * grad)
        if group["centered"]:
            ga = state["grad_avg"]
            ga += (1 - alpha) * (grad - ga)
            avg = np.sqrt(sq - ga * ga)
        else:
            avg = np.sqrt(sq)
        avg += eps
        if mu > 0:
            buf = state["momentum_buffer"]
            buf *= mu
            buf += grad / avg
            param -= group["lr"] * buf
        else:
            param -= group["lr"] * (grad / avg)
