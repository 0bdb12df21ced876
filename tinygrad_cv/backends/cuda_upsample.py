"""Upsampling (F.interpolate, 'nearest' and 'bilinear') as numba.cuda kernels.

Along each axis output o reads inputs i0[o], i1[o] with weights l0[o], l1[o]
(backends/resample.py). The forward is one thread per output (four weighted reads); the
backward gathers, one thread per input: input h is read by the outputs oh in one run
[lo[h], hi[h]) (resample.touching), each with weight l0[oh] where i0[oh] == h plus l1[oh]
where i1[oh] == h, so no atomics are needed and the sums are deterministic.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .cuda import _dev, _launch, _unravel
from .resample import taps, touching
from .shapes import IntPair


@cuda.jit
def _up_fwd(x, h0, h1, lh0, lh1, w0, w1, lw0, lw1, y):  # pragma: no cover - device code
    t = cuda.grid(1)
    if t >= y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3]:
        return
    n, c, oh, ow = _unravel(t, y.shape)
    a, b, u, v = h0[oh], h1[oh], w0[ow], w1[ow]
    y[n, c, oh, ow] = (lh0[oh] * (lw0[ow] * x[n, c, a, u] + lw1[ow] * x[n, c, a, v])
                       + lh1[oh] * (lw0[ow] * x[n, c, b, u] + lw1[ow] * x[n, c, b, v]))


@cuda.jit(device=True)
def _weight(i0, i1, l0, l1, o, i):  # pragma: no cover - device code
    """How much output o read of input i along one axis."""
    s = 0.0
    if i0[o] == i:
        s += l0[o]
    if i1[o] == i:
        s += l1[o]
    return s


@cuda.jit
def _up_bwd(dy, h0, h1, lh0, lh1, hlo, hhi, w0, w1, lw0, lw1, wlo, whi, dx):  # pragma: no cover - device code
    t = cuda.grid(1)
    if t >= dx.shape[0] * dx.shape[1] * dx.shape[2] * dx.shape[3]:
        return
    n, c, h, w = _unravel(t, dx.shape)
    s = 0.0
    for oh in range(hlo[h], hhi[h]):
        kh = _weight(h0, h1, lh0, lh1, oh, h)
        for ow in range(wlo[w], whi[w]):
            s += kh * _weight(w0, w1, lw0, lw1, ow, w) * dy[n, c, oh, ow]
    dx[n, c, h, w] = s


def _axes(in_hw, out_hw, mode, align_corners, scale_factor, dtype, ranges: bool):
    sf = scale_factor or (None, None)
    out = []
    for n_in, n_out, s in zip(in_hw, out_hw, sf):
        t = taps(n_in, n_out, mode, align_corners, s)
        out += [_dev(t[0]), _dev(t[1]), _dev(t[2].astype(dtype)), _dev(t[3].astype(dtype))]
        if ranges:
            out += [_dev(r) for r in touching(t, n_in)]
    return out


def interpolate2d_forward(x: np.ndarray, size: IntPair, mode: str, align_corners: bool,
                          scale_factor: tuple[float, float] | None) -> np.ndarray:
    """y: x resampled to ``size``, one thread per output."""
    y = cuda.device_array((*x.shape[:2], *size), x.dtype)
    _launch(_up_fwd, y.size, _dev(x), *_axes(x.shape[2:], size, mode, align_corners, scale_factor, x.dtype, False), y)
    return y.copy_to_host()


def interpolate2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], mode: str, align_corners: bool,
                           scale_factor: tuple[float, float] | None) -> np.ndarray:
    """dx: one thread per input gathers the gradients of the outputs that read it."""
    dx = cuda.device_array(tuple(input_shape), grad_out.dtype)
    axes = _axes(input_shape[2:], grad_out.shape[2:], mode, align_corners, scale_factor, grad_out.dtype, True)
    _launch(_up_bwd, dx.size, _dev(grad_out), *axes, dx)
    return dx.copy_to_host()
