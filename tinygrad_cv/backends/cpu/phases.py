"""The GEMM route's input gradient without a column matrix: dx one phase of the stride at a time.

The chain rule for a convolution sends each output gradient back along the taps that made it:

    dx[n, c, h, w] = sum over o and taps (i, j) of dy[n, o, oh, ow] * W[o, c, i, j],
                     over the (oh, ow) with oh*S + i - P = h and ow*S + j - P = w.

With stride S, input row h = S*h' + a (a < S, the row's phase) is reached only through the
taps i with a + P - i divisible by S, from output row oh = h' + (a + P - i)/S; columns alike.
So each phase (a, b) of dx is a stride-1 correlation of dy with a subset of the taps: at
stride 2 a 3x3 filter's 9 taps split 1 + 2 + 2 + 4 over the four phases; at stride 1 there is
one phase with all of them:

    dx[n, c, S*h' + a, S*w' + b] = sum over (i, j) in taps(a, b) and o of
                                   dy[n, o, h' + d_i, w' + d_j] * W[o, c, i, j],   d_i = (a + P - i)/S

over the taps whose output row h' + d_i and column w' + d_j exist. Near the borders fewer taps
do, so the positions of a phase are grouped by the taps that reach them (its inner rows and
columns, and each border row or column): within a group no sum checks a bound, and dy needs
no zero-padded copy. A tile (microkernel.gather_tile) sums GQ positions of one group x cb
input channels in vector registers over the group's (tap, o) pairs, reading dy through a
table of the positions' offsets and the filters from a copy of W turned to (i, j, o, c), so
that cb channels are one vector run. It writes its sums channels last; one pass turns them
to (N, C, H, W).

It replaces two steps of cpu/gemm.py: the product dY^T @ W into a matrix of N*OH*OW x C*kh*kw
values (4.7 MB on the benchmark's 32x64x16x16 * 128 3x3 stride-2 row) and row2im's sum over it.
It wins on layers with many positions per filter whose filters stay in L2: see wins().
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from numba import njit

from .common import SERIAL, buffer, wide_vectors
from .microkernel import GQ, gather_channels, gather_tile
from .threads import parallel_for

# It saves writing and reading the column matrix of the input gradient (positions x C*kh*kw
# values, positions = N*OH*OW) and costs a turned copy of the filters (O x C*kh*kw), which each
# tile then reads once: so it is used where the matrix is at least MIN_RATIO times the filters
# and the filters stay in L2 (FIT_BYTES). Two threads, a layer's forward + backward against
# the same layer on BLAS + row2im in the same process, calls alternating, median ratio of pairs:
# 32x64x16x16 * 128 3x3 stride 2 (positions 16x the filters', 288 KiB) 0.95-0.98; 16x64x8x8 *
# 64 3x3 (16x, 144 KiB) 0.93; 16x64x8x8 * 128 3x3 stride 2 (2x, 288 KiB) 0.98; 16x128x4x4 * 128
# 3x3 (2x, 576 KiB) 0.99; 16x128x4x4 * 256 3x3 stride 2 (0.25x, 1.1 MiB) 1.16; 16x256x4x4 *
# 512 1x1 stride 2 (0.125x, 512 KiB) 1.50; 16x256x2x2 * 256 3x3 (0.25x, 2.3 MiB) 1.28.
MIN_RATIO = 4
FIT_BYTES = 640 << 10


def wins(w_shape: tuple[int, ...], positions: int, itemsize: int, groups: int) -> bool:
    """Whether this route computes the input gradient of a layer with these filters and
    ``positions`` = N*OH*OW output positions."""
    O, C, kh, kw = w_shape
    return groups == 1 and positions >= MIN_RATIO * O and O * C * kh * kw * itemsize <= FIT_BYTES


class _Plan(NamedTuple):
    """The offset tables of one layer shape (weights and gradients come per call)."""
    cp: int                           # channels rounded up to whole tiles (cb)
    apos: np.ndarray                  # per position (each group's padded to GQ): its offset in a row of dY
    cpos: np.ndarray                  # ... and the offset of its channels-last row of dx (or the spare row)
    aoff: np.ndarray                  # per (group, tap, o): the offset in dY from a position's own
    boff: np.ndarray                  # ... and the offset of the (i, j, o) run of the turned filters
    tiles: np.ndarray                 # per tile: its first position, its group's first (tap, o), their count


def _row_groups(size: int, out: int, k: int, s: int, p: int) -> list[tuple[int, list[tuple[np.ndarray, list]]]]:
    """Per phase a of one axis: its inputs h' (h = s*h' + a) grouped by the taps that reach them,
    [(h's, [(i, d)])]: tap i reaches h' from output oh = h' + d, d = (a + p - i)/s, when 0 <= oh < out."""
    phases = []
    for a in range(s):
        taps = [(i, (a + p - i) // s) for i in range(k) if (a + p - i) % s == 0]
        groups: dict[tuple, list[int]] = {}
        for hp in range(len(range(a, size, s))):
            groups.setdefault(tuple((i, d) for i, d in taps if 0 <= hp + d < out), []).append(hp)
        phases.append((a, [(np.array(hs), list(valid)) for valid, hs in groups.items()]))
    return phases


@functools.lru_cache(maxsize=16)
def _plan(N: int, C: int, H: int, W: int, O: int, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int,
          OH: int, OW: int, cb: int) -> _Plan:
    """Positions in groups that share their taps (a phase's inner rows and columns, and each
    border row or column, which reaches fewer), so that no sum needs a bound check or a padded dy."""
    cp = -(-C // cb) * cb
    L = OH * OW
    o = np.arange(O)
    apos, cpos, aoff, boff, tiles = [], [], [], [], []
    q = t = 0
    for a, rows in _row_groups(H, OH, kh, sh, ph):
        for b, cols in _row_groups(W, OW, kw, sw, pw):
            for hs, ti in rows:
                for ws, tj in cols:
                    n, h, w = (v.reshape(-1) for v in np.meshgrid(np.arange(N), hs, ws, indexing="ij"))
                    nq = -(-n.size // GQ) * GQ
                    at = np.arange(nq) % n.size
                    apos.append((n * L + h * OW + w)[at])
                    out = ((n * H + h * sh + a) * W + w * sw + b)[at] * cp
                    out[n.size:] = N * H * W * cp            # the tail of the group's last tile: a spare row
                    cpos.append(out)
                    pairs = [(i, di, j, dj) for i, di in ti for j, dj in tj]
                    aoff += [o * N * L + di * OW + dj for _, di, _, dj in pairs]
                    boff += [((i * kw + j) * O + o) * cp for i, _, j, _ in pairs]
                    count = nq // GQ
                    tiles += [(r / count, q + r * GQ, t, len(pairs) * O) for r in range(count)]
                    q, t = q + nq, t + len(pairs) * O
    tiles.sort(key=lambda tile: tile[0])   # groups interleaved, so any run of tiles is a fair share

    def flat(parts):
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    return _Plan(cp, flat(apos), flat(cpos), flat(aoff), flat(boff),
                 np.array([tile[1:] for tile in tiles], np.int64).reshape(-1, 3))


@njit(**SERIAL)
def _turn_filters(lo, hi, w, wt):  # pragma: no cover - compiled
    """Filters lo .. hi-1 of wt[i, j, o, c] = W[o, c, i, j] (0 for the channels past C)."""
    wide_vectors()
    O, C, kh, kw = w.shape
    cp = wt.shape[3]
    for o in range(lo, hi):
        src = w[o]
        for c in range(C):
            taps = src[c]
            for i in range(kh):
                for j in range(kw):
                    wt[i, j, o, c] = taps[i, j]
        for i in range(kh):
            for j in range(kw):
                run = wt[i, j, o]
                for c in range(C, cp):
                    run[c] = 0


@njit(**SERIAL)
def _sum_tiles(lo, hi, dY, apos, cpos, aoff, wt, boff, tiles, cb, dxh):  # pragma: no cover - compiled
    """Tiles lo .. hi-1: GQ positions x cb channels of the channels-last dx, each a sum over its
    group's (tap, o) pairs."""
    wide_vectors()
    a, b, c = dY.reshape(-1), wt.reshape(-1), dxh.reshape(-1)
    cp = dxh.shape[1]
    for r in range(lo, hi):
        q0, t0, T = tiles[r, 0], tiles[r, 1], tiles[r, 2]
        for c0 in range(0, cp, cb):
            gather_tile(c, cpos, a, apos, aoff, b, boff, q0, t0, T, c0)


@njit(**SERIAL)
def _channels_first(lo, hi, dxh, dx):  # pragma: no cover - compiled
    """Samples lo .. hi-1: dx[n, c, h, w] = dxh[(n*H + h)*W + w, c]."""
    wide_vectors()
    N, C, H, W = dx.shape
    for n in range(lo, hi):
        for h in range(H):
            src = dxh[(n * H + h) * W:(n * H + h + 1) * W]
            for c in range(C):
                dst = dx[n, c, h]
                for w in range(W):
                    dst[w] = src[w, c]


def input_grad(dY: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], out_hw: tuple[int, int],
               stride: tuple[int, int], padding: tuple[int, int]) -> np.ndarray:
    """dx of a one-group convolution from dY, the output gradient as the GEMM route lays it out
    ((O, N*OH*OW), cpu/gemm.py), and the filters (O, C, kh, kw); one dtype, C-contiguous."""
    N, C, H, W = x_shape
    O, _, kh, kw = w.shape
    cb = gather_channels(dY.itemsize)
    p = _plan(N, C, H, W, O, kh, kw, stride[0], stride[1], padding[0], padding[1], *out_hw, cb)
    wt = buffer("turned filters", (kh, kw, O, p.cp), dY.dtype)
    parallel_for(_turn_filters, O, w, wt, work=2 * wt.size)
    dxh = buffer("dx channels last", (N * H * W + 1, p.cp), dY.dtype)
    parallel_for(_sum_tiles, len(p.tiles), dY, p.apos, p.cpos, p.aoff, wt, p.boff, p.tiles, cb, dxh)
    dx = np.empty(x_shape, dY.dtype)
    parallel_for(_channels_first, N, dxh, dx, work=2 * dx.size)
    return dx
