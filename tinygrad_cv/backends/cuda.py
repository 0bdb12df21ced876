"""Conv and pool as numba.cuda kernels: NumPy arrays in, NumPy arrays out.

One GPU thread per output element; every backward kernel gathers (one thread per
gradient element sums what reaches it), so no atomics are needed and results are
deterministic. Written against the API that numba's built-in CUDA target, its
simulator (NUMBA_ENABLE_CUDASIM=1) and the numba-cuda package share. Same interface
as backends/reference.py.
"""
from __future__ import annotations

import math
import os

import numpy as np
from numba import cuda

from .shapes import IntPair, output_hw
_THREADS = 128


def ensure_available() -> None:
    """Raise a one-line RuntimeError unless a CUDA GPU or the simulator is usable."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return
    try:
        ok = cuda.is_available()
    except Exception:  # a broken driver install reports itself here
        ok = False
    if not ok:
        raise RuntimeError(
            "the cuda backend needs an NVIDIA GPU or NUMBA_ENABLE_CUDASIM=1 (the simulator, slow); "
            "use set_backend('numba') on this machine"
        )


@cuda.jit(device=True)
def _unravel(t, shape):  # pragma: no cover - device code
    """The (a, b, c, d) index of flat thread number t in a 4-D array of ``shape``."""
    d = t % shape[3]
    c = (t // shape[3]) % shape[2]
    b = (t // (shape[3] * shape[2])) % shape[1]
    a = t // (shape[3] * shape[2] * shape[1])
    return a, b, c, d


def _launch(kernel, total: int, *args) -> None:
    blocks = max(1, math.ceil(total / _THREADS))
    kernel[blocks, _THREADS](*args)


@cuda.jit
def _conv_fwd(x, w, b, y, sh, sw, ph, pw, groups):  # pragma: no cover - device code
    t = cuda.grid(1)
    N, O, OH, OW = y.shape
    if t >= N * O * OH * OW:
        return
    n, o, oh, ow = _unravel(t, y.shape)
    H, W = x.shape[2], x.shape[3]
    Cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    c0 = (o // (O // groups)) * Cg
    s = b[o]
    for c in range(Cg):
        for i in range(kh):
            h = oh * sh + i - ph
            if h < 0 or h >= H:
                continue
            for j in range(kw):
                v = ow * sw + j - pw
                if v >= 0 and v < W:
                    s += w[o, c, i, j] * x[n, c0 + c, h, v]
    y[n, o, oh, ow] = s


@cuda.jit
def _conv_dx(dy, w, dx, sh, sw, ph, pw, groups):  # pragma: no cover - device code
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t >= N * C * H * W:
        return
    n, c, h, v = _unravel(t, dx.shape)
    O, OH, OW = dy.shape[1], dy.shape[2], dy.shape[3]
    Cg, kh, kw = w.shape[1], w.shape[2], w.shape[3]
    Og = O // groups
    g = c // Cg
    s = 0.0
    for i in range(kh):
        a = h + ph - i  # = oh * sh
        if a < 0 or a % sh != 0 or a // sh >= OH:
            continue
        oh = a // sh
        for j in range(kw):
            e = v + pw - j
            if e < 0 or e % sw != 0 or e // sw >= OW:
                continue
            ow = e // sw
            for o in range(g * Og, (g + 1) * Og):
                s += dy[n, o, oh, ow] * w[o, c - g * Cg, i, j]
    dx[n, c, h, v] = s


@cuda.jit
def _conv_dw(dy, x, dw, sh, sw, ph, pw, groups):  # pragma: no cover - device code
    t = cuda.grid(1)
    O, Cg, kh, kw = dw.shape
    if t >= O * Cg * kh * kw:
        return
    o, c, i, j = _unravel(t, dw.shape)
    N, OH, OW = dy.shape[0], dy.shape[2], dy.shape[3]
    H, W = x.shape[2], x.shape[3]
    cx = (o // (O // groups)) * Cg + c
    s = 0.0
    for n in range(N):
        for oh in range(OH):
            h = oh * sh + i - ph
            if h < 0 or h >= H:
                continue
            for ow in range(OW):
                v = ow * sw + j - pw
                if v >= 0 and v < W:
                    s += dy[n, o, oh, ow] * x[n, cx, h, v]
    dw[o, c, i, j] = s


@cuda.jit
def _conv_db(dy, db):  # pragma: no cover - device code
    o = cuda.grid(1)
    N, O, OH, OW = dy.shape
    if o >= O:
        return
    s = 0.0
    for n in range(N):
        for oh in range(OH):
            for ow in range(OW):
                s += dy[n, o, oh, ow]
    db[o] = s


@cuda.jit
def _pool_fwd(x, y, arg, kh, kw, sh, sw, ph, pw, is_max):  # pragma: no cover - device code
    t = cuda.grid(1)
    N, C, OH, OW = y.shape
    if t >= N * C * OH * OW:
        return
    n, c, oh, ow = _unravel(t, y.shape)
    H, W = x.shape[2], x.shape[3]
    best = -math.inf
    where = -1
    s = 0.0
    for i in range(kh):
        h = oh * sh + i - ph
        if h < 0 or h >= H:
            continue
        for j in range(kw):
            v = ow * sw + j - pw
            if v < 0 or v >= W:
                continue
            val = x[n, c, h, v]
            s += val
            if val > best or (val != val and best == best) or where < 0:
                best = val
                where = h * W + v
    if is_max:
        y[n, c, oh, ow] = best
        arg[n, c, oh, ow] = where
    else:
        y[n, c, oh, ow] = s / (kh * kw)


@cuda.jit
def _pool_bwd(dy, arg, dx, kh, kw, sh, sw, ph, pw, is_max):  # pragma: no cover - device code
    t = cuda.grid(1)
    N, C, H, W = dx.shape
    if t >= N * C * H * W:
        return
    n, c, h, v = _unravel(t, dx.shape)
    OH, OW = dy.shape[2], dy.shape[3]
    s = 0.0
    for i in range(kh):
        a = h + ph - i
        if a < 0 or a % sh != 0 or a // sh >= OH:
            continue
        for j in range(kw):
            e = v + pw - j
            if e < 0 or e % sw != 0 or e // sw >= OW:
                continue
            oh, ow = a // sh, e // sw
            if not is_max:
                s += dy[n, c, oh, ow] / (kh * kw)
            elif arg[n, c, oh, ow] == h * W + v:
                s += dy[n, c, oh, ow]
    dx[n, c, h, v] = s


def _dev(a: np.ndarray):
    return cuda.to_device(np.ascontiguousarray(a))


def conv2d_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair, padding: IntPair, groups: int
) -> np.ndarray:
    """y[n, o, oh, ow] = b[o] + sum_{c, i, j} W[o, c, i, j] x_padded[n, c, oh*S + i, ow*S + j]."""
    N, C, H, W = x.shape
    O = weight.shape[0]
    OH, OW = output_hw((H, W), weight.shape[2:], stride, padding)
    b = np.zeros(O, x.dtype) if bias is None else bias.astype(x.dtype)
    y = cuda.device_array((N, O, OH, OW), x.dtype)
    _launch(_conv_fwd, y.size, _dev(x), _dev(weight.astype(x.dtype)), _dev(b), y, *stride, *padding, groups)
    return y.copy_to_host()


def conv2d_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    stride: IntPair,
    padding: IntPair,
    groups: int,
    need_input: bool = True,
    need_weight: bool = True,
    need_bias: bool = True,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(dx, dW, db), each element gathered by its own thread."""
    dy = _dev(grad_out.astype(x.dtype, copy=False))
    dx = dw = db = None
    if need_input:
        d = cuda.device_array(x.shape, x.dtype)
        _launch(_conv_dx, d.size, dy, _dev(weight.astype(x.dtype)), d, *stride, *padding, groups)
        dx = d.copy_to_host()
    if need_weight:
        d = cuda.device_array(weight.shape, x.dtype)
        _launch(_conv_dw, d.size, dy, _dev(x), d, *stride, *padding, groups)
        dw = d.copy_to_host()
    if need_bias:
        d = cuda.device_array(weight.shape[0], x.dtype)
        _launch(_conv_db, d.size, dy, d)
        db = d.copy_to_host()
    return dx, dw, db


def _pool(x: np.ndarray, k: IntPair, s: IntPair, p: IntPair, is_max: bool) -> tuple[np.ndarray, np.ndarray]:
    N, C, H, W = x.shape
    OH, OW = output_hw((H, W), k, s, p)
    y = cuda.device_array((N, C, OH, OW), x.dtype)
    arg = cuda.device_array((N, C, OH, OW), np.int64)
    _launch(_pool_fwd, y.size, _dev(x), y, arg, *k, *s, *p, is_max)
    return y.copy_to_host(), arg.copy_to_host()


def _unpool(dy: np.ndarray, arg: np.ndarray, shape, k: IntPair, s: IntPair, p: IntPair, is_max: bool) -> np.ndarray:
    dx = cuda.device_array(tuple(shape), dy.dtype)
    _launch(_pool_bwd, dx.size, _dev(dy), _dev(arg), dx, *k, *s, *p, is_max)
    return dx.copy_to_host()


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax): window maxima and the winners' flat h*W + w indices (int64)."""
    return _pool(x, kernel_size, stride, padding, True)


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each input collects the gradient of the windows it won."""
    return _unpool(grad_out, argmax, input_shape, kernel_size, stride, padding, True)


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
    """y: window means, padding counted as zeros."""
    return _pool(x, kernel_size, stride, padding, False)[0]


def avg_pool2d_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: 1/(kh*kw) of each covering window's gradient."""
    dummy = np.zeros((1, 1, 1, 1), np.int64)
    return _unpool(grad_out, dummy, input_shape, kernel_size, stride, padding, False)


# transposed convolution: the conv2d kernels above, roles swapped (backends/transposed.py);
# upsampling: backends/cuda_upsample.py, layer/instance/group norm: backends/cuda_rownorm.py
# (imported last: they use _launch, _dev and _unravel)
from .transposed import from_conv  # noqa: E402

conv_transpose2d_forward, conv_transpose2d_backward = from_conv(conv2d_forward, conv2d_backward)
from .cuda_rownorm import normalize_rows_backward, normalize_rows_forward  # noqa: E402,F401
from .cuda_upsample import interpolate2d_backward, interpolate2d_forward  # noqa: E402,F401
