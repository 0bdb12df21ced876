"""Layer, instance and group normalization: one fused op that normalizes over chosen axes.

Batch norm (normalization.py) averages each channel over the batch. The three variants
here never look across examples: each one splits every example into groups of values,
and normalizes each group by its own mean and (biased) variance:

    layer norm     one group per example: the last axes given by normalized_shape
    instance norm  one group per (example, channel): the spatial axes H, W
    group norm     one group per (example, group of C/G channels): those channels and H, W

So all three are the same computation on a 2-D view of x, (number of groups, values per
group), normalized row by row; only the view and the shape of gamma and beta differ.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ...graph import Op
from ...tensors import Tensor


class NormalizeRowsOp(Op):
    """y = gamma * x_hat + beta with x_hat = (x - mu) / sqrt(var + eps) over each group.

    ``rows`` is the 2-D view (groups, m) of x: mu and var (biased, divide by m) are taken
    along each row, so every x_hat depends on every x of its group. gamma and beta have
    ``param_shape`` and broadcast against x as ``broadcast`` (PyTorch's convention: per
    channel for instance and group norm, per element of normalized_shape for layer norm).
    """

    name, inputs = "normalize", ("x", "gamma", "beta")     # per instance: only the inputs given
    _derivatives = {"x": "gamma/sigma * (up - mean(up) - x_hat * mean(up * x_hat)) over the group "
                         "(mu and sigma depend on every x of the group)",
                    "gamma": "x_hat, so dgamma = sum of up * x_hat", "beta": "1, so dbeta = sum of up"}
    derivatives = tuple(_derivatives.values())

    def __init__(self, rows: tuple[int, int], broadcast: tuple[int, ...], param_shape: tuple[int, ...],
                 eps: float, has_weight: bool, has_bias: bool):
        self.rows, self.broadcast, self.param_shape, self.eps = rows, broadcast, param_shape, eps
        self.has_weight, self.has_bias = has_weight, has_bias
        self.inputs = ("x",) + ("gamma",) * has_weight + ("beta",) * has_bias
        self.derivatives = tuple(self._derivatives[i] for i in self.inputs)

    def _param_sum(self, g: np.ndarray) -> np.ndarray:
        """Sum g over every axis where gamma is broadcast, back to gamma's shape."""
        axes = tuple(i for i, s in enumerate(self.broadcast) if s == 1)
        return g.sum(axis=axes).reshape(self.param_shape)

    def forward(self, ctx, x, *rest):
        flat = x.reshape(self.rows)
        centered = flat - flat.mean(axis=1, keepdims=True)
        var = np.mean(centered * centered, axis=1, keepdims=True)       # biased: divide by m
        inv_std = (1 / np.sqrt(var + x.dtype.type(self.eps))).astype(x.dtype, copy=False)
        x_hat = (centered * inv_std).reshape(x.shape)
        w = rest[0] if self.has_weight else None
        b = rest[-1] if self.has_bias else None
        ctx.save_for_backward(x_hat, inv_std, w)
        y = x_hat * w.reshape(self.broadcast) if w is not None else x_hat.copy()
        if b is not None:
            y += b.reshape(self.broadcast)
        return y

    def backward(self, ctx, up):
        x_hat, inv_std, w = ctx.saved_tensors
        d_xhat = (up * w.reshape(self.broadcast) if w is not None else up).reshape(self.rows)
        xh = x_hat.reshape(self.rows)
        # dx = inv_std * (d_xhat - mean(d_xhat) - x_hat * mean(d_xhat * x_hat)), means over the group
        dx = inv_std * (d_xhat - d_xhat.mean(axis=1, keepdims=True)
                        - xh * (d_xhat * xh).mean(axis=1, keepdims=True))
        grads: list[Any] = [dx.reshape(up.shape)]
        if self.has_weight:
            grads.append(self._param_sum(up * x_hat))                      # dy/dgamma = x_hat
        if self.has_bias:
            grads.append(self._param_sum(up))                              # dy/dbeta = 1
        return tuple(grads)


class LayerNormOp(NormalizeRowsOp):
    """Layer norm: each example normalized over its last len(normalized_shape) axes."""

    name = "layer_norm"


class InstanceNormOp(NormalizeRowsOp):
    """Instance norm: each (example, channel) normalized over its spatial axes."""

    name = "instance_norm"


class GroupNormOp(NormalizeRowsOp):
    """Group norm: each (example, group of C/G channels) normalized over those channels and space."""

    name = "group_norm"


def _check_param(fn: str, name: str, t: Tensor | None, shape: tuple[int, ...], x: Tensor) -> None:
    if t is not None and tuple(t.shape) != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape} for input of shape {tuple(x.shape)}, "
                         f"got {tuple(t.shape)}")


def _apply(op_cls: type, x: Tensor, rows: tuple[int, int], broadcast: tuple[int, ...],
           param_shape: tuple[int, ...], weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    op = op_cls(rows, broadcast, param_shape, eps, weight is not None, bias is not None)
    return Tensor.apply(op, x, *[t for t in (weight, bias) if t is not None])


def layer_norm(x: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """PyTorch's F.layer_norm: normalize over the last len(normalized_shape) axes of x.

    mu and var (biased) are taken per example over those axes, whatever the batch;
    weight and bias, if given, have shape normalized_shape (one gamma per element).
    """
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or tuple(x.shape[x.ndim - k:]) != shape:
        raise ValueError(f"layer_norm: normalized_shape {shape} must match the last axes of the input, "
                         f"got input of shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param("layer_norm", name, t, shape, x)
    m = math.prod(shape)
    broadcast = (1,) * (x.ndim - k) + shape
    return _apply(LayerNormOp, x, (x.size // m, m), broadcast, shape, weight, bias, eps)


def group_norm(x: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """PyTorch's F.group_norm for (N, C, ...) input: C channels in num_groups groups of C/G.

    mu and var (biased) are taken per example and group, over the group's channels and
    every spatial position; weight and bias, if given, have shape (C,) (one per channel).
    """
    if x.ndim < 2:
        raise ValueError(f"group_norm: input must be (N, C, ...), got shape {tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    if num_groups <= 0 or c % num_groups:
        raise ValueError(f"group_norm: num_groups ({num_groups}) must divide the number of channels "
                         f"({c}) of input of shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param("group_norm", name, t, (c,), x)
    broadcast = (1, c) + (1,) * (x.ndim - 2)
    return _apply(GroupNormOp, x, (n * num_groups, x.size // (n * num_groups)), broadcast, (c,), weight, bias, eps)


def instance_norm(x: Tensor, running_mean: Any = None, running_var: Any = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5) -> Tensor:
    """PyTorch's F.instance_norm for (N, C, ...) input, with the input's own statistics.

    mu and var (biased) are taken per example and channel over the spatial axes; weight
    and bias, if given, have shape (C,). Running statistics (track_running_stats) are
    not supported: running_mean and running_var must be None, use_input_stats True.
    """
    if running_mean is not None or running_var is not None or not use_input_stats:
        raise ValueError("instance_norm: running statistics are not supported; "
                                  "pass running_mean=None, running_var=None, use_input_stats=True")
    if x.ndim < 3:
        raise ValueError(f"instance_norm: input must be (N, C, L) or (N, C, H, W), got shape {tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    m = x.size // max(n * c, 1)
    if m <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element, got input of shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param("instance_norm", name, t, (c,), x)
    broadcast = (1, c) + (1,) * (x.ndim - 2)
    return _apply(InstanceNormOp, x, (n * c, m), broadcast, (c,), weight, bias, eps)
