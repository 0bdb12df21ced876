"""im2col's column matrix built from the channels-last input, for the GEMM route (cpu/gemm.py).

im2col (gemm.py) fills one row of cols[(c, i, j), (n, oh, ow)] at a time, copying, for every
sample and output row, OW values read with the stride: 8 at a time on a 16x16 map at stride 2,
so the loop overhead, not the copying, was its cost. Here the same matrix is written transposed,
one output position at a time from the input in (N, H, W, C) order,

    rows[(n, oh, ow), (c, i, j)] = x_padded[n, c, oh*S + i - P, ow*S + j - P]     rows = cols^T

so every tap (i, j) of a position reads Cg consecutive channels. ``rows.T`` is exactly im2col's
matrix (groups included: group g's columns are g*K .. (g+1)*K - 1 with K = Cg*kh*kw), so the
products do not change; row2im, the adjoint, takes the input gradient's rows dY^T @ W. Each
sample is turned channels last in a scratch of its own (and its gradient turned back) inside
the same kernel, while it is in cache. One thread, building the matrix: 32x64x16x16 * 3x3
stride 2 1.48 ms as im2col, 0.34 + 0.67 as a separate channels-last pass and im2row; 16x64x8x8
3x3 0.71 against 0.03 + 0.31; 16x128x4x4 0.57 against 0.03 + 0.13; with 8 channels (32x8x16x16)
0.49 against 0.85, slower. gemm.py picks it from Cg (ROWS_MIN_CHANNELS). The per-sample
scratch, two threads, caches flushed between calls as the products flush them in a training
step: matrix 1.0 -> 0.75 ms, input gradient 0.80 -> 0.67 ms against the separate passes.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .common import SERIAL, wide_vectors


@njit(**SERIAL)
def _im2row(lo, hi, x, kh, kw, sh, sw, ph, pw, OH, OW, rows):  # pragma: no cover - compiled
    """Samples lo .. hi-1 of rows[r, (c*kh + i)*kw + j] (r = (n*OH + oh)*OW + ow; 0 in the
    padding): each sample is first copied channels last into a scratch (H, W, C), which then
    stays in cache for the window copies."""
    wide_vectors()
    N, C, H, W = x.shape
    T = kh * kw
    xh = np.empty((H, W, C), x.dtype)
    for n in range(lo, hi):
        for h in range(H):
            dst = xh[h]
            for c in range(C):
                src = x[n, c, h]
                for w in range(W):
                    dst[w, c] = src[w]
        for p in range(OH * OW):
            oh, ow = p // OW, p % OW
            row = rows[n * OH * OW + p]
            for i in range(kh):
                h = oh * sh + i - ph
                for j in range(kw):
                    w = ow * sw + j - pw
                    dst = row[i * kw + j::T]                 # tap (i, j) of every channel
                    if 0 <= h < H and 0 <= w < W:
                        src = xh[h, w]
                        for c in range(C):
                            dst[c] = src[c]
                    else:
                        for c in range(C):
                            dst[c] = 0


@njit(**SERIAL)
def _row2im(lo, hi, drows, kh, kw, sh, sw, ph, pw, OH, OW, dx):  # pragma: no cover - compiled
    """Samples lo .. hi-1 of the adjoint of _im2row: dx[n, c, h, w] = the sum of every entry of
    drows that read x[n, c, h, w], summed channels last in a scratch (H, W, C) and then copied
    out to (C, H, W)."""
    wide_vectors()
    N, C, H, W = dx.shape
    T = kh * kw
    dxh = np.empty((H, W, C), dx.dtype)
    for n in range(lo, hi):
        for h in range(H):
            for w in range(W):
                cell = dxh[h, w]
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
                        src, dst = row[i * kw + j::T], dxh[h, w]
                        for c in range(C):
                            dst[c] += src[c]
        for h in range(H):
            src = dxh[h]
            for c in range(C):
                dst = dx[n, c, h]
                for w in range(W):
                    dst[w] = src[w, c]
