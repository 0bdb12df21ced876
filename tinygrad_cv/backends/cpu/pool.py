"""Max and average pooling on the CPU: serial nogil kernels over (n, c) planes, the
planes shared out over our threads (cpu/threads.py).

Output size per axis (W - F + 2P)/S + 1, floored. Each rule has its own small forward and
backward kernel, so a model that only max-pools (LeNet-5) compiles only the max kernels.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..shapes import IntPair, output_hw
from .common import SERIAL, c_array
from .threads import parallel_for


@njit(**SERIAL)
def _max_pool_2x2(t, x, y, arg):  # pragma: no cover - compiled
    """Plane t of the 2x2, stride 2, unpadded pool (LeNet's, most CNNs'): four loads and three
    selects per output, no loops over the window."""
    C, W = x.shape[1], x.shape[3]
    n, c = t // C, t % C
    src, out, idx = x[n, c].reshape(-1), y[n, c].reshape(-1), arg[n, c].reshape(-1)
    OH, OW = y.shape[2], y.shape[3]
    for oh in range(OH):
        r0 = 2 * oh * W
        for ow in range(OW):
            k = r0 + 2 * ow
            a, b, cc, d = src[k], src[k + 1], src[k + W], src[k + W + 1]
            tb = (b > a) | ((b != b) & (a == a))
            m = b if tb else a
            i = k + 1 if tb else k
            tc = (cc > m) | ((cc != cc) & (m == m))
            m = cc if tc else m
            i = k + W if tc else i
            td = (d > m) | ((d != d) & (m == m))
            out[oh * OW + ow] = d if td else m
            idx[oh * OW + ow] = k + W + 1 if td else i


@njit(**SERIAL)
def _max_pool(lo, hi, x, kh, kw, sh, sw, ph, pw, y, arg):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of (y, argmax): each window's largest value (NaN wins, as in PyTorch)
    and its flat index h*W + w; the first of equal values and the first NaN (np.argmax's rule). Branch-free selects: on random data an
    ``if v > best`` is a coin toss the CPU mispredicts half the time (LeNet's first pool took
    1.0 ms with branches, 0.26 ms with the 2x2 path below)."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    if kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0:
        for t in range(lo, hi):
            _max_pool_2x2(t, x, y, arg)
        return
    for t in range(lo, hi):
        n = t // C
        c = t % C
        plane = x[n, c]
        for oh in range(OH):
            h0 = oh * sh - ph
            ha, hb = max(h0, 0), min(h0 + kh, H)
            for ow in range(OW):
                w0 = ow * sw - pw
                wa, wb = max(w0, 0), min(w0 + kw, W)
                best = plane[ha, wa]
                where = ha * W + wa
                for h in range(ha, hb):
                    for w in range(wa, wb):
                        v = plane[h, w]
                        take = (v > best) | ((v != v) & (best == best))
                        best = v if take else best
                        where = h * W + w if take else where
                y[n, c, oh, ow] = best
                arg[n, c, oh, ow] = where


@njit(**SERIAL)
def _avg_pool(lo, hi, x, kh, kw, sh, sw, ph, pw, y):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of y: the mean of each window, padding counted as zeros."""
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    scale = 1.0 / (kh * kw)
    for t in range(lo, hi):
        n = t // C
        c = t % C
        for oh in range(OH):
            h0 = oh * sh - ph
            for ow in range(OW):
                w0 = ow * sw - pw
                s = 0.0
                for h in range(max(h0, 0), min(h0 + kh, H)):
                    for w in range(max(w0, 0), min(w0 + kw, W)):
                        s += x[n, c, h, w]
                y[n, c, oh, ow] = s * scale


@njit(**SERIAL)
def _max_unpool(lo, hi, dy, arg, dx):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of dx (N, C, H*W, zeroed): each gradient routed to its window's winner."""
    N, C, OH, OW = dy.shape
    for t in range(lo, hi):
        n = t // C
        c = t % C
        for oh in range(OH):
            for ow in range(OW):
                dx[n, c, arg[n, c, oh, ow]] += dy[n, c, oh, ow]


@njit(**SERIAL)
def _avg_unpool(lo, hi, dy, kh, kw, sh, sw, ph, pw, dx):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of dx (zeroed): each gradient spread evenly, 1/(kh*kw), over its window."""
    N, C, OH, OW = dy.shape
    H, W = dx.shape[2], dx.shape[3]
    scale = 1.0 / (kh * kw)
    for t in range(lo, hi):
        n = t // C
        c = t % C
        for oh in range(OH):
            h0 = oh * sh - ph
            for ow in range(OW):
                w0 = ow * sw - pw
                g = dy[n, c, oh, ow] * scale
                for h in range(max(h0, 0), min(h0 + kh, H)):
                    for w in range(max(w0, 0), min(w0 + kw, W)):
                        dx[n, c, h, w] += g


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax): each output the largest value of its window (padding counts as -inf);
    argmax holds its flat index h*W + w within the (n, c) input plane, int64."""
    x = c_array(x)
    N, C = x.shape[:2]
    y = np.empty((N, C, *output_hw(x.shape[2:], kernel_size, stride, padding)), x.dtype)
    arg = np.empty(y.shape, np.int64)
    parallel_for(_max_pool, N * C, x, *kernel_size, *stride, *padding, y, arg, work=x.size + 3 * y.size)
    return y, arg


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient goes to the input that won its window (local gradient 1, others 0)."""
    dy = c_array(grad_out)
    N, C, H, W = input_shape
    dx = np.zeros((N, C, H * W), dy.dtype)
    parallel_for(_max_unpool, N * C, dy, c_array(argmax, np.dtype(np.int64)), dx, work=4 * dy.size)
    return dx.reshape(input_shape)


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
    """y: the mean of each window, padding counted as zeros (count_include_pad=True)."""
    x = c_array(x)
    N, C = x.shape[:2]
    y = np.empty((N, C, *output_hw(x.shape[2:], kernel_size, stride, padding)), x.dtype)
    parallel_for(_avg_pool, N * C, x, *kernel_size, *stride, *padding, y, work=x.size + y.size)
    return y


def avg_pool2d_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient spread evenly, 1/(kh*kw), over its window."""
    dy = c_array(grad_out)
    dx = np.zeros(tuple(input_shape), dy.dtype)
    parallel_for(_avg_unpool, dy.shape[0] * dy.shape[1], dy, *kernel_size, *stride, *padding, dx,
                 work=dy.size + dx.size)
    return dx
