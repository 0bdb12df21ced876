"""Conv and pool on the CPU: numba ``@njit(parallel=True, cache=True)`` kernels.

Same interface as backends/reference.py (read that first: it is the same math
written for people). Convolution is im2col + one matrix product per group:

    cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*S + i, ow*S + j]
    y[n, o, oh, ow]              = sum_k W[o, k] * cols[k, (n, oh, ow)]  + b[o]
    dW = dY @ cols.T             dcols = W.T @ dY  -> col2im -> dx

The numba kernels move data (im2col, col2im, the (N, O) <-> (O, N) transposes,
pooling); the products run in NumPy's BLAS, which beats any loop we can write in
numba. Putting the batch in the columns makes one large product per group
instead of N small ones. Kernels compile on first call, once per dtype and
rank (never per shape), and are cached on disk.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

IntPair = tuple[int, int]

_JIT = dict(parallel=True, cache=True, nogil=True)

# A reused scratch buffer for the column matrix: allocating tens of MB per call costs
# a page fault per 4 KiB touched, as much as the im2col itself on the big layers.
_scratch: dict[str, np.ndarray] = {}


def _buffer(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    size = int(np.prod(shape))
    key = name + np.dtype(dtype).str
    buf = _scratch.get(key)
    if buf is None or buf.size < size:
        buf = _scratch[key] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


@njit(inline="always")
def _valid_range(j: int, pad: int, stride: int, size: int, out_size: int) -> tuple[int, int]:
    """Output positions o with 0 <= o*stride + j - pad < size, as [lo, hi)."""
    lo = max(0, (pad - j + stride - 1) // stride)
    hi = min(out_size, (size - 1 + pad - j) // stride + 1)
    return lo, max(lo, hi)


@njit(**_JIT)
def _im2col(x, kh, kw, sh, sw, ph, pw, OH, OW, cols):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    L = OH * OW
    for r in prange(C * kh * kw):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        lo, hi = _valid_range(j, pw, sw, W, OW)
        for n in range(N):
            for oh in range(OH):
                h = oh * sh + i - ph
                base = n * L + oh * OW
                if h < 0 or h >= H:
                    for ow in range(OW):
                        cols[r, base + ow] = 0
                    continue
                for ow in range(lo):
                    cols[r, base + ow] = 0
                for ow in range(lo, hi):
                    cols[r, base + ow] = x[n, c, h, ow * sw + j - pw]
                for ow in range(hi, OW):
                    cols[r, base + ow] = 0


@njit(**_JIT)
def _col2im(dcols, N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW):  # pragma: no cover - compiled
    dx = np.zeros((N, C, H, W), dcols.dtype)
    L = OH * OW
    for t in prange(N * C):
        n = t // C
        c = t % C
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                lo, hi = _valid_range(j, pw, sw, W, OW)
                for oh in range(OH):
                    h = oh * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    base = n * L + oh * OW
                    for ow in range(lo, hi):
                        dx[n, c, h, ow * sw + j - pw] += dcols[r, base + ow]
    return dx


@njit(**_JIT)
def _rows_to_nchw(Y, b, N, OH, OW):  # pragma: no cover - compiled
    """(O, N*L) product -> (N, O, OH, OW) output, adding the bias."""
    O = Y.shape[0]
    L = OH * OW
    y = np.empty((N, O, OH, OW), Y.dtype)
    yf = y.reshape(N, O, L)
    for t in prange(N * O):
        n = t // O
        o = t % O
        bo = b[o]
        for k in range(L):
            yf[n, o, k] = Y[o, n * L + k] + bo
    return y


@njit(**_JIT)
def _nchw_to_rows(dy):  # pragma: no cover - compiled
    """(N, O, OH, OW) gradient -> (O, N*L) rows, the layout of the product."""
    N, O, OH, OW = dy.shape
    L = OH * OW
    d = dy.reshape(N, O, L)
    Y = np.empty((O, N * L), dy.dtype)
    for t in prange(N * O):
        n = t // O
        o = t % O
        for k in range(L):
            Y[o, n * L + k] = d[n, o, k]
    return Y


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


def _out_hw(H: int, W: int, k: IntPair, s: IntPair, p: IntPair) -> IntPair:
    return (H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1


def _cols(x: np.ndarray, k: IntPair, s: IntPair, p: IntPair, OH: int, OW: int) -> np.ndarray:
    N, C = x.shape[:2]
    cols = _buffer("cols", (C * k[0] * k[1], N * OH * OW), x.dtype)
    _im2col(_c(x), k[0], k[1], s[0], s[1], p[0], p[1], OH, OW, cols)
    return cols


def conv2d_forward(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: IntPair, padding: IntPair, groups: int
) -> np.ndarray:
    """y[n, o] = b[o] + sum over the group's channels c and taps (i, j) of W[o, c, i, j] x[n, c, oh*S+i-P, ow*S+j-P]."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    OH, OW = _out_hw(H, W, (kh, kw), stride, padding)
    cols = _cols(x, (kh, kw), stride, padding, OH, OW)
    Y = np.empty((O, N * OH * OW), x.dtype)
    Og, K = O // groups, Cg * kh * kw
    w2 = _c(weight).reshape(O, K)
    for g in range(groups):
        np.matmul(w2[g * Og:(g + 1) * Og], cols[g * K:(g + 1) * K], out=Y[g * Og:(g + 1) * Og])
    b = np.zeros(O, x.dtype) if bias is None else _c(bias.astype(x.dtype, copy=False))
    return _rows_to_nchw(Y, b, N, OH, OW)


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
    """(dx, dW, db): dW = dY @ cols.T, db = sum of dY over batch and positions, dx = col2im(W.T @ dY)."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    OH, OW = grad_out.shape[2:]
    dY = _nchw_to_rows(_c(grad_out.astype(x.dtype, copy=False)))
    Og, K = O // groups, Cg * kh * kw
    dx = dw = db = None
    if need_bias:
        db = dY.sum(axis=1)
    if need_weight:
        cols = _cols(x, (kh, kw), stride, padding, OH, OW)
        dw = np.empty((O, K), x.dtype)
        for g in range(groups):
            np.matmul(dY[g * Og:(g + 1) * Og], cols[g * K:(g + 1) * K].T, out=dw[g * Og:(g + 1) * Og])
        dw = dw.reshape(weight.shape)
    if need_input:
        w2 = _c(weight).reshape(O, K)
        dcols = _buffer("dcols", (C * kh * kw, N * OH * OW), x.dtype)
        for g in range(groups):
            np.matmul(w2[g * Og:(g + 1) * Og].T, dY[g * Og:(g + 1) * Og], out=dcols[g * K:(g + 1) * K])
        dx = _col2im(dcols, N, C, H, W, kh, kw, stride[0], stride[1], padding[0], padding[1], OH, OW)
    return dx, dw, db
