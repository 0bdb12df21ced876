"""Max and average pooling on the CPU: serial nogil kernels over (n, c) planes, the
planes shared out over our threads (cpu/threads.py).

Output size per axis (W - F + 2P)/S + 1, floored. Each rule has its own small forward and
backward kernel, so a model that only max-pools (LeNet-5) compiles only the max kernels.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..shapes import IntPair, output_hw
from .common import SERIAL, c_array, wide_vectors
from .threads import parallel_for


@njit(**SERIAL)
def _max_pool_2x2(lo, hi, x, y, arg):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of the 2x2, stride-2, unpadded pool (LeNet's, most CNNs'), in two passes
    that each run along a whole row or plane, long enough for LLVM to vectorize (a loop over one
    output row, 14 or 5 wide in LeNet, is not): first the larger of each vertical pair, rows
    2*oh and 2*oh + 1 (a over c, b over d of the window a b / c d); then the larger of each
    horizontal pair of those. Ties go to the element first in the window's scan order a, b, c,
    d, and a NaN beats any number, so the winner is the one _max_pool's scan finds. LeNet's
    first pool (64x6x28x28): 386 -> 155 us on one thread; its second (64x16x10x10) 203 -> 121."""
    wide_vectors()
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
    Wc, P = 2 * OW, OH * OW                       # an odd last row or column is in no window
    base = np.empty(P, np.int64)                  # each window's top-left index h*W + w
    for oh in range(OH):
        for ow in range(OW):
            base[oh * OW + ow] = 2 * oh * W + 2 * ow
    vm = np.empty(OH * Wc, x.dtype)               # the larger of each vertical pair
    vr = np.empty(OH * Wc, np.int64)              # 0 if the top one, W if the bottom one
    xs, ys, args = x.reshape(N * C, H * W), y.reshape(N * C, P), arg.reshape(N * C, P)
    for t in range(lo, hi):
        src = xs[t]
        for oh in range(OH):
            top = src[2 * oh * W:2 * oh * W + Wc]
            bottom = src[2 * oh * W + W:2 * oh * W + W + Wc]
            m = vm[oh * Wc:oh * Wc + Wc]
            r = vr[oh * Wc:oh * Wc + Wc]
            for w in range(Wc):
                a, c = top[w], bottom[w]
                tc = (c > a) | ((c != c) & (a == a))
                m[w] = c if tc else a
                r[w] = W if tc else 0
        out, idx = ys[t], args[t]
        for q in range(P):
            left, right = vm[2 * q], vm[2 * q + 1]
            il, ir = vr[2 * q], vr[2 * q + 1] + 1
            tr = ((right > left) | ((right != right) & (left == left))
                  | (((right == left) | ((right != right) & (left != left))) & (ir < il)))
            out[q] = right if tr else left
            idx[q] = base[q] + (ir if tr else il)


@njit(**SERIAL)
def _max_pool(lo, hi, x, kh, kw, sh, sw, ph, pw, y, arg):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of (y, argmax): each window's largest value (NaN wins, as in PyTorch)
    and its flat index h*W + w; the first of equal values and the first NaN (np.argmax's rule). Branch-free selects: on random data an
    ``if v > best`` is a coin toss the CPU mispredicts half the time (LeNet's first pool took
    1.0 ms with branches). The 2x2, stride-2 unpadded pool has its own kernel above."""
    wide_vectors()
    N, C, H, W = x.shape
    OH, OW = y.shape[2], y.shape[3]
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
    wide_vectors()
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
    """Planes lo .. hi-1 of dx (N, C, H*W): zeroed here, then each gradient added to its window's
    winner. Zeroing each plane just before its scatter, on the thread that scatters, instead
    of np.zeros on the calling thread first: LeNet's first unpool 151 -> 66 us on one thread."""
    wide_vectors()
    N, C, OH, OW = dy.shape
    P, HW = OH * OW, dx.shape[2]
    dys, args, dxs = dy.reshape(N * C, P), arg.reshape(N * C, P), dx.reshape(N * C, HW)
    for t in range(lo, hi):
        g, a, d = dys[t], args[t], dxs[t]
        for i in range(HW):
            d[i] = 0
        for q in range(P):
            d[a[q]] += g[q]


@njit(**SERIAL)
def _avg_unpool(lo, hi, dy, kh, kw, sh, sw, ph, pw, dx):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of dx (zeroed): each gradient spread evenly, 1/(kh*kw), over its window."""
    wide_vectors()
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
    if tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0):
        parallel_for(_max_pool_2x2, N * C, x, y, arg, work=x.size + 3 * y.size)
    else:
        parallel_for(_max_pool, N * C, x, *kernel_size, *stride, *padding, y, arg, work=x.size + 3 * y.size)
    return y, arg


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient goes to the input that won its window (local gradient 1, others 0)."""
    dy = c_array(grad_out)
    N, C, H, W = input_shape
    dx = np.empty((N, C, H * W), dy.dtype)
    parallel_for(_max_unpool, N * C, dy, c_array(argmax, np.dtype(np.int64)), dx,
                 work=4 * dy.size + N * C * H * W)
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
