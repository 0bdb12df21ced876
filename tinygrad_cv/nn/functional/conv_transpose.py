"""Transposed convolution (PyTorch's F.conv_transpose2d) as a recorded op, NCHW.

A convolution gathers: each output reads a window of inputs. A transposed convolution
scatters: each input value x[n, o, h, w], times its whole filter W[o, c, :, :], is added
into the output starting at row h*S and column w*S; afterwards P rows and columns are cut
from every border. Per axis the output size is

    (H - 1)*S - 2P + D*(kH - 1) + output_padding + 1

the size that a convolution with the same filter, stride S and padding P maps back to H
(output_padding < S picks one of the S sizes that all do). That makes it the adjoint of
conv2d, which is how the backends compute it exactly (backends/transposed.py): its forward
is conv2d's input gradient, its input gradient is conv2d's forward, and its weight gradient
is conv2d's weight gradient with input and upstream gradient swapped. The weight layout is
PyTorch's (C_in, C_out/groups, kH, kW). Dilation D inserts D - 1 zeros between the filter's
taps before the kernels see it (and the weight gradient is read back at the taps).
"""
from __future__ import annotations

import numpy as np

from ... import backends
from ...backends.shapes import pair, transposed_output_hw
from ...graph import Op
from ...tensors import Tensor
from .conv import Size2, _check_nchw


def _dilate(w: np.ndarray, d: tuple[int, int]) -> np.ndarray:
    """The filter with d - 1 zeros between its taps: size D*(k - 1) + 1 per axis."""
    if d == (1, 1):
        return w
    kh, kw = w.shape[2:]
    out = np.zeros((*w.shape[:2], d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1), w.dtype)
    out[:, :, :: d[0], :: d[1]] = w
    return out


class ConvTranspose2dOp(Op):
    """y_full[n, c, h*S + i, w*S + j] += x[n, o, h, w] W[o, c, i, j]; y = y_full cropped by P, + b[c]."""

    name, symbol, inputs = "conv_transpose2d", "convT", ("x", "W", "b")
    derivatives = ("a convolution of the upstream gradient with W (the transposed op's adjoint): "
                   "dx[n,o,h,w] = sum over c, i, j of up[n, c, h*S+i-P, w*S+j-P] * W[o,c,i,j]",
                   "dW[o,c,i,j] = sum over n, h, w of x[n,o,h,w] * up[n, c, h*S+i-P, w*S+j-P]",
                   "db[c] = sum of up over n, h, w")

    def __init__(self, stride: tuple[int, int], padding: tuple[int, int], output_padding: tuple[int, int],
                 groups: int, dilation: tuple[int, int]):
        self.stride, self.padding, self.output_padding = stride, padding, output_padding
        self.groups, self.dilation = groups, dilation

    def forward(self, ctx, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        ctx.kernels = backends.kernels()
        dtype = np.result_type(x, w)
        x, w = x.astype(dtype, copy=False), _dilate(w.astype(dtype, copy=False), self.dilation)
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return ctx.kernels.conv_transpose2d_forward(x, w, None if b is None else b.astype(dtype, copy=False),
                                                    self.stride, self.padding, self.output_padding, self.groups)

    def backward(self, ctx, up: np.ndarray):
        x, w = ctx.saved_tensors
        needs = tuple(ctx.needs_input_grad) + (False,) * (3 - len(ctx.needs_input_grad))
        dx, dw, db = ctx.kernels.conv_transpose2d_backward(up, x, w, self.stride, self.padding, self.groups, *needs)
        if dw is not None and self.dilation != (1, 1):
            dw = np.ascontiguousarray(dw[:, :, :: self.dilation[0], :: self.dilation[1]])
        return (dx, dw, db) if ctx.has_bias else (dx, dw)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Size2 = 1,
                     padding: Size2 = 0, output_padding: Size2 = 0, groups: int = 1, dilation: Size2 = 1) -> Tensor:
    """PyTorch's F.conv_transpose2d: input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW), bias (C_out,).

    Output (N, C_out, OH, OW) with OH = (H - 1)*S - 2P + D*(kH - 1) + output_padding + 1.
    output_padding must be smaller than the stride (PyTorch also allows it below the
    dilation; this one does not)."""
    _check_nchw("conv_transpose2d", input)
    s, p = pair(stride, "stride"), pair(padding, "padding")
    op, d = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    if weight.data.ndim != 4:
        raise ValueError("conv_transpose2d: weight must be 4-D (in_channels, out_channels/groups, kH, kW), "
                         f"got shape {tuple(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv_transpose2d: groups must be a positive int, got {groups!r}")
    N, C, H, W = input.shape
    Ci, Cog, kh, kw = weight.shape
    if C != Ci:
        raise ValueError(f"conv_transpose2d: input of shape {tuple(input.shape)} has {C} channels but weight of "
                         f"shape {tuple(weight.shape)} expects {Ci} (its first axis is in_channels)")
    if C % groups:
        raise ValueError(f"conv_transpose2d: groups={groups} must divide the input channels ({C})")
    if bias is not None and tuple(bias.shape) != (Cog * groups,):
        raise ValueError(f"conv_transpose2d: bias must have shape ({Cog * groups},) for weight of shape "
                         f"{tuple(weight.shape)} and groups={groups}, got {tuple(bias.shape)}")
    try:
        transposed_output_hw((H, W), (kh, kw), s, p, op, d)
    except ValueError as e:
        raise ValueError(f"conv_transpose2d: input of shape {tuple(input.shape)}, weight of shape "
                         f"{tuple(weight.shape)}: {e}") from None
    parents = (input, weight) if bias is None else (input, weight, bias)
    return Tensor.apply(ConvTranspose2dOp(s, p, op, int(groups), d), *parents)
