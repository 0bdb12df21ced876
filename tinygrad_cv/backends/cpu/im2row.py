"""im2col's column matrix built from the channels-last input, for the GEMM route (cpu/gemm.py).

im2col (gemm.py) fills one row of cols[(c, i, j), (n, oh, ow)] at a time, copying, for every
sample and output row, OW values read with the stride: 8 at a time on a 16x16 map at stride 2,
so the loop overhead, not the copying, was its cost. Here the same matrix is written transposed,
one output position at a time from the input in (N, H, W, C) order,

    rows[(n, oh, ow), (c, i, j)] = x_padded[n, c, oh*S + i - P, ow*S + j - P]     rows = cols^T

so every tap (i, j) of a position reads Cg consecutive channels. ``rows.T`` is exactly im2col's
matrix (groups included: group g's columns are g*K .. (g+1)*K - 1 with K = Cg*kh*kw), so the
products do not change; row2im, the adjoint, takes the input gradient's rows dY^T @ W. The
layout costs two passes more (x to (N, H, W, C), dx back) and pays where Cg is large. One
thread, building the matrix: 32x64x16x16 * 3x3 stride 2 1.48 ms as im2col, 0.34 + 0.67 as
to_nhwc + im2row; 16x64x8x8 3x3 0.71 against 0.03 + 0.31; 16x128x4x4 0.57 against 0.03 + 0.13; with
8 channels (32x8x16x16) 0.49 against 0.85, slower. gemm.py picks it from Cg (ROWS_MIN_CHANNELS).
"""
from __future__ import annotations

from numba import njit

from .common import SERIAL, wide_vectors


@njit(**SERIAL)
def _to_nhwc(lo, hi, x, xh):  # pragma: no cover - compiled
    """Rows lo .. hi-1 (t = n*H + h) of xh[n, h, w, c] = x[n, c, h, w]."""
    wide_vectors()
    N, C, H, W = x.shape
    for t in range(lo, hi):
        n, h = t // H, t % H
        dst = xh[n, h]
        for c in range(C):
            src = x[n, c, h]
            for w in range(W):
                dst[w, c] = src[w]


@njit(**SERIAL)
def _from_nhwc(lo, hi, xh, x):  # pragma: no cover - compiled
    """Rows lo .. hi-1 (t = n*H + h) of x[n, c, h, w] = xh[n, h, w, c]."""
    wide_vectors()
    N, C, H, W = x.shape
    for t in range(lo, hi):
        n, h = t // H, t % H
        src = xh[n, h]
        for c in range(C):
            dst = x[n, c, h]
            for w in range(W):
                dst[w] = src[w, c]


@njit(**SERIAL)
def _im2row(lo, hi, xh, kh, kw, sh, sw, ph, pw, OH, OW, rows):  # pragma: no cover - compiled
    """Rows lo .. hi-1 (r = (n*OH + oh)*OW + ow) of rows[r, (c*kh + i)*kw + j] (0 in the padding)."""
    wide_vectors()
    N, H, W, C = xh.shape
    T = kh * kw
    for r in range(lo, hi):
        n, oh, ow = r // (OH * OW), (r // OW) % OH, r % OW
        row = rows[r]
        for i in range(kh):
            h = oh * sh + i - ph
            for j in range(kw):
                w = ow * sw + j - pw
                dst = row[i * kw + j::T]                 # tap (i, j) of every channel
                if 0 <= h < H and 0 <= w < W:
                    src = xh[n, h, w]
                    for c in range(C):
                        dst[c] = src[c]
                else:
                    for c in range(C):
                        dst[c] = 0


@njit(**SERIAL)
def _row2im(lo, hi, drows, kh, kw, sh, sw, ph, pw, OH, OW, dxh):  # pragma: no cover - compiled
    """Samples lo .. hi-1 of the adjoint of _im2row: dxh[n, h, w, c] = the sum of every entry of
    drows that read x[n, c, h, w] (each sample zeroed here first)."""
    wide_vectors()
    N, H, W, C = dxh.shape
    T = kh * kw
    for n in range(lo, hi):
        whole = dxh[n]
        for h in range(H):
            for w in range(W):
                cell = whole[h, w]
                for c in range(C):
                    cell[c] = 0
        for oh in range(OH):
            for ow in range(OW):
                row = drows[(n * OH + oh) * OW + ow]
                for i in range(kh):
                    h = oh * sh + i - ph
                    if h < 0 or h >= H:
                        continue
                    for j in range(kw):
                        w = ow * sw + j - pw
                        if w < 0 or w >= W:
                            continue
                        src, dst = row[i * kw + j::T], whole[h, w]
                        for c in range(C):
                            dst[c] += src[c]
