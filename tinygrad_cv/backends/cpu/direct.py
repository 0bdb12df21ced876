"""Direct convolution for stride 1: register-blocked loops over the padded input, no im2col.

Wins where the data movement of im2col would cost more than the arithmetic: few channels and
large maps (LeNet's layers, the first layers of VGG and ResNet at full resolution).
Output size (W - F + 2P)/S + 1 with S = 1, i.e. W - F + 2P + 1.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .common import SERIAL, c_array, wide_vectors
from .microkernel import OCB, conv_tile, tile_positions
from .threads import num_threads, parallel_for

# -- direct convolution for stride 1 ------------------------------------------------------
# Small and medium layers lose to the data movement of im2col, so they run a direct
# convolution per sample. Each padded input channel is one flat run of Hp*Wp values (plus
# a small gap); output position (oh, ow) sits at oh*Wp + ow of a "wide" output run, and
# tap (c, i, j) of a filter reads the input run shifted by c*plane + i*Wp + j. The
# Wp - OW columns past each output row are computed and dropped.
#
# The forward pass is tiles of microkernel.conv_tile: OCB output channels x a tile of
# consecutive positions of the wide run, summed over every tap in vector registers and
# stored once. The input gradient of a stride-1 layer is itself a stride-1 convolution (see
# _input_grad_as_forward), so it is the forward pass again. The weight gradient is the
# forward's pairing read the other way, as 4x4 register-blocked dot products (_dot4x4):
#   dW[o, tap] = sum over the batch and the wide run of dy_wide[o] * x_padded[tap]

_VEC = 32  # the weight gradient's runs are padded to a multiple of this many values (two AVX-512
#           registers of float32: the vectorized loops then never fall into their scalar remainder)
_RUN = 2048  # small layers stack samples until a wide run is about this long
_CHUNK_BYTES = 8192  # the weight gradient takes a run in chunks of this size, so that its rows stay in
# L1 (48 KiB); one thread, 8x64x56x56 * 64 3x3 pad 1: 30.2 ms at 4 KiB, 27.8 at 8 KiB (256-bit
# code; with 512-bit vectors 4, 8 and 16 KiB measured within 10% of each other)


@njit(**SERIAL)
def _pack(a, n0, nb, rows, buf, ps, ss, rs, ph, pw):  # pragma: no cover - compiled
    """buf[rows[c]*ps + s*ss + (h + ph)*rs + w + pw] = a[n0 + s, c, h, w] for the nb samples
    from n0 (buf already zeroed): the samples stand one above the other in each plane."""
    wide_vectors()
    N, C, H, W = a.shape
    for s in range(min(nb, N - n0)):
        for c in range(C):
            for h in range(H):
                base = rows[c] * ps + s * ss + (h + ph) * rs + pw
                dst, src = buf[base:base + W], a[n0 + s, c, h]    # sliced: the loop vectorizes
                for w in range(W):
                    dst[w] = src[w]


@njit(**SERIAL)
def _dot4x4(a, ao, da, b, bo, db, m, out):  # pragma: no cover - compiled
    """out[q, r] += sum over 0 <= k < m of a[ao[q] + da + k] * b[bo[r] + db + k]."""
    wide_vectors()
    s00, s01, s02, s03 = out[0, 0], out[0, 1], out[0, 2], out[0, 3]  # (the sums keep out's dtype)
    s10, s11, s12, s13 = out[1, 0], out[1, 1], out[1, 2], out[1, 3]
    s20, s21, s22, s23 = out[2, 0], out[2, 1], out[2, 2], out[2, 3]
    s30, s31, s32, s33 = out[3, 0], out[3, 1], out[3, 2], out[3, 3]
    a0 = a[ao[0] + da:ao[0] + da + m]
    a1 = a[ao[1] + da:ao[1] + da + m]
    a2 = a[ao[2] + da:ao[2] + da + m]
    a3 = a[ao[3] + da:ao[3] + da + m]
    b0 = b[bo[0] + db:bo[0] + db + m]
    b1 = b[bo[1] + db:bo[1] + db + m]
    b2 = b[bo[2] + db:bo[2] + db + m]
    b3 = b[bo[3] + db:bo[3] + db + m]
    for k in range(m):
        u0, u1, u2, u3 = a0[k], a1[k], a2[k], a3[k]
        v0, v1, v2, v3 = b0[k], b1[k], b2[k], b3[k]
        s00 += u0 * v0
        s01 += u0 * v1
        s02 += u0 * v2
        s03 += u0 * v3
        s10 += u1 * v0
        s11 += u1 * v1
        s12 += u1 * v2
        s13 += u1 * v3
        s20 += u2 * v0
        s21 += u2 * v1
        s22 += u2 * v2
        s23 += u2 * v3
        s30 += u3 * v0
        s31 += u3 * v1
        s32 += u3 * v2
        s33 += u3 * v3
    out[0, 0], out[0, 1], out[0, 2], out[0, 3] = s00, s01, s02, s03
    out[1, 0], out[1, 1], out[1, 2], out[1, 3] = s10, s11, s12, s13
    out[2, 0], out[2, 1], out[2, 2], out[2, 3] = s20, s21, s22, s23
    out[3, 0], out[3, 1], out[3, 2], out[3, 3] = s30, s31, s32, s33


@njit(**SERIAL)
def _pass_block(blk, x, nb, x_rows, ps, ss, Wp, ph, pw, x_size, so, wt, T, run, tile, acc_size,
                out_rows, OH, OW, bias, out):  # pragma: no cover - compiled
    """One block of nb samples: pack them into a flat padded source, sum every tile (OCB output
    channels x ``tile`` positions of the wide run) in registers (microkernel.conv_tile), and
    read out[n, c] back from the wide output runs."""
    wide_vectors()
    N = x.shape[0]
    nq = wt.shape[0]
    n0 = blk * nb
    src = np.zeros(x_size, x.dtype)
    _pack(x, n0, nb, x_rows, src, ps, ss, Wp, ph, pw)
    acc = np.empty(acc_size, x.dtype)
    flat_so, flat_w = so.reshape(-1), wt.reshape(-1)
    for qb in range(nq):
        for k0 in range(0, run, tile):
            conv_tile(acc, qb * OCB * run + k0, run, src, k0, flat_so, qb * T, flat_w, qb * T * OCB, T)
    for s in range(min(nb, N - n0)):
        for c in range(out_rows.shape[0]):
            base = out_rows[c] * run + s * ss
            bc = bias[c]
            for h in range(OH):
                row, dst = acc[base + h * Wp:base + h * Wp + OW], out[n0 + s, c, h]
                for w in range(OW):
                    dst[w] = row[w] + bc


@njit(**SERIAL)
def _pass_blocks(lo, hi, x, nb, x_rows, ps, ss, Wp, ph, pw, x_size, so, wt, T, run, tile, acc_size,
                 out_rows, OH, OW, bias, out):  # pragma: no cover - compiled
    """_pass_block for blocks lo .. hi-1 (one thread's share)."""
    wide_vectors()
    for blk in range(lo, hi):
        _pass_block(blk, x, nb, x_rows, ps, ss, Wp, ph, pw, x_size, so, wt, T, run, tile, acc_size,
                    out_rows, OH, OW, bias, out)


@njit(**SERIAL)
def _weight_grad_chunks(lo, hi, chunks, x, nb, x_size, dy, dy_rows, dy_size, ph, pw, ps, ss, Wp, ao, so, run,
                        chunk, part):  # pragma: no cover - compiled
    """Chunks lo .. hi-1 of the batch: part[t, qb, rb, q, r] = sum of dy_wide[o_q] * x_padded[tap_r]."""
    wide_vectors()
    nq, nr = ao.shape[0], ao.shape[1]
    nblk = (x.shape[0] + nb - 1) // nb
    x_rows = np.arange(x.shape[1])
    for t in range(lo, hi):
        for blk in range(t * nblk // chunks, (t + 1) * nblk // chunks):
            xp = np.zeros(x_size, x.dtype)
            _pack(x, blk * nb, nb, x_rows, xp, ps, ss, Wp, ph, pw)
            dyw = np.zeros(dy_size, x.dtype)
            _pack(dy, blk * nb, nb, dy_rows, dyw, run, ss, Wp, 0, 0)
            for qb in range(nq):
                for k0 in range(0, run, chunk):
                    m = min(chunk, run - k0)
                    for rb in range(nr):
                        _dot4x4(dyw, ao[qb, rb], k0, xp, so[qb, rb], k0, m, part[t, qb, rb])


def _direct_weight_grad(x, nb, x_size, dy, dy_rows, dy_size, ph, pw, ps, ss, Wp, ao, so, run, chunk, chunks):
    """The forward's jobs read as dot products: g[qb, rb, q, r] = sum over the batch and the wide
    run of dy_wide[o_q] * x_padded[tap_r], one partial sum per chunk of the batch."""
    part = np.zeros((chunks, ao.shape[0], ao.shape[1], 4, 4), x.dtype)
    parallel_for(_weight_grad_chunks, chunks, chunks, x, nb, x_size, dy, dy_rows, dy_size, ph, pw, ps, ss, Wp,
                 ao, so, run, chunk, part)
    return part


# -- the same kernels with the batch innermost ----------------------------------------------
# A "wide" run computes Hp*Wp positions per sample for OH*OW outputs: 1.96x the work on
# LeNet's second layer (14x14 maps, 5x5 filters). With S samples innermost, (C, Hp, Wp, S),
# output row oh of channel o is one run of OW*S values, and tap (c, i, j) reads the run at
# ((c*Hp + oh + i)*Wp + j)*S: the same shifted-run pairing with nothing computed and dropped.
# Each thread takes its own S samples (a piece); the runs step by one row per oh.


@njit(**SERIAL)
def _pack_last(a, n0, S, buf, Hs, Ws, ph, pw):  # pragma: no cover - compiled
    """buf[((c*Hs + h + ph)*Ws + w + pw)*S + s] = a[n0 + s, c, h, w] for the S samples from n0
    (buf already zeroed; samples past the batch stay zero)."""
    wide_vectors()
    N, C, H, W = a.shape
    ns = min(S, N - n0)
    for c in range(C):                 # row by row: one row of every sample is W*S values, in L1
        for h in range(H):
            base = ((c * Hs + h + ph) * Ws + pw) * S
            for s in range(ns):
                dst, src = buf[base + s:base + s + W * S:S], a[n0 + s, c, h]
                for w in range(W):
                    dst[w] = src[w]


@njit(**SERIAL)
def _last_tiles(lo, hi, x, S, Hp, Wp, ph, pw, x_size, so, wt, T, OH, OW, tile, plane, bias,
                out):  # pragma: no cover - compiled
    """The forward on the batch-innermost layout, pieces lo .. hi-1 of S samples: output row oh
    of channel o is one run of OW*S values, and tap t reads the packed input's run at so[t] +
    oh*Wp*S, so each row is cut into tiles for microkernel.conv_tile. A row's last tile runs
    past its end into the next row, which is computed after it; each channel's plane has a
    tile of slack for its last row."""
    wide_vectors()
    N = x.shape[0]
    C, H, W = out.shape[1], out.shape[2], out.shape[3]
    nq = wt.shape[0]
    flat_so, flat_w = so.reshape(-1), wt.reshape(-1)
    row = OW * S
    for piece in range(lo, hi):
        n0 = piece * S
        src = np.zeros(x_size, x.dtype)
        _pack_last(x, n0, S, src, Hp, Wp, ph, pw)
        acc = np.empty(nq * OCB * plane, x.dtype)
        for qb in range(nq):
            for r in range(OH):
                for k0 in range(0, row, tile):
                    conv_tile(acc, qb * OCB * plane + r * row + k0, plane, src, r * Wp * S + k0, flat_so, qb * T,
                              flat_w, qb * T * OCB, T)
        ns = min(S, N - n0)
        for c in range(C):
            bc = bias[c]
            for h in range(H):
                base = c * plane + h * row
                for s in range(ns):
                    run, dst = acc[base + s:base + s + W * S:S], out[n0 + s, c, h]
                    for w in range(W):
                        dst[w] = run[w] + bc


@njit(**SERIAL)
def _last_weight_grad(lo, hi, x, dy, S, Hp, Wp, ph, pw, x_size, dy_size, ao, so, rows, run, chunk,
                      part):  # pragma: no cover - compiled
    """Pieces lo .. hi-1: part[piece, qb, rb, q, r] = sum over the rows of dy_run[o_q] . x_run[tap_r]."""
    wide_vectors()
    OH, OW = dy.shape[2], dy.shape[3]
    nq, nr = ao.shape[0], ao.shape[1]
    for piece in range(lo, hi):
        xp = np.zeros(x_size, x.dtype)
        _pack_last(x, piece * S, S, xp, Hp, Wp, ph, pw)
        dyp = np.zeros(dy_size, x.dtype)
        _pack_last(dy, piece * S, S, dyp, OH, OW, 0, 0)
        for r in range(rows):
            for qb in range(nq):
                for k0 in range(0, run, chunk):
                    m = min(chunk, run - k0)
                    for rb in range(nr):
                        _dot4x4(dyp, ao[qb, rb], r * OW * S + k0, xp, so[qb, rb], r * Wp * S + k0, m,
                                part[piece, qb, rb])


class _LastPlan:
    """Offsets of one stride-1, one-group layer for the batch-innermost kernels (S samples a piece)."""

    def __init__(self, C: int, H: int, W: int, O: int, kh: int, kw: int, ph: int, pw: int, S: int):
        self.tables = t = _Plan(C, H, W, O, kh, kw, ph, pw, 1, 1)   # the weight tables are the same
        Hp, Wp, OH, OW = t.Hp, t.Wp, t.OH, t.OW
        nob, ntb, T = t.nob, t.ntb, t.T
        self.S, self.Hp, self.Wp, self.OH, self.OW = S, Hp, Wp, OH, OW
        self.C, self.O, self.ph, self.pw, self.kh, self.kw = C, O, ph, pw, kh, kw
        self.n_orows = nob * 4
        self.run = OW * S
        oplane = OH * OW * S                     # one output (or dy) channel
        # weight-gradient jobs: q-block ob (dy planes o), r-block tb (taps of the packed input)
        tap = np.arange(ntb * 4)
        c, i, j = tap // (kh * kw), tap // kw % kh, tap % kw
        taps = np.where(tap < T, ((c * Hp + i) * Wp + j) * S, 0).reshape(ntb, 4)
        planes = (np.arange(nob * 4) * oplane).reshape(nob, 4)
        self.f_ao = c_array(np.broadcast_to(planes[:, None, :], (nob, ntb, 4)).astype(np.int64))
        self.f_so = c_array(np.broadcast_to(taps[None], (nob, ntb, 4)).astype(np.int64))
        self.x_size = C * Hp * Wp * S
        self.dy_size = nob * 4 * oplane
        # the forward's tiles: the weights are _Plan's, the taps on this layout
        tile = tile_positions(4)
        self.t_src = self.x_size + tile
        self.t_plane = oplane + tile
        t_tap = np.arange(T)
        c, i, j = t_tap // (kh * kw), t_tap // kw % kh, t_tap % kw
        self.t_so = c_array(np.repeat((((c * Hp + i) * Wp + j) * S)[None], t.nqt, axis=0).astype(np.int64))


_last_plans: dict[tuple[int, ...], _LastPlan] = {}


def _last_plan(N: int, C: int, H: int, W: int, O: int, kh: int, kw: int, ph: int, pw: int) -> _LastPlan:
    S = -(-N // num_threads())                       # one piece of samples per thread
    key = (C, H, W, O, kh, kw, ph, pw, S)
    plan = _last_plans.get(key)
    if plan is None:
        if len(_last_plans) > 64:
            _last_plans.clear()
        plan = _last_plans[key] = _LastPlan(*key)
    return plan


def _last_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: _LastPlan) -> np.ndarray:
    N = x.shape[0]
    out = np.empty((N, p.O, p.OH, p.OW), x.dtype)
    parallel_for(_last_tiles, -(-N // p.S), x, p.S, p.Hp, p.Wp, p.ph, p.pw, p.t_src, p.t_so, p.tables.tile_weights(w),
                 p.tables.T, p.OH, p.OW, tile_positions(x.itemsize), p.t_plane, b, out)
    return out


def _last_weight_grad_of(x: np.ndarray, dy: np.ndarray, p: _LastPlan) -> np.ndarray:
    pieces = -(-x.shape[0] // p.S)
    t = p.tables
    part = np.zeros((pieces, t.nob, t.ntb, 4, 4), x.dtype)
    parallel_for(_last_weight_grad, pieces, x, dy, p.S, p.Hp, p.Wp, p.ph, p.pw, p.x_size, p.dy_size,
                 p.f_ao, p.f_so, p.OH, p.run, _chunk(x.dtype), part)
    return t.weight_grad(part.sum(axis=0))


def _blocks(n: int) -> int:
    return -(-n // 4)


class _Plan:
    """Offsets of one stride-1 layer shape for the direct kernels (weights come per call)."""

    def __init__(self, C: int, H: int, W: int, O: int, kh: int, kw: int, ph: int, pw: int, groups: int, nb: int):
        Cg, Og = C // groups, O // groups
        OH, OW = H + 2 * ph - kh + 1, W + 2 * pw - kw + 1
        Hp, Wp = H + 2 * ph, W + 2 * pw
        self.Hp, self.Wp, self.OH, self.OW = Hp, Wp, OH, OW
        # nb samples stand one above the other in every plane (sample stride ss): one long run
        # per job instead of nb short ones; the rows between the samples are computed and dropped
        self.nb, self.ss = nb, Hp * Wp
        self.run = -(-((nb - 1) * Hp * Wp + (OH - 1) * Wp + OW) // _VEC) * _VEC  # the wide run, padded
        self.ps = ps = nb * Hp * Wp + _VEC  # plane stride of padded inputs: the padded run never spills over
        T, nob = Cg * kh * kw, _blocks(Og)
        ntb = _blocks(T)
        g = np.arange(groups)
        # output channel o -> its row in the weight gradient's dy buffer (groups*nob*4 rows)
        self.o_rows = (g[:, None] * nob * 4 + np.arange(Og)).reshape(-1)
        self.n_orows = groups * nob * 4
        # weight-gradient jobs: q-block (g, ob) of dy rows of `run`, r-block tb of taps of x_padded
        t = np.arange(ntb * 4)
        c, i, j = t // (kh * kw), t // kw % kh, t % kw
        tap = np.where(t < T, c * ps + i * Wp + j, 0)
        fo = (g[:, None, None] * nob * 4 + np.arange(nob * 4).reshape(nob, 4)[None]) * self.run  # (groups, nob, 4)
        self.f_ao = np.ascontiguousarray(np.broadcast_to(fo[:, :, None, :], (groups, nob, ntb, 4)).reshape(groups * nob, ntb, 4))
        fs = g[:, None, None] * Cg * ps + tap.reshape(ntb, 4)[None]  # (groups, ntb, 4)
        self.f_so = np.ascontiguousarray(np.broadcast_to(fs[:, None], (groups, nob, ntb, 4)).reshape(groups * nob, ntb, 4))
        self.groups, self.Og, self.Cg, self.nob, self.ntb, self.T = groups, Og, Cg, nob, ntb, T
        self.kh, self.kw, self.ph, self.pw, self.C, self.O = kh, kw, ph, pw, C, O
        self.x_rows = np.arange(C)
        # the forward's tiles (microkernel.conv_tile): OCB output channels x a tile of positions;
        # the wide run padded to whole tiles (a float32 tile is two float64 ones), the source
        # given a tile of slack at its end for the last tile's reads past the run
        self.nqt = nqt = -(-Og // OCB)
        self.t_rows = (g[:, None] * nqt * OCB + np.arange(Og)).reshape(-1)
        self.t_nrows = groups * nqt * OCB
        tile = tile_positions(4)
        self.t_run = -(-((nb - 1) * Hp * Wp + (OH - 1) * Wp + OW) // tile) * tile
        self.t_src = C * ps + tile
        t = np.arange(T)
        c, i, j = t // (kh * kw), t // kw % kh, t % kw
        taps = g[:, None] * Cg * ps + (c * ps + i * Wp + j)[None]                      # (groups, T)
        self.t_so = c_array(np.repeat(taps, nqt, axis=0).astype(np.int64))           # (groups*nqt, T)

    def tile_weights(self, w: np.ndarray) -> np.ndarray:
        """(groups*nqt, T, OCB): [q, t, o] = W[output channel o of tile row q, tap t]."""
        wr = np.zeros((self.groups, self.nqt * OCB, self.T), w.dtype)
        wr[:, :self.Og] = w.reshape(self.groups, self.Og, self.T)
        return c_array(wr.reshape(self.groups * self.nqt, OCB, self.T).transpose(0, 2, 1))

    def weight_grad(self, part: np.ndarray) -> np.ndarray:
        """The dot-product blocks back to (O, Cg, kh, kw)."""
        g = part.reshape(self.groups, self.nob, self.ntb, 4, 4).transpose(0, 1, 3, 2, 4)
        g = g.reshape(self.groups, self.nob * 4, self.ntb * 4)[:, :self.Og, :self.T]
        return c_array(g).reshape(self.O, self.Cg, self.kh, self.kw)


_plans: dict[tuple[int, ...], _Plan] = {}


def _plan(N: int, C: int, H: int, W: int, O: int, kh: int, kw: int, ph: int, pw: int, groups: int) -> _Plan:
    # samples per block: runs of about _RUN values or more, and a whole number of blocks per thread
    threads = num_threads()
    Hp, Wp = H + 2 * ph, W + 2 * pw
    blocks = -(-max(1, -(-N * Hp * Wp // _RUN)) // threads) * threads
    key = (C, H, W, O, kh, kw, ph, pw, groups, max(1, -(-N // blocks)))
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) > 64:
            _plans.clear()
        plan = _plans[key] = _Plan(*key)
    return plan


def _chunk(dtype: np.dtype, nbytes: int = _CHUNK_BYTES) -> int:
    return nbytes // np.dtype(dtype).itemsize


def _direct_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: _Plan) -> np.ndarray:
    N = x.shape[0]
    out = np.empty((N, p.O, p.OH, p.OW), x.dtype)
    parallel_for(_pass_blocks, -(-N // p.nb), x, p.nb, p.x_rows, p.ps, p.ss, p.Wp, p.ph, p.pw, p.t_src, p.t_so,
                 p.tile_weights(w), p.T, p.t_run, tile_positions(x.itemsize), p.t_nrows * p.t_run, p.t_rows,
                 p.OH, p.OW, b, out)
    return out


def _input_grad_as_forward(dy: np.ndarray, w: np.ndarray, padding: tuple[int, int], groups: int) -> np.ndarray:
    """dx of a stride-1 layer as a stride-1 convolution of dy (a gather, no scatter):

        dx[c, h, w] = sum over o, i, j of W[o, c, i, j] * dy[o, h + p - i, w + p - j]

    is dy correlated with each filter turned by 180 degrees, input and output channels
    swapped (within each group), and padded by k - 1 - p (a negative padding crops dy).
    The same kernel as the forward pass, so no second set of tables. It replaced a scatter
    into the padded dx (one thread, 8x64x56x56 * 64 3x3 pad 1: 15.0 -> 12.0 ms with the older
    4x4 kernel for both; 64x6x14x14 * 16 5x5, batch innermost: 0.87-1.08 -> 0.69-0.74 ms once
    the forward was tiled)."""
    O, Cg, kh, kw = w.shape
    Og = O // groups
    wt = w.reshape(groups, Og, Cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    wt = np.ascontiguousarray(wt).reshape(groups * Cg, Og, kh, kw)
    ph, pw = kh - 1 - padding[0], kw - 1 - padding[1]
    if ph < 0 or pw < 0:                # padding wider than the filter: those dy rows reach no input
        ch, cw = max(0, -ph), max(0, -pw)
        dy = c_array(dy[:, :, ch:dy.shape[2] - ch, cw:dy.shape[3] - cw])
        ph, pw = max(0, ph), max(0, pw)
    return forward(dy, wt, np.zeros(groups * Cg, dy.dtype), (ph, pw), groups)


def forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, padding: tuple[int, int], groups: int) -> np.ndarray:
    """y = conv(x, w) + b for a stride-1 layer (x, w, b C-contiguous, one dtype)."""
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    if _batch_last(N, H, W, kh, kw, padding, groups):
        return _last_forward(x, w, b, _last_plan(N, C, H, W, O, kh, kw, padding[0], padding[1]))
    return _direct_forward(x, w, b, _plan(N, C, H, W, O, kh, kw, padding[0], padding[1], groups))


# The batch-innermost kernels win where the wide runs waste the most: measured on one thread,
# forward + both gradients, 64x6x14x14 * 16 5x5 (wide runs 1.96x the outputs): 3.57 -> 2.01 ms;
# 64x1x28x28 * 6 5x5 pad 2 (1.31x): 0.58 -> 0.69 ms forward; 32x3x32x32 * 32 3x3 (1.14x):
# 5.0 -> 5.7 ms. A piece needs 8 samples or more to fill the vector registers.
_LAST_MIN_WASTE = 1.5
_LAST_MIN_SAMPLES = 8


def _batch_last(N: int, H: int, W: int, kh: int, kw: int, padding: tuple[int, int], groups: int) -> bool:
    Hp, Wp = H + 2 * padding[0], W + 2 * padding[1]
    OH, OW = Hp - kh + 1, Wp - kw + 1
    return (groups == 1 and Hp * Wp >= _LAST_MIN_WASTE * OH * OW
            and -(-N // num_threads()) >= _LAST_MIN_SAMPLES)


def backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, padding: tuple[int, int], groups: int,
             need_input: bool, need_weight: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(dx, dW) of a stride-1 layer: dx is a forward pass over dy with the filters turned round;
    dW the forward's pairs read as dot products."""
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    if _batch_last(N, H, W, kh, kw, padding, groups):
        lp = _last_plan(N, C, H, W, O, kh, kw, padding[0], padding[1])
        return (_input_grad_as_forward(dy, w, padding, groups) if need_input else None,
                _last_weight_grad_of(x, dy, lp) if need_weight else None)
    plan = _plan(N, C, H, W, O, kh, kw, padding[0], padding[1], groups)
    dx = _input_grad_as_forward(dy, w, padding, groups) if need_input else None
    dw = None
    if need_weight:
        chunks = min(-(-N // plan.nb), 2 * num_threads())
        part = _direct_weight_grad(x, plan.nb, C * plan.ps, dy, plan.o_rows, plan.n_orows * plan.run,
                                   padding[0], padding[1], plan.ps, plan.ss, plan.Wp, plan.f_ao, plan.f_so, plan.run,
                                   _chunk(x.dtype), chunks)
        dw = plan.weight_grad(part.sum(axis=0))
    return dx, dw
