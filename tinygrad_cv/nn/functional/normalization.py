"""Batch normalization as one fused op, with PyTorch's training and running statistics."""
from __future__ import annotations

from typing import Any

import numpy as np

from ... import backends
from ...graph import Op
from ...tensors import Tensor


def _axes_and_shape(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Reduce over every axis but the channel axis 1; per-channel arrays broadcast as (1, C, 1, ...)."""
    axes = (0,) + tuple(range(2, ndim))
    return axes, (1, -1) + (1,) * (ndim - 2)


class BatchNormOp(Op):
    """y = gamma * x_hat + beta with x_hat = (x - mu) / sqrt(var + eps) per channel.

    In training mode mu and var (biased) come from the batch, so every x_hat depends on
    every input of its channel, and the running statistics given (arrays, updated in place
    as PyTorch's F.batch_norm does) move toward the batch's; in eval mode mu and var are
    the running statistics.
    """

    name, inputs = "batch_norm", ("x", "gamma", "beta")
    derivatives = ("gamma/sigma * (up - mean(up) - x_hat * mean(up * x_hat)) in training "
                   "(mu and sigma depend on every x of the channel), gamma/sigma * up in eval",
                   "x_hat, so dgamma = sum of up * x_hat", "1, so dbeta = sum of up")

    def __init__(self, training: bool, eps: float, has_weight: bool, has_bias: bool,
                 mean: np.ndarray | None = None, var: np.ndarray | None = None, momentum: float = 0.1):
        self.training, self.eps, self.momentum = training, eps, momentum
        self.has_weight, self.has_bias = has_weight, has_bias
        self.running = (mean, var)

    def _move_running(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        """The running statistics (if given) move toward the batch's: momentum * batch, the
        variance unbiased (times m / (m - 1)), as PyTorch."""
        mo = self.momentum
        rm, rv = self.running
        if rm is not None:
            rm *= 1 - mo
            rm += mo * mean.astype(rm.dtype, copy=False)
        if rv is not None:
            rv *= 1 - mo
            rv += mo * (var * (m / (m - 1))).astype(rv.dtype, copy=False)

    def _batch_stats(self, x: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...]):
        """The batch's mean and biased variance; the running statistics move toward them."""
        mean = x.mean(axis=axes)
        centered = x - mean.reshape(shape)
        var = np.mean(centered * centered, axis=axes)          # biased: divide by m
        self._move_running(mean, var, x.size // x.shape[1])
        return centered, var

    def _params(self, rest):
        w = rest[0] if self.has_weight else None
        b = rest[int(self.has_weight)] if self.has_bias else None
        return w, b

    @staticmethod
    def _fused_kernels(x, w, b):
        """The selected backend's one-pass batch norm (the numba backend's: backends/cpu/norm.py),
        when it has one and every array has x's float dtype; else None and the NumPy lines run."""
        k = getattr(backends.kernels(), "batch_norm_forward", None)
        ok = x.dtype in (np.float32, np.float64) and all(a is None or a.dtype == x.dtype for a in (w, b))
        return backends.kernels() if k is not None and ok else None

    def forward(self, ctx, x, *rest):
        w, b = self._params(rest)
        ctx.fused = self._fused_kernels(x, w, b)
        if ctx.fused is not None:
            # the same math as below in one pass per channel; saves x itself, no x_hat
            if self.training:
                y, mean, var, inv_std = ctx.fused.batch_norm_forward(x, w, b, self.eps)
                self._move_running(mean, var, x.size // x.shape[1])
            else:
                y, mean, var, inv_std = ctx.fused.batch_norm_forward(x, w, b, self.eps, *self.running)
            ctx.save_for_backward(x, mean, inv_std, w)
            return y
        axes, shape = _axes_and_shape(x.ndim)
        if self.training:
            centered, var = self._batch_stats(x, axes, shape)
        else:
            mean, var = self.running
            centered = x - mean.reshape(shape).astype(x.dtype, copy=False)
        inv_std = (1 / np.sqrt(var + x.dtype.type(self.eps))).astype(x.dtype, copy=False)
        x_hat = centered * inv_std.reshape(shape)
        ctx.save_for_backward(x_hat, inv_std, w)
        y = x_hat * w.reshape(shape) if w is not None else x_hat.copy()
        if b is not None:
            y += b.reshape(shape)
        return y

    def backward(self, ctx, up):
        if ctx.fused is not None:
            x, mean, inv_std, w = ctx.saved_tensors
            dx, dgamma, dbeta = ctx.fused.batch_norm_backward(up, x, mean, inv_std, w, self.training)
            return (dx,) + ((dgamma,) if self.has_weight else ()) + ((dbeta,) if self.has_bias else ())
        x_hat, inv_std, w = ctx.saved_tensors
        x = x_hat
        axes, shape = _axes_and_shape(x.ndim)
        inv_std = inv_std.reshape(shape)
        d_xhat = up * w.reshape(shape) if w is not None else up
        if self.training:
            # dx = inv_std/m * (m*d_xhat - sum(d_xhat) - x_hat * sum(d_xhat * x_hat)), m = N*H*W
            m = x.size // x.shape[1]
            s1 = d_xhat.sum(axis=axes).reshape(shape) / x.dtype.type(m)
            s2 = (d_xhat * x_hat).sum(axis=axes).reshape(shape) / x.dtype.type(m)
            dx = inv_std * (d_xhat - s1 - x_hat * s2)
        else:
            dx = d_xhat * inv_std                          # constants: a per-channel scale
        grads: list[Any] = [dx]
        if self.has_weight:
            grads.append((up * x_hat).sum(axis=axes))     # dy/dgamma = x_hat
        if self.has_bias:
            grads.append(up.sum(axis=axes))               # dy/dbeta = 1
        return tuple(grads)


def _as_array(t: Any) -> np.ndarray | None:
    return None if t is None else (t.data if isinstance(t, Tensor) else np.asarray(t))


def batch_norm(x: Tensor, running_mean: Any, running_var: Any, weight: Tensor | None = None,
               bias: Tensor | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """PyTorch's F.batch_norm for (N, C), (N, C, L) or (N, C, H, W) input.

    training=True normalizes with the batch's mean and biased variance and, when running
    statistics are given (Tensors or arrays, updated in place), moves them toward the batch's:
    running = (1 - momentum) * running + momentum * batch, with the unbiased variance.
    training=False normalizes with the running statistics.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}")
    c = x.shape[1]
    rm, rv = _as_array(running_mean), _as_array(running_var)
    for name, t in (("running_mean", rm), ("running_var", rv), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for input of shape {x.shape}, "
                             f"got {tuple(t.shape)}")
    if training:
        m = x.size // c
        if m <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, "
                             f"got input of shape {x.shape}")
    elif rm is None or rv is None:
        raise ValueError("batch_norm: eval mode (training=False) needs running_mean and running_var")
    op = BatchNormOp(training, eps, weight is not None, bias is not None, rm, rv, momentum)
    parents = [x] + [t for t in (weight, bias) if t is not None]
    return Tensor.apply(op, *parents)
