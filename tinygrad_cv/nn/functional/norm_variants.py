"""Layer, instance and group normalization: one fused op that normalizes over chosen axes.

Batch norm (normalization.py) averages each channel over the batch. The three variants
here never look across examples: each one splits every example into groups of values,
and normalizes each group by its own mean and (biased) variance:

    layer norm     one group per example: the last axes given by normalized_shape
    instance norm  one group per (example, channel): the spatial axes H, W
    group norm     one group per (example, group of C/G channels): those channels and H, W

So all three are the same computation on one view of x, (N, G, P, L): a row per example and
group, of P parameter slots with L values each, normalized row by row; only the view and the
shape of gamma and beta differ. The kernels (normalize_rows_forward and _backward, written
for people in backends/reference_rownorm.py) run on the selected backend.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ... import backends
from ...graph import Op
from ...tensors import Tensor


class NormalizeRowsOp(Op):
    """y = gamma * x_hat + beta with x_hat = (x - mu) / sqrt(var + eps) over each group.

    ``view`` is the 4-D view (N, G, P, L) of x (backends/rownorm.py): one row per (example,
    group) of P*L values, mu and var (biased, divide by P*L) taken along each row, so every
    x_hat depends on every x of its group. gamma and beta have ``param_shape`` and are viewed
    as (G, P) (PyTorch's convention: per channel for instance and group norm, per element of
    normalized_shape for layer norm). The selected backend's normalize_rows kernels run it.
    """

    name, inputs = "normalize", ("x", "gamma", "beta")     # per instance: only the inputs given
    _derivatives = {"x": "gamma/sigma * (up - mean(up) - x_hat * mean(up * x_hat)) over the group "
                         "(mu and sigma depend on every x of the group)",
                    "gamma": "x_hat, so dgamma = sum of up * x_hat", "beta": "1, so dbeta = sum of up"}
    derivatives = tuple(_derivatives.values())

    def __init__(self, view: tuple[int, int, int, int], param_shape: tuple[int, ...], eps: float,
                 has_weight: bool, has_bias: bool):
        self.view, self.param_shape, self.eps = view, param_shape, eps
        self.has_weight, self.has_bias = has_weight, has_bias
        self.inputs = ("x",) + ("gamma",) * has_weight + ("beta",) * has_bias
        self.derivatives = tuple(self._derivatives[i] for i in self.inputs)

    @staticmethod
    def _kernels(x: np.ndarray):
        """The selected backend's kernels for float32 and float64 input; the reference otherwise."""
        return backends.kernels() if x.dtype in (np.float32, np.float64) else backends.load("numpy")

    def forward(self, ctx, x, *rest):
        G, P = self.view[1:3]
        w = rest[0].reshape(G, P) if self.has_weight else None
        b = rest[-1].reshape(G, P) if self.has_bias else None
        ctx.kernels = self._kernels(x)
        x4 = x.reshape(self.view)
        y, mean, inv_std = ctx.kernels.normalize_rows_forward(x4, w, b, self.eps)
        ctx.save_for_backward(x4, mean, inv_std, w)
        return y.reshape(x.shape)

    def backward(self, ctx, up):
        x4, mean, inv_std, w = ctx.saved_tensors
        dx, dgamma, dbeta = ctx.kernels.normalize_rows_backward(up.reshape(self.view), x4, mean, inv_std, w,
                                                                self.has_weight or self.has_bias)
        grads: list[Any] = [dx.reshape(up.shape)]
        if self.has_weight:
            grads.append(dgamma.reshape(self.param_shape))                 # dy/dgamma = x_hat
        if self.has_bias:
            grads.append(dbeta.reshape(self.param_shape))                  # dy/dbeta = 1
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


def _apply(fn: str, op_cls: type, x: Tensor, view: tuple[int, int, int, int], param_shape: tuple[int, ...],
           weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    if x.data.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got {x.data.dtype}")
    if view[2] * view[3] == 0:
        raise ValueError(f"{fn}: every group needs at least one value, got input of shape {tuple(x.shape)}")
    op = op_cls(view, param_shape, eps, weight is not None, bias is not None)
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
    view = (math.prod(x.shape[:x.ndim - k]), 1, math.prod(shape), 1)
    return _apply("layer_norm", LayerNormOp, x, view, shape, weight, bias, eps)


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
    view = (n, num_groups, c // num_groups, math.prod(x.shape[2:]))
    return _apply("group_norm", GroupNormOp, x, view, (c,), weight, bias, eps)


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
    m = math.prod(x.shape[2:])
    if m <= 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element, got input of shape {tuple(x.shape)}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_param("instance_norm", name, t, (c,), x)
    return _apply("instance_norm", InstanceNormOp, x, (n, c, 1, m), (c,), weight, bias, eps)
