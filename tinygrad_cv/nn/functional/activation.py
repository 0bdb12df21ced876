"""Activations, and softmax / log-softmax as fused, numerically stable ops."""
from __future__ import annotations

import numpy as np

from ...graph import Op
from ...tensors import Tensor, torch_dims


def relu(x: Tensor) -> Tensor:
    """max(0, x)."""
    return x.relu()


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x if x > 0 else negative_slope * x."""
    return x.leaky_relu(negative_slope)


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha * (e^x - 1)."""
    return x.elu(alpha)


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e^-x)."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def _stable_exp(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """x - max(x) along dim (so that the largest exponent is e^0 = 1) and its exp."""
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted, np.exp(shifted)


class SoftmaxOp(Op):
    """s_i = e^(x_i - m) / sum_j e^(x_j - m), m = max_j x_j (the shift cancels, overflow cannot happen)."""

    name, inputs = "softmax", ("x",)
    derivatives = ("ds_i/dx_j = s_i (1[i=j] - s_j): dx = s * (up - sum(up * s))",)

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, ctx, x):
        _, e = _stable_exp(x, self.dim)
        out = e / e.sum(axis=self.dim, keepdims=True)
        ctx.save_for_backward(out)
        return out

    def backward(self, ctx, up):
        # ds_i/dx_j = s_i (1[i=j] - s_j)  =>  dx = s * (up - sum(up * s))
        (out,) = ctx.saved_tensors
        return (out * (up - (up * out).sum(axis=self.dim, keepdims=True)),)

    def __repr__(self) -> str:
        return f"softmax(dim={self.dim})"


class LogSoftmaxOp(Op):
    """log s_i = (x_i - m) - log sum_j e^(x_j - m)."""

    name, inputs = "log_softmax", ("x",)
    derivatives = ("d(log s_i)/dx_j = 1[i=j] - s_j: dx = up - s * sum(up)",)

    def __init__(self, dim: int):
        self.dim = dim

    def forward(self, ctx, x):
        shifted, e = _stable_exp(x, self.dim)
        out = shifted - np.log(e.sum(axis=self.dim, keepdims=True))
        ctx.save_for_backward(out)
        return out

    def backward(self, ctx, up):
        # d log s_i / dx_j = 1[i=j] - s_j  =>  dx = up - s * sum(up)
        (out,) = ctx.saved_tensors
        return (up - np.exp(out) * up.sum(axis=self.dim, keepdims=True),)

    def __repr__(self) -> str:
        return f"log_softmax(dim={self.dim})"


@torch_dims
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """e^x / sum(e^x) along ``dim`` (``axis=`` also taken), computed after subtracting the max."""
    return Tensor.apply(SoftmaxOp(x._dim(dim, "softmax")), x)


@torch_dims
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, without ever forming tiny probabilities."""
    return Tensor.apply(LogSoftmaxOp(x._dim(dim, "log_softmax")), x)
