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

import numba
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


# -- direct convolution for stride 1 ------------------------------------------------------
# Small layers (LeNet's) lose to the data movement of im2col, so they run a direct
# convolution per sample. Each padded input channel is one flat row of Hp*Wp values;
# output position (oh, ow) sits at oh*Wp + ow of a "wide" output row, and tap (i, j)
# of the filter reads the input row shifted by i*Wp + j. The innermost loops are then
# long contiguous runs that vectorize; the Wp - OW columns past each output row are
# computed and dropped. Four output (or input) channels share each load.

_FAST = dict(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract", "nsz", "arcp"})


@njit(cache=True, nogil=True)
def _pad_rows(x, n, ph, pw, Hp, Wp, tail):  # pragma: no cover - compiled
    """Sample n of x, zero-padded, one flat row per channel (plus a zero tail for the last taps)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xp = np.zeros((C, Hp * Wp + tail), x.dtype)
    for c in range(C):
        for h in range(H):
            row = (h + ph) * Wp + pw
            for w in range(W):
                xp[c, row + w] = x[n, c, h, w]
    return xp


@njit(**_FAST)
def _direct_forward(x, w, b, ph, pw, OH, OW, groups):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    Hp, Wp = H + 2 * ph, W + 2 * pw
    L = (OH - 1) * Wp + OW
    y = np.empty((N, O, OH, OW), x.dtype)
    for n in prange(N):
        xp = _pad_rows(x, n, ph, pw, Hp, Wp, kw)
        acc = np.empty((4, L), x.dtype)
        a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
        for g in range(groups):
            end = (g + 1) * Og
            for o0 in range(g * Og, end, 4):
                o1, o2, o3 = min(o0 + 1, end - 1), min(o0 + 2, end - 1), min(o0 + 3, end - 1)
                for k in range(L):
                    a0[k] = b[o0]
                    a1[k] = b[o1]
                    a2[k] = b[o2]
                    a3[k] = b[o3]
                for c in range(Cg):
                    xr = xp[g * Cg + c]
                    for i in range(kh):
                        for j in range(kw):
                            w0, w1, w2, w3 = w[o0, c, i, j], w[o1, c, i, j], w[o2, c, i, j], w[o3, c, i, j]
                            xs = xr[i * Wp + j:i * Wp + j + L]
                            for k in range(L):
                                v = xs[k]
                                a0[k] += w0 * v
                                a1[k] += w1 * v
                                a2[k] += w2 * v
                                a3[k] += w3 * v
                for q in range(min(4, end - o0)):
                    for oh in range(OH):
                        for ow in range(OW):
                            y[n, o0 + q, oh, ow] = acc[q, oh * Wp + ow]
    return y


@njit(**_FAST)
def _direct_weight_grad(dy, x, w, ph, pw, groups, chunks):  # pragma: no cover - compiled
    """dW[o, c, i, j] = sum over n, oh, ow of dy[n, o, oh, ow] x_padded[n, c, oh + i, ow + j],
    as one partial sum per chunk of the batch (the caller adds them up)."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    OH, OW = dy.shape[2], dy.shape[3]
    Og = O // groups
    Hp, Wp = H + 2 * ph, W + 2 * pw
    L = (OH - 1) * Wp + OW
    dw = np.zeros((chunks, O, Cg, kh, kw), x.dtype)
    zero = np.zeros(1, x.dtype)[0]
    for t in prange(chunks):
        for n in range(t * N // chunks, (t + 1) * N // chunks):
            dyw = np.zeros((O, L), x.dtype)
            for o in range(O):
                for oh in range(OH):
                    for ow in range(OW):
                        dyw[o, oh * Wp + ow] = dy[n, o, oh, ow]
            xp = _pad_rows(x, n, ph, pw, Hp, Wp, kw)
            for g in range(groups):
                end = (g + 1) * Og
                for o0 in range(g * Og, end, 4):
                    o1, o2, o3 = min(o0 + 1, end - 1), min(o0 + 2, end - 1), min(o0 + 3, end - 1)
                    d0, d1, d2, d3 = dyw[o0], dyw[o1], dyw[o2], dyw[o3]
                    for c in range(Cg):
                        xr = xp[g * Cg + c]
                        for i in range(kh):
                            for j in range(kw):
                                xs = xr[i * Wp + j:i * Wp + j + L]
                                s0 = s1 = s2 = s3 = zero
                                for k in range(L):
                                    v = xs[k]
                                    s0 += d0[k] * v
                                    s1 += d1[k] * v
                                    s2 += d2[k] * v
                                    s3 += d3[k] * v
                                dw[t, o0, c, i, j] += s0
                                if o0 + 1 < end:
                                    dw[t, o1, c, i, j] += s1
                                if o0 + 2 < end:
                                    dw[t, o2, c, i, j] += s2
                                if o0 + 3 < end:
                                    dw[t, o3, c, i, j] += s3
    return dw


def _use_direct(x: np.ndarray, weight: np.ndarray, stride: IntPair, OH: int, OW: int) -> bool:
    """Direct loops for small stride-1 layers; BLAS wins once a layer has real work."""
    macs = x.shape[0] * weight.size * OH * OW
    return stride == (1, 1) and macs <= 64_000_000


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
    b = np.zeros(O, x.dtype) if bias is None else _c(bias.astype(x.dtype, copy=False))
    if _use_direct(x, weight, stride, OH, OW):
        return _direct_forward(_c(x), _c(weight.astype(x.dtype, copy=False)), b, padding[0], padding[1], OH, OW, groups)
    cols = _cols(x, (kh, kw), stride, padding, OH, OW)
    Y = np.empty((O, N * OH * OW), x.dtype)
    Og, K = O // groups, Cg * kh * kw
    w2 = _c(weight).reshape(O, K)
    for g in range(groups):
        np.matmul(w2[g * Og:(g + 1) * Og], cols[g * K:(g + 1) * K], out=Y[g * Og:(g + 1) * Og])
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
    if _use_direct(x, weight, stride, OH, OW) and padding[0] < kh and padding[1] < kw:
        dy = _c(grad_out.astype(x.dtype, copy=False))
        w = _c(weight.astype(x.dtype, copy=False))
        dx = dw = None
        if need_input:
            # dx is the "full" correlation of dy with the flipped filters, channels swapped
            # within each group: a stride-1 forward convolution with padding F - 1 - P.
            Og = O // groups
            wt = w.reshape(groups, Og, Cg, kh, kw)[..., ::-1, ::-1].transpose(0, 2, 1, 3, 4)
            wt = _c(wt.reshape(C, Og, kh, kw))
            dx = _direct_forward(dy, wt, np.zeros(C, x.dtype), kh - 1 - padding[0], kw - 1 - padding[1], H, W, groups)
        if need_weight:
            chunks = min(N, 2 * numba.get_num_threads())
            dw = _direct_weight_grad(dy, _c(x), w, padding[0], padding[1], groups, chunks).sum(axis=0)
        return dx, dw, (dy.sum(axis=(0, 2, 3)) if need_bias else None)
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


# -- pooling: one (n, c) plane per parallel iteration ---------------------------------------


@njit(**_JIT)
def _max_pool(x, kh, kw, sh, sw, ph, pw, OH, OW):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    y = np.empty((N, C, OH, OW), x.dtype)
    arg = np.empty((N, C, OH, OW), np.int64)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            h0 = oh * sh - ph
            for ow in range(OW):
                w0 = ow * sw - pw
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
    return y, arg


@njit(**_JIT)
def _max_unpool(dy, arg, H, W):  # pragma: no cover - compiled
    N, C, OH, OW = dy.shape
    dx = np.zeros((N, C, H * W), dy.dtype)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            for ow in range(OW):
                dx[n, c, arg[n, c, oh, ow]] += dy[n, c, oh, ow]
    return dx.reshape(N, C, H, W)


@njit(**_JIT)
def _avg_pool(x, kh, kw, sh, sw, ph, pw, OH, OW):  # pragma: no cover - compiled
    N, C, H, W = x.shape
    y = np.empty((N, C, OH, OW), x.dtype)
    scale = 1.0 / (kh * kw)
    for t in prange(N * C):
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
    return y


@njit(**_JIT)
def _avg_unpool(dy, H, W, kh, kw, sh, sw, ph, pw):  # pragma: no cover - compiled
    N, C, OH, OW = dy.shape
    dx = np.zeros((N, C, H, W), dy.dtype)
    scale = 1.0 / (kh * kw)
    for t in prange(N * C):
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
    return dx


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax): each output the largest value of its window (padding counts as -inf);
    argmax holds its flat index h*W + w within the (n, c) input plane, int64."""
    OH, OW = _out_hw(x.shape[2], x.shape[3], kernel_size, stride, padding)
    return _max_pool(_c(x), *kernel_size, *stride, *padding, OH, OW)


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient goes to the input that won its window (local gradient 1, others 0)."""
    return _max_unpool(_c(grad_out), _c(argmax), input_shape[2], input_shape[3])


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
    """y: the mean of each window, padding counted as zeros (count_include_pad=True)."""
    OH, OW = _out_hw(x.shape[2], x.shape[3], kernel_size, stride, padding)
    return _avg_pool(_c(x), *kernel_size, *stride, *padding, OH, OW)


def avg_pool2d_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient spread evenly, 1/(kh*kw), over its window."""
    return _avg_unpool(_c(grad_out), input_shape[2], input_shape[3], *kernel_size, *stride, *padding)
