"""Convolution as a matrix product: im2col / col2im in numba, the product in BLAS.

Wins where the arithmetic per input value is large: many channels on small maps (ResNet's
and VGG's deeper stages, strided layers). With K = C/groups * kh * kw taps per filter and
L = OH * OW output positions, OH = (H - kh + 2P)/S + 1 (and the same for OW):

    cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*S + i, ow*S + j]        (K, N*L)
    Y[o, (n, oh, ow)]            = sum_k W[o, k] * cols[k, (n, oh, ow)]       (O, N*L)
    dW = dY @ cols.T             dcols = W.T @ dY  -> col2im -> dx

From 16 input channels on, cols is built as its transpose from a channels-last copy of x and
dcols as dY^T @ W, which row2im sums back (cpu/im2row.py): same products, faster copies. Where
the filters also fit in L2 and are small against dcols (one group), dx skips dcols: cpu/phases.py
sums it straight from dY.

A 1x1 input map with a 1x1 output uses only the filters' centre tap: y = x @ W[:, :, P, P].T.
A 1x1 filter with stride 1 and no padding needs no im2col at all: each sample's (C, H*W)
plane already is its column matrix, so y[n] = W @ x[n] and dx[n] = W.T @ dy[n].
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import im2row, phases
from .common import SERIAL, buffer, valid_range, wide_vectors
from .threads import num_threads, parallel_for

# A product of at least this many flops is split over the threads (NumPy's BLAS runs on one: see
# threads.py). Measured on ResNet-18's products at CIFAR size, 0.6 ms each on one thread: 1.3-1.5x
# faster over two of our threads, each running BLAS on its share of the rows or columns.
_SPLIT_FLOPS = 8e6


def _mm_rows(lo, hi, a, b, out):
    np.matmul(a[lo:hi], b, out=out[lo:hi])


def _mm_cols(lo, hi, a, b, out):
    np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a @ b (2-D), shared over the threads by rows of a or columns of b when it is big
    enough to pay for the hand-off (BLAS releases the GIL, so the shares run at once)."""
    M, K = a.shape
    N = b.shape[1]
    if 2.0 * M * K * N < _SPLIT_FLOPS or num_threads() < 2:
        return np.matmul(a, b, out=out)
    if M >= N:
        parallel_for(_mm_rows, M, a, b, out)
    else:
        parallel_for(_mm_cols, N, a, b, out)
    return out


# The kernels below slice a row first and index the slice from 0: an index such as
# base + ow with ow in range(lo, hi) keeps numba's check for negative indices in the inner
# loop, which stops LLVM vectorizing it. One thread, 32x64x16x16 3x3 stride 2: im2col
# 1.60 -> 1.46 ms, col2im 2.04 -> 1.60; 16x64x8x8 3x3 (ResNet layer1): 0.79 -> 0.63, 0.92 -> 0.70.

@njit(**SERIAL)
def _im2col(lo, hi, x, kh, kw, sh, sw, ph, pw, OH, OW, cols):  # pragma: no cover - compiled
    """Rows lo .. hi-1 of cols[(c, i, j), n*L + oh*OW + ow] = x[n, c, oh*S + i - P, ow*S + j - P]
    (0 in the padding)."""
    wide_vectors()
    N, C, H, W = x.shape
    L = OH * OW
    for r in range(lo, hi):
        c = r // (kh * kw)
        i = (r // kw) % kh
        j = r % kw
        a, b = valid_range(j, pw, sw, W, OW)          # output columns that read a real input
        row = cols[r]
        for n in range(N):
            for oh in range(OH):
                dst = row[n * L + oh * OW:n * L + oh * OW + OW]
                h = oh * sh + i - ph
                if h < 0 or h >= H:
                    dst[:] = 0
                    continue
                for k in range(a):
                    dst[k] = 0
                src = x[n, c, h, a * sw + j - pw:(b - 1) * sw + j - pw + 1:sw]   # (empty if b <= a)
                inner = dst[a:b]
                for k in range(inner.size):
                    inner[k] = src[k]
                for k in range(b, OW):
                    dst[k] = 0


@njit(**SERIAL)
def _col2im(lo, hi, dcols, kh, kw, sh, sw, ph, pw, OH, OW, dx):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of the adjoint of _im2col: dx[n, c, h, w] = the sum of every column entry
    that read x[n, c, h, w]. Each plane is zeroed here, by the thread that sums into it, rather
    than by np.zeros on the calling thread first (one pass over dx fewer, and shared out)."""
    wide_vectors()
    N, C, H, W = dx.shape
    L = OH * OW
    for t in range(lo, hi):
        n = t // C
        c = t % C
        plane = dx[n, c]
        for h in range(H):
            r = plane[h]
            for w in range(W):
                r[w] = 0
        for i in range(kh):
            for j in range(kw):
                r = (c * kh + i) * kw + j
                a, b = valid_range(j, pw, sw, W, OW)
                if b <= a:
                    continue
                for oh in range(OH):
                    h = oh * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    src = dcols[r, n * L + oh * OW + a:n * L + oh * OW + b]
                    dst = dx[n, c, h, a * sw + j - pw:(b - 1) * sw + j - pw + 1:sw]
                    for k in range(src.size):
                        dst[k] += src[k]


@njit(**SERIAL)
def _rows_to_nchw(lo, hi, Y, b, yf):  # pragma: no cover - compiled
    """Planes lo .. hi-1 of (O, N*L) product -> (N, O, L) output, adding the bias."""
    wide_vectors()
    N, O, L = yf.shape
    for t in range(lo, hi):
        n = t // O
        o = t % O
        bo = b[o]
        src, dst = Y[o, n * L:n * L + L], yf[n, o]        # (sliced: see _im2col)
        for k in range(L):
            dst[k] = src[k] + bo


@njit(**SERIAL)
def _nchw_to_rows(lo, hi, d, Y, db):  # pragma: no cover - compiled
    """Rows lo .. hi-1: (N, O, L) gradient -> (O, N*L) rows, the layout of the product; db = row sums."""
    wide_vectors()
    N, O, L = d.shape
    for o in range(lo, hi):
        s = 0.0
        for n in range(N):
            for k in range(L):
                v = d[n, o, k]
                Y[o, n * L + k] = v
                s += v
        db[o] = s


@njit(**SERIAL)
def _center_taps(lo, hi, w, i, j, wc):  # pragma: no cover - compiled
    """Rows lo .. hi-1 of wc[o, c] = w[o, c, i, j]: one tap of every filter, made contiguous."""
    wide_vectors()
    for o in range(lo, hi):
        row = wc[o]
        for c in range(row.size):
            row[c] = w[o, c, i, j]


@njit(**SERIAL)
def _spread_center(lo, hi, g, i, j, dw):  # pragma: no cover - compiled
    """Filters lo .. hi-1 of dw: g[o, c] at tap (i, j), 0 at every other tap. Each filter is one
    run of C*kh*kw values, zeroed as a run and then given its centres while it is in cache
    (np.zeros and a scatter into it went over the whole array twice)."""
    wide_vectors()
    O, C, kh, kw = dw.shape
    T = kh * kw
    t = i * kw + j
    for o in range(lo, hi):
        run = dw[o].reshape(-1)
        for k in range(run.size):
            run[k] = 0
        for c in range(C):
            run[c * T + t] = g[o, c]


def center_taps(w: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    """W[:, :, ph, pw] as a C-contiguous (O, C) matrix, the only tap a single-position layer uses.
    Its taps lie kh*kw apart (9 for 3x3), so gathering them reads every cache line of W: ResNet-18's last
    stage, 512x512x3x3 (9.4 MB), 0.49 ms as NumPy's copy on one thread, and twice per step when
    the backward gathered them again instead of keeping the forward's."""
    wc = np.empty(w.shape[:2], w.dtype)
    parallel_for(_center_taps, w.shape[0], w, padding[0], padding[1], wc, work=w.size)
    return wc


# Column matrices up to this size are kept from the forward for the weight gradient (when the
# caller asks: cpu/__init__.py conv2d_forward_keep), instead of being rebuilt in backward.
KEEP_MAX_BYTES = 64 << 20


# From this many input channels on, the column matrix is built channels last (cpu/im2row.py),
# as its transpose: 32x64x16x16 * 3x3 stride 2 1.48 -> 1.01 ms on one thread, 16x128x4x4 3x3
# 0.57 -> 0.16; with 8 channels 0.49 -> 0.85, slower.
ROWS_MIN_CHANNELS = 16


def _cols(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], p: tuple[int, int], OH: int, OW: int,
          fresh: bool = False) -> np.ndarray:
    N, C, H, W = x.shape
    if C >= ROWS_MIN_CHANNELS:                     # the same matrix, built transposed
        shape = (N * OH * OW, C * k[0] * k[1])
        rows = np.empty(shape, x.dtype) if fresh else buffer("cols", shape, x.dtype)
        parallel_for(im2row._im2row, N, x, k[0], k[1], s[0], s[1], p[0], p[1], OH, OW, rows,
                     work=rows.size + x.size)
        return rows.T
    shape = (C * k[0] * k[1], N * OH * OW)
    cols = np.empty(shape, x.dtype) if fresh else buffer("cols", shape, x.dtype)
    parallel_for(_im2col, cols.shape[0], x, k[0], k[1], s[0], s[1], p[0], p[1], OH, OW, cols, work=cols.size)
    return cols


def is_pointwise(w_shape: tuple[int, ...], stride: tuple[int, int], padding: tuple[int, int], groups: int) -> bool:
    """A 1x1 filter, stride 1, no padding, one group: a plain matrix product per sample."""
    return tuple(w_shape[2:]) == (1, 1) and stride == (1, 1) and padding == (0, 0) and groups == 1


def is_single_position(x_shape: tuple[int, ...], w_shape: tuple[int, ...], padding: tuple[int, int], groups: int) -> bool:
    """A 1x1 input map with a 1x1 output (ResNet's last stage at CIFAR size): only the centre tap
    (ph, pw) of the filter ever touches a real input, so the layer is y = x @ W[:, :, ph, pw].T and
    im2col would multiply (kh*kw - 1)/(kh*kw) zeros."""
    return (tuple(x_shape[2:]) == (1, 1) and groups == 1 and padding[0] < w_shape[2] and padding[1] < w_shape[3]
            and 1 + 2 * padding[0] - w_shape[2] < 1 and 1 + 2 * padding[1] - w_shape[3] < 1)


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: tuple[int, int], padding: tuple[int, int],
            groups: int, out_hw: tuple[int, int], keep: dict | None = None) -> np.ndarray:
    """y = W @ cols + b, reshaped to (N, O, OH, OW) (x, w, b C-contiguous, one dtype). With a
    dict ``keep``, the column matrix (if built and not over KEEP_MAX_BYTES) goes in keep["cols"]
    for backward's weight gradient, and a single-position layer's centre taps in keep["center"]."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    OH, OW = out_hw
    if is_single_position(x.shape, w.shape, padding, groups):
        wc = center_taps(w, padding)
        if keep is not None:
            keep["center"] = wc
        y = x.reshape(N, C) @ wc.T
        if b is not None:
            y += b
        return y.reshape(N, O, 1, 1)
    if is_pointwise(w.shape, stride, padding, groups):
        y = np.matmul(w.reshape(O, C), x.reshape(N, C, H * W)).reshape(N, O, H, W)
        if b is not None:
            y += b.reshape(1, O, 1, 1)
        return y
    big = Cg * groups * kh * kw * N * OH * OW * x.itemsize > KEEP_MAX_BYTES
    cols = _cols(x, (kh, kw), stride, padding, OH, OW, fresh=keep is not None and not big)
    if keep is not None and not big:
        keep["cols"] = cols
    Y = buffer("rows", (O, N * OH * OW), x.dtype)
    Og, K = O // groups, Cg * kh * kw
    w2 = w.reshape(O, K)
    for g in range(groups):
        matmul(w2[g * Og:(g + 1) * Og], cols[g * K:(g + 1) * K], Y[g * Og:(g + 1) * Og])
    y = np.empty((N, O, OH, OW), x.dtype)
    parallel_for(_rows_to_nchw, N * O, Y, np.zeros(O, x.dtype) if b is None else b, y.reshape(N, O, OH * OW),
                 work=2 * y.size)
    return y


def backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int],
             groups: int, need_input: bool, need_weight: bool, cols: np.ndarray | None = None,
             center: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """(dx, dW, db): dW = dY @ cols.T, dx = col2im(W.T @ dY), db = sum of dY over batch and positions.
    ``cols``: the forward's column matrix of x, if it kept one (else it is built again); ``center``:
    a single-position layer's centre taps, likewise."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    OH, OW = dy.shape[2:]
    dx = dw = None
    if is_single_position(x.shape, w.shape, padding, groups):
        dy2, x2 = dy.reshape(N, O), x.reshape(N, C)
        if need_weight:
            dw = np.empty(w.shape, x.dtype)
            parallel_for(_spread_center, O, dy2.T @ x2, padding[0], padding[1], dw, work=dw.size)
        if need_input:
            wc = center if center is not None else center_taps(w, padding)
            dx = (dy2 @ wc).reshape(x.shape)
        return dx, dw, dy2.sum(axis=0)
    if is_pointwise(w.shape, stride, padding, groups):
        dy3, x3, w2 = dy.reshape(N, O, H * W), x.reshape(N, C, H * W), w.reshape(O, C)
        if need_weight:
            dw = np.tensordot(dy3, x3, axes=([0, 2], [0, 2])).reshape(w.shape)
        if need_input:
            dx = np.matmul(w2.T, dy3).reshape(x.shape)
        return dx, dw, dy3.sum(axis=(0, 2))
    dY, db = buffer("dY", (O, N * OH * OW), x.dtype), np.empty(O, x.dtype)
    parallel_for(_nchw_to_rows, O, dy.reshape(N, O, OH * OW), dY, db, work=2 * dy.size)
    Og, K = O // groups, Cg * kh * kw
    if need_weight:
        if cols is None:
            cols = _cols(x, (kh, kw), stride, padding, OH, OW)
        dw = np.empty((O, K), x.dtype)
        for g in range(groups):
            matmul(dY[g * Og:(g + 1) * Og], cols[g * K:(g + 1) * K].T, dw[g * Og:(g + 1) * Og])
        dw = dw.reshape(w.shape)
    if need_input and C >= ROWS_MIN_CHANNELS and phases.wins(w.shape, N * OH * OW, x.itemsize, groups):
        dx = phases.input_grad(dY, w, x.shape, (OH, OW), stride, padding)    # no column matrix (cpu/phases.py)
    elif need_input and C >= ROWS_MIN_CHANNELS:    # dcols transposed, then row2im (cpu/im2row.py)
        w2 = w.reshape(O, K)
        drows = buffer("dcols", (N * OH * OW, C * kh * kw), x.dtype)
        for g in range(groups):
            matmul(dY[g * Og:(g + 1) * Og].T, w2[g * Og:(g + 1) * Og], drows[:, g * K:(g + 1) * K])
        dx = np.empty(x.shape, x.dtype)
        parallel_for(im2row._row2im, N, drows, kh, kw, stride[0], stride[1], padding[0], padding[1], OH, OW, dx,
                     work=drows.size + 2 * dx.size)
    elif need_input:
        w2 = w.reshape(O, K)
        dcols = buffer("dcols", (C * kh * kw, N * OH * OW), x.dtype)
        for g in range(groups):
            matmul(w2[g * Og:(g + 1) * Og].T, dY[g * Og:(g + 1) * Og], dcols[g * K:(g + 1) * K])
        dx = np.empty(x.shape, x.dtype)
        parallel_for(_col2im, N * C, dcols, kh, kw, stride[0], stride[1], padding[0], padding[1], OH, OW, dx,
                     work=2 * dcols.size + dx.size)
    return dx, dw, db
