"""Max and average pooling on the CPU: one (n, c) plane per parallel iteration.

Output size per axis (W - F + 2P)/S + 1, floored. Max and average pooling share one forward
and one backward kernel (a flag picks the rule), which halves what a cold cache has to compile.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..shapes import IntPair, output_hw
from .common import JIT, c_array


@njit(**JIT)
def _pool(x, kh, kw, sh, sw, ph, pw, OH, OW, is_max):  # pragma: no cover - compiled
    """(y, argmax) for max pooling; (y, empty) for average pooling (padding counts as zeros)."""
    N, C, H, W = x.shape
    y = np.empty((N, C, OH, OW), x.dtype)
    arg = np.empty((N, C, OH, OW) if is_max else (0, 0, 0, 0), np.int64)
    scale = 1.0 / (kh * kw)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            h0 = oh * sh - ph
            for ow in range(OW):
                w0 = ow * sw - pw
                if is_max:
                    best = -np.inf
                    where = -1
                    for h in range(max(h0, 0), min(h0 + kh, H)):
                        for w in range(max(w0, 0), min(w0 + kw, W)):
                            v = x[n, c, h, w]
                            if v > best or v != v or where < 0:  # NaN wins, as in PyTorch
                                best = v
                                where = h * W + w
                    y[n, c, oh, ow] = best
                    arg[n, c, oh, ow] = where
                else:
                    s = 0.0
                    for h in range(max(h0, 0), min(h0 + kh, H)):
                        for w in range(max(w0, 0), min(w0 + kw, W)):
                            s += x[n, c, h, w]
                    y[n, c, oh, ow] = s * scale
    return y, arg


@njit(**JIT)
def _unpool(dy, arg, H, W, kh, kw, sh, sw, ph, pw, is_max):  # pragma: no cover - compiled
    """dx: max pooling routes each gradient to its window's winner (arg); average pooling
    spreads it evenly, 1/(kh*kw), over the window."""
    N, C, OH, OW = dy.shape
    dx = np.zeros((N, C, H * W), dy.dtype)
    scale = 1.0 / (kh * kw)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            for ow in range(OW):
                if is_max:
                    dx[n, c, arg[n, c, oh, ow]] += dy[n, c, oh, ow]
                else:
                    h0 = oh * sh - ph
                    w0 = ow * sw - pw
                    g = dy[n, c, oh, ow] * scale
                    for h in range(max(h0, 0), min(h0 + kh, H)):
                        for w in range(max(w0, 0), min(w0 + kw, W)):
                            dx[n, c, h * W + w] += g
    return dx.reshape(N, C, H, W)


_NO_ARG = np.empty((0, 0, 0, 0), np.int64)


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax): each output the largest value of its window (padding counts as -inf);
    argmax holds its flat index h*W + w within the (n, c) input plane, int64."""
    OH, OW = output_hw(x.shape[2:], kernel_size, stride, padding)
    return _pool(c_array(x), *kernel_size, *stride, *padding, OH, OW, True)


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient goes to the input that won its window (local gradient 1, others 0)."""
    return _unpool(c_array(grad_out), c_array(argmax.astype(np.int64, copy=False)), input_shape[2], input_shape[3],
                   *kernel_size, *stride, *padding, True)


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
    """y: the mean of each window, padding counted as zeros (count_include_pad=True)."""
    OH, OW = output_hw(x.shape[2:], kernel_size, stride, padding)
    return _pool(c_array(x), *kernel_size, *stride, *padding, OH, OW, False)[0]


def avg_pool2d_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient spread evenly, 1/(kh*kw), over its window."""
    return _unpool(c_array(grad_out), _NO_ARG, input_shape[2], input_shape[3], *kernel_size, *stride, *padding, False)
