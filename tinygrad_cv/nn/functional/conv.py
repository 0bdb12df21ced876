"""Convolution and pooling as recorded ops, with PyTorch's names and semantics (NCHW).

The arithmetic lives in the backends (tinygrad_cv/backends: reference.py is the
readable version); these ops check shapes, pick the selected backend's kernels at
forward time and save them in the call's context, with whatever backward needs.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ... import backends
from ...backends.shapes import conv_strictness, output_hw, pair
from ...graph import Op, is_grad_enabled
from ...tensors import Tensor

Size2 = int | Sequence[int]


class Conv2dOp(Op):
    """y[n, o] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, oh*S + i, ow*S + j]."""

    name, symbol, inputs = "conv2d", "conv", ("x", "W", "b")
    derivatives = ("a convolution of the upstream gradient with the flipped filter: "
                   "dx adds up*W back into every window",
                   "dW[o,c,i,j] = sum over n, oh, ow of up * x[n, c, oh*S+i, ow*S+j]",
                   "db[o] = sum of up over n, oh, ow")

    def __init__(self, stride: tuple[int, int], padding: tuple[int, int], groups: int):
        self.stride, self.padding, self.groups = stride, padding, groups

    def forward(self, ctx, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        ctx.kernels = backends.kernels()
        dtype = np.result_type(x, w)
        x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        # a backend may keep work of the forward for backward (the numba backend: im2col's columns
        # for the weight gradient), when a weight gradient will be asked for
        keep = getattr(ctx.kernels, "conv2d_forward_keep", None)
        ctx.kept = None
        if keep is not None and is_grad_enabled() and len(ctx.needs_input_grad) > 1 and ctx.needs_input_grad[1]:
            y, ctx.kept = keep(x, w, b, self.stride, self.padding, self.groups)
            return y
        return ctx.kernels.conv2d_forward(x, w, b, self.stride, self.padding, self.groups)

    def backward(self, ctx, up: np.ndarray):
        x, w = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad) + (False,) * (3 - len(ctx.needs_input_grad))
        if ctx.kept is not None:
            kept, ctx.kept = ctx.kept, None           # used once; a second backward rebuilds it
            dx, dw, db = ctx.kernels.conv2d_backward_kept(up, x, w, self.stride, self.padding, self.groups,
                                                          *needs, kept)
        else:
            dx, dw, db = ctx.kernels.conv2d_backward(up, x, w, self.stride, self.padding, self.groups, *needs)
        return (dx, dw, db) if ctx.has_bias else (dx, dw)


class MaxPool2dOp(Op):
    """y = max over each window; the winner's index (argmax) is saved for backward."""

    name, symbol, inputs = "max_pool2d", "maxpool", ("x",)
    derivatives = ("max routes: 1 for each window's largest input, 0 for the others",)

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, ctx, x: np.ndarray) -> np.ndarray:
        ctx.kernels = backends.kernels()
        y, ctx.argmax = ctx.kernels.max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)
        ctx.shape = x.shape
        return y

    def backward(self, ctx, up: np.ndarray):
        return (ctx.kernels.max_pool2d_backward(up, ctx.argmax, ctx.shape, self.kernel_size, self.stride,
                                                self.padding),)


class AvgPool2dOp(Op):
    """y = mean of each window (padding counts as zeros, as PyTorch's default)."""

    name, symbol, inputs = "avg_pool2d", "avgpool", ("x",)

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    @property
    def derivatives(self) -> tuple[str, ...]:
        k = self.kernel_size
        return (f"1/{k[0] * k[1]} for every input of its window",)

    def forward(self, ctx, x: np.ndarray) -> np.ndarray:
        ctx.kernels, ctx.shape = backends.kernels(), x.shape
        return ctx.kernels.avg_pool2d_forward(x, self.kernel_size, self.stride, self.padding)

    def backward(self, ctx, up: np.ndarray):
        return (ctx.kernels.avg_pool2d_backward(up, ctx.shape, self.kernel_size, self.stride, self.padding),)


def _check_nchw(fn: str, x: Tensor) -> None:
    if x.data.ndim != 4:
        raise ValueError(f"{fn}: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if x.data.dtype.kind != "f":
        raise TypeError(f"{fn}: input must be floating point, got {x.data.dtype}")


def conv2d(
    input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Size2 = 1, padding: Size2 = 0, groups: int = 1
) -> Tensor:
    """PyTorch's F.conv2d: input (N, C, H, W), weight (O, C/groups, KH, KW), bias (O,).

    Output size per axis (W - F + 2P)/S + 1, floored as in PyTorch, with two errors in
    the course's words: a filter that does not fit at all, and a filter whose windows
    tile an unpadded input but leave a remainder (a 3x3 filter at stride 3 on a 7x7
    input; see ``backends.shapes.conv_strictness``).
    """
    _check_nchw("conv2d", input)
    s, p = pair(stride, "stride"), pair(padding, "padding")
    if weight.data.ndim != 4:
        raise ValueError(f"conv2d: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {tuple(weight.shape)}")
    N, C, H, W = input.shape
    O, Cg, kh, kw = weight.shape
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv2d: groups must be a positive int, got {groups!r}")
    if C % groups or O % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels ({C}) and the output channels ({O})")
    if Cg * groups != C:
        raise ValueError(
            f"conv2d: input of shape {tuple(input.shape)} has {C} channels but weight of shape {tuple(weight.shape)} "
            f"expects {Cg} x groups {groups} = {Cg * groups}"
        )
    if bias is not None and tuple(bias.shape) != (O,):
        raise ValueError(f"conv2d: bias must have shape ({O},) for weight of shape {tuple(weight.shape)}, got {tuple(bias.shape)}")
    try:
        output_hw((H, W), (kh, kw), s, p, strict=conv_strictness((kh, kw), s, p))
    except ValueError as e:
        raise ValueError(f"conv2d: {e}") from None
    parents = (input, weight) if bias is None else (input, weight, bias)
    return Tensor.apply(Conv2dOp(s, p, int(groups)), *parents)


def _pool_args(fn: str, input: Tensor, kernel_size: Size2, stride: Size2 | None, padding: Size2):
    _check_nchw(fn, input)
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else pair(stride, "stride")
    p = pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{fn}: padding {p} must be at most half the kernel size {k}")
    try:
        output_hw(tuple(input.shape[2:]), k, s, p)
    except ValueError as e:
        raise ValueError(f"{fn}: {e}") from None
    return k, s, p


def max_pool2d(input: Tensor, kernel_size: Size2, stride: Size2 | None = None, padding: Size2 = 0) -> Tensor:
    """PyTorch's F.max_pool2d (stride defaults to kernel_size; padding is -inf)."""
    return Tensor.apply(MaxPool2dOp(*_pool_args("max_pool2d", input, kernel_size, stride, padding)), input)


def avg_pool2d(input: Tensor, kernel_size: Size2, stride: Size2 | None = None, padding: Size2 = 0) -> Tensor:
    """PyTorch's F.avg_pool2d with count_include_pad=True (stride defaults to kernel_size)."""
    return Tensor.apply(AvgPool2dOp(*_pool_args("avg_pool2d", input, kernel_size, stride, padding)), input)
