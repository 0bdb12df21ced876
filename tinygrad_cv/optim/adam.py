"""Adam and AdamW: momentum plus RMS scaling, with bias correction (torch.optim.Adam / AdamW)."""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from . import _fused
from .optimizer import Optimizer


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    weight_decay adds wd * w to g (L2, as torch.optim.Adam); AdamW decouples it.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        b1, b2 = group["betas"]
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"invalid betas {group['betas']}: each must be in [0, 1)")
        if group["eps"] < 0:
            raise ValueError(f"invalid epsilon value: {group['eps']}")

    def _decay(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any]) -> np.ndarray:
        return grad + group["weight_decay"] * param if group["weight_decay"] else grad

    def _update(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        b1, b2 = group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if _fused.usable(param, grad, m, v):
            decoupled = type(self)._decay is not Adam._decay
            wd = group["weight_decay"]
            _fused.adam_(param, grad, m, v, group["lr"] / (1 - b1 ** t), b1, b2, group["eps"],
                         math.sqrt(1 - b2 ** t), 0.0 if decoupled else wd,
                         1 - group["lr"] * wd if decoupled else 1.0)
            return
        grad = self._decay(param, grad, group)
        m += (1 - b1) * (grad - m)                       # m <- b1 m + (1 - b1) g
        v *= b2
        v += (1 - b2) * (grad * grad)
        step_size = group["lr"] / (1 - b1 ** t)
        denom = np.sqrt(v)
        denom /= math.sqrt(1 - b2 ** t)
        denom += group["eps"]
        param -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay: w -= lr * wd * w before the Adam step (default wd 0.01)."""

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _decay(self, param: np.ndarray, grad: np.ndarray, group: dict[str, Any]) -> np.ndarray:
        if group["weight_decay"]:
            param *= 1 - group["lr"] * group["weight_decay"]
        return grad
