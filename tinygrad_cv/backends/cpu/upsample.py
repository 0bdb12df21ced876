"""Upsampling (F.interpolate, 'nearest' and 'bilinear') on the CPU: serial nogil numba kernels
over (n, c) planes, the planes shared out over our threads (cpu/threads.py).

Along each axis output o reads inputs i0[o], i1[o] with weights l0[o], l1[o]
(backends/resample.py computes these tables once per call, for both modes), so

    y[oh, ow] = lh0 (lw0 x[h0, w0] + lw1 x[h0, w1]) + lh1 (lw0 x[h1, w0] + lw1 x[h1, w1])

and the backward adds each output's gradient back into the same four inputs with the same
weights. One thread owns a whole plane, so the scatter needs no atomics.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..resample import taps
from ..shapes import IntPair
from .common import SERIAL, c_array, wide_vectors
from .threads import parallel_for


@njit(**SERIAL)
def _resample(lo, hi, x, h0, h1, lh0, lh1, w0, w1, lw0, lw1, y):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of y: four weighted reads per output."""
    wide_vectors()
    C = x.shape[1]
    OH, OW = y.shape[2], y.shape[3]
    for t in range(lo, hi):
        n, c = t // C, t % C
        src, out = x[n, c], y[n, c]
        for oh in range(OH):
            a, b, ka, kb = h0[oh], h1[oh], lh0[oh], lh1[oh]
            for ow in range(OW):
                u, v, ku, kv = w0[ow], w1[ow], lw0[ow], lw1[ow]
                out[oh, ow] = ka * (ku * src[a, u] + kv * src[a, v]) + kb * (ku * src[b, u] + kv * src[b, v])


@njit(**SERIAL)
def _resample_back(lo, hi, dy, h0, h1, lh0, lh1, w0, w1, lw0, lw1, dx):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of dx (zeroed): each output's gradient back into the four inputs it read."""
    wide_vectors()
    C = dy.shape[1]
    OH, OW = dy.shape[2], dy.shape[3]
    for t in range(lo, hi):
        n, c = t // C, t % C
        g, d = dy[n, c], dx[n, c]
        for oh in range(OH):
            a, b, ka, kb = h0[oh], h1[oh], lh0[oh], lh1[oh]
            for ow in range(OW):
                u, v, ku, kv = w0[ow], w1[ow], lw0[ow], lw1[ow]
                e = g[oh, ow]
                d[a, u] += ka * ku * e
                d[a, v] += ka * kv * e
                d[b, u] += kb * ku * e
                d[b, v] += kb * kv * e


def _tables(in_hw, out_hw, mode, align_corners, scale_factor, dtype):
    sf = scale_factor or (None, None)
    out = []
    for n_in, n_out, s in zip(in_hw, out_hw, sf):
        i0, i1, l0, l1 = taps(n_in, n_out, mode, align_corners, s)
        out += [i0, i1, l0.astype(dtype), l1.astype(dtype)]
    return out


def interpolate2d_forward(x: np.ndarray, size: IntPair, mode: str, align_corners: bool,
                          scale_factor: tuple[float, float] | None) -> np.ndarray:
    """y: x resampled to ``size`` = (OH, OW), four weighted reads per output."""
    x = c_array(x)
    N, C = x.shape[:2]
    y = np.empty((N, C, *size), x.dtype)
    parallel_for(_resample, N * C, x, *_tables(x.shape[2:], size, mode, align_corners, scale_factor, x.dtype), y,
                 work=x.size + 4 * y.size)
    return y


def interpolate2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], mode: str, align_corners: bool,
                           scale_factor: tuple[float, float] | None) -> np.ndarray:
    """dx: each output's gradient added back into the inputs it read, with the same weights."""
    dy = c_array(grad_out)
    dx = np.zeros(tuple(input_shape), dy.dtype)
    tables = _tables(input_shape[2:], dy.shape[2:], mode, align_corners, scale_factor, dy.dtype)
    parallel_for(_resample_back, dy.shape[0] * dy.shape[1], dy, *tables, dx, work=4 * dy.size + dx.size)
    return dx
