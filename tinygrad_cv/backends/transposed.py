"""conv_transpose2d from a backend's own conv2d kernels, exactly.

A transposed convolution is the adjoint of a convolution with the same filter, stride and
padding: its forward *is* conv2d's input gradient, and its backward is conv2d's forward (for
the input) and conv2d's weight gradient with the roles of input and upstream gradient swapped:

    y  = conv2d_backward(dy := x, x := an output-shaped array, W).dx   (+ bias)
    dx = conv2d_forward(dy_out, W)              dW = conv2d_backward(dy := x, x := dy_out, W).dW

The weight layout needs no change: conv2d's (C_out, C_in/groups, kH, kW) read with the
transposed op's input as conv2d's output is PyTorch's (C_in, C_out/groups, kH, kW). Exact
because conv2d of an output of size (H - 1)*S - 2P + kH + output_padding with output_padding
< S gives back size H, so the shapes line up. The numba and cuda backends register these.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .shapes import IntPair, transposed_output_hw


def from_conv(conv2d_forward: Callable, conv2d_backward: Callable) -> tuple[Callable, Callable]:
    """(conv_transpose2d_forward, conv_transpose2d_backward) built on the given conv2d kernels."""

    def conv_transpose2d_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair,
                                 padding: IntPair, output_padding: IntPair, groups: int) -> np.ndarray:
        """y = conv2d's input gradient for upstream gradient x, plus b[c]."""
        hw = transposed_output_hw(x.shape[2:], weight.shape[2:], stride, padding, output_padding)
        # conv2d's input: its shape is all an input gradient reads (zeros are lazily mapped pages)
        out = np.zeros((x.shape[0], weight.shape[1] * groups, *hw), x.dtype)
        y, _, _ = conv2d_backward(x, out, weight.astype(x.dtype, copy=False), stride, padding, groups,
                                  True, False, False)
        if bias is not None:
            y += bias.astype(x.dtype, copy=False).reshape(1, -1, 1, 1)
        return y

    def conv_transpose2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntPair,
                                  padding: IntPair, groups: int, need_input: bool = True, need_weight: bool = True,
                                  need_bias: bool = True):
        """dx = conv2d(dy, W); dW = conv2d's weight gradient for upstream x and input dy; db = sum of dy."""
        dy = grad_out.astype(x.dtype, copy=False)
        w = weight.astype(x.dtype, copy=False)
        dx = conv2d_forward(dy, w, None, stride, padding, groups) if need_input else None
        dw = conv2d_backward(x, dy, w, stride, padding, groups, False, True, False)[1] if need_weight else None
        db = dy.sum(axis=(0, 2, 3)) if need_bias else None
        return dx, dw, db

    return conv_transpose2d_forward, conv_transpose2d_backward
