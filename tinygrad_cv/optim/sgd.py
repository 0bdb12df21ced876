"""Stochastic gradient descent, with momentum and Nesterov momentum, as torch.optim.SGD."""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from . import _fused
from .optimizer import Optimizer


class SGD(Optimizer):
    """w -= lr * g;  with momentum: v = momentum * v + (1 - dampening) * g, w -= lr * v.

    nesterov=True steps with g + momentum * v (the look-ahead). weight_decay adds wd * w to g.
    The first momentum step starts v at g, as PyTorch does.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      nesterov=nesterov, weight_decay=weight_decay))

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum value: {group['momentum']}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum requires momentum > 0 and zero dampening, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        wd, mu = group["weight_decay"], group["momentum"]
        if mu and _fused.usable(param, grad, *([state["momentum_buffer"]] if "momentum_buffer" in state else [])):
            first = "momentum_buffer" not in state
            buf = state["momentum_buffer"] = np.empty_like(param) if first else state["momentum_buffer"]
            _fused.sgd_(param, grad, buf, group["lr"], mu, 1 - group["dampening"], wd, group["nesterov"], first)
            return
        if wd:
            grad = grad + wd * param
        if mu:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= mu
                damp = 1 - group["dampening"]
                buf += grad if damp == 1 else damp * grad
            grad = grad + mu * buf if group["nesterov"] else buf
        param -= group["lr"] * grad
