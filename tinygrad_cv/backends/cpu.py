"""Conv and pool on the CPU: numba ``@njit(parallel=True, cache=True)`` kernels.

Same interface as backends/reference.py (read that first: it is the same math
written for people). Two routes for convolution:

- stride 1 (every LeNet, VGG and ResNet 3x3 layer): direct loops over the padded
  input, driven by offset tables built once per layer shape; the input gradient
  is the same pass with the filters flipped, scattered straight into the input;
- strided layers: im2col + one BLAS matrix product per group,

    cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*S + i, ow*S + j]
    y[n, o, oh, ow]              = sum_k W[o, k] * cols[k, (n, oh, ow)]  + b[o]
    dW = dY @ cols.T             dcols = W.T @ dY  -> col2im -> dx

Kernels compile on first call, once per dtype and rank (never per shape), and
are cached on disk.
"""
from __future__ import annotations

import os

# numba's OpenMP workers spin-wait after each parallel kernel by default; on a
# 2-core machine they then starve NumPy's BLAS threads in the Linear layers that
# run next, and a LeNet epoch took 4 s instead of 0.7 s. Passive waiting costs
# nothing measurable. Must be set before numba starts its thread pool; an explicit
# user setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

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
# Small and medium layers lose to the data movement of im2col, so they run a direct
# convolution per sample. Each padded input channel is one flat run of Hp*Wp values (plus
# a small gap); output position (oh, ow) sits at oh*Wp + ow of a "wide" output run, and
# tap (c, i, j) of a filter reads the input run shifted by c*plane + i*Wp + j. The
# Wp - OW columns past each output row are computed and dropped.
#
# All the work is one register-blocked inner kernel, _mac4x4: four accumulator runs
# each take a 4x4 block of weights times four source runs, so every load of a source
# or accumulator value feeds four fused multiply-adds. The forward pass and the input
# gradient are the same kernel with different tables of offsets and weights:
#   forward      acc = 4 output channels,        sources = 4 taps of the padded input
#   input grad   acc = 4 input channels at tap (i, j) of the padded dx (a scatter),
#                sources = 4 output channels of dy (laid out with the input's row stride)
# The weight gradient is the same pairing read the other way, as 4x4 dot products.

_FM = {"reassoc", "contract", "nsz", "arcp"}
_FAST = dict(parallel=True, cache=True, nogil=True, fastmath=_FM)
_SERIAL = dict(cache=True, nogil=True, fastmath=_FM)
_VEC = 32  # wide runs are padded to a multiple of this many values (two AVX-512 registers of float32:
#           the vectorized loops then never fall into their scalar remainder)
_RUN = 2048  # small layers stack samples until a wide run is about this long
_CHUNK_BYTES = 4096  # a run is processed in chunks of this size, so 4 accumulators stay in L1


@njit(**_SERIAL)
def _pack(a, n0, nb, rows, buf, ps, ss, rs, ph, pw):  # pragma: no cover - compiled
    """buf[rows[c]*ps + s*ss + (h + ph)*rs + w + pw] = a[n0 + s, c, h, w] for the nb samples
    from n0 (buf already zeroed): the samples stand one above the other in each plane."""
    N, C, H, W = a.shape
    for s in range(min(nb, N - n0)):
        for c in range(C):
            for h in range(H):
                base = rows[c] * ps + s * ss + (h + ph) * rs + pw
                for w in range(W):
                    buf[base + w] = a[n0 + s, c, h, w]


@njit(**_SERIAL)
def _mac4x4(acc, ao, src, so, wm, k0, m):  # pragma: no cover - compiled
    """acc[ao[q] + k] += sum over r of wm[q, r] * src[so[r] + k], for q, r < 4 and k0 <= k < k0 + m."""
    w00, w01, w02, w03 = wm[0, 0], wm[0, 1], wm[0, 2], wm[0, 3]
    w10, w11, w12, w13 = wm[1, 0], wm[1, 1], wm[1, 2], wm[1, 3]
    w20, w21, w22, w23 = wm[2, 0], wm[2, 1], wm[2, 2], wm[2, 3]
    w30, w31, w32, w33 = wm[3, 0], wm[3, 1], wm[3, 2], wm[3, 3]
    d0 = acc[ao[0] + k0:ao[0] + k0 + m]
    d1 = acc[ao[1] + k0:ao[1] + k0 + m]
    d2 = acc[ao[2] + k0:ao[2] + k0 + m]
    d3 = acc[ao[3] + k0:ao[3] + k0 + m]
    x0 = src[so[0] + k0:so[0] + k0 + m]
    x1 = src[so[1] + k0:so[1] + k0 + m]
    x2 = src[so[2] + k0:so[2] + k0 + m]
    x3 = src[so[3] + k0:so[3] + k0 + m]
    for k in range(m):
        v0, v1, v2, v3 = x0[k], x1[k], x2[k], x3[k]
        d0[k] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
        d1[k] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
        d2[k] += w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3
        d3[k] += w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3


@njit(**_SERIAL)
def _dot4x4(a, ao, b, bo, k0, m, out):  # pragma: no cover - compiled
    """out[q, r] += sum over k0 <= k < k0 + m of a[ao[q] + k] * b[bo[r] + k]."""
    s00, s01, s02, s03 = out[0, 0], out[0, 1], out[0, 2], out[0, 3]  # (the sums keep out's dtype)
    s10, s11, s12, s13 = out[1, 0], out[1, 1], out[1, 2], out[1, 3]
    s20, s21, s22, s23 = out[2, 0], out[2, 1], out[2, 2], out[2, 3]
    s30, s31, s32, s33 = out[3, 0], out[3, 1], out[3, 2], out[3, 3]
    a0 = a[ao[0] + k0:ao[0] + k0 + m]
    a1 = a[ao[1] + k0:ao[1] + k0 + m]
    a2 = a[ao[2] + k0:ao[2] + k0 + m]
    a3 = a[ao[3] + k0:ao[3] + k0 + m]
    b0 = b[bo[0] + k0:bo[0] + k0 + m]
    b1 = b[bo[1] + k0:bo[1] + k0 + m]
    b2 = b[bo[2] + k0:bo[2] + k0 + m]
    b3 = b[bo[3] + k0:bo[3] + k0 + m]
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


@njit(**_FAST)
def _direct_pass(a, nb, a_rows, a_ps, ss, a_rs, a_ph, a_pw, a_size, ao, so, wm, run, chunk, acc_size,
                 out_rows, o_ps, o_rs, o_ph, o_pw, OH, OW, bias):  # pragma: no cover - compiled
    """Per block of nb samples: pack them into a flat source buffer, run every (q-block, r-block)
    job of _mac4x4 over the wide run, and read out[n, c] back from the accumulator buffer."""
    N = a.shape[0]
    nq, nr = ao.shape[0], ao.shape[1]
    out = np.empty((N, out_rows.shape[0], OH, OW), a.dtype)
    for blk in prange((N + nb - 1) // nb):
        n0 = blk * nb
        src = np.zeros(a_size, a.dtype)
        _pack(a, n0, nb, a_rows, src, a_ps, ss, a_rs, a_ph, a_pw)
        acc = np.zeros(acc_size, a.dtype)
        for qb in range(nq):
            for k0 in range(0, run, chunk):
                m = min(chunk, run - k0)
                for rb in range(nr):
                    _mac4x4(acc, ao[qb, rb], src, so[qb, rb], wm[qb, rb], k0, m)
        for s in range(min(nb, N - n0)):
            for c in range(out_rows.shape[0]):
                base = out_rows[c] * o_ps + s * ss + o_ph * o_rs + o_pw
                bc = bias[c]
                for h in range(OH):
                    for w in range(OW):
                        out[n0 + s, c, h, w] = acc[base + h * o_rs + w] + bc
    return out


@njit(**_FAST)
def _direct_weight_grad(x, nb, x_size, dy, dy_rows, dy_size, ph, pw, ps, ss, Wp, ao, so, run, chunk, chunks):  # pragma: no cover - compiled
    """The forward's jobs read as dot products: g[qb, rb, q, r] = sum over the batch and the wide
    run of dy_wide[o_q] * x_padded[tap_r], one partial sum per chunk of the batch."""
    nq, nr = ao.shape[0], ao.shape[1]
    nblk = (x.shape[0] + nb - 1) // nb
    part = np.zeros((chunks, nq, nr, 4, 4), x.dtype)
    x_rows = np.arange(x.shape[1])
    for t in prange(chunks):
        for blk in range(t * nblk // chunks, (t + 1) * nblk // chunks):
            xp = np.zeros(x_size, x.dtype)
            _pack(x, blk * nb, nb, x_rows, xp, ps, ss, Wp, ph, pw)
            dyw = np.zeros(dy_size, x.dtype)
            _pack(dy, blk * nb, nb, dy_rows, dyw, run, ss, Wp, 0, 0)
            for qb in range(nq):
                for k0 in range(0, run, chunk):
                    m = min(chunk, run - k0)
                    for rb in range(nr):
                        _dot4x4(dyw, ao[qb, rb], xp, so[qb, rb], k0, m, part[t, qb, rb])
    return part


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
        T, nob, ncb = Cg * kh * kw, _blocks(Og), _blocks(Cg)
        ntb = _blocks(T)
        g = np.arange(groups)
        # output channel o -> its row in an accumulator / dy buffer with groups*nob*4 rows
        self.o_rows = (g[:, None] * nob * 4 + np.arange(Og)).reshape(-1)
        self.c_rows = (g[:, None] * ncb * 4 + np.arange(Cg)).reshape(-1)
        self.n_orows, self.n_crows = groups * nob * 4, groups * ncb * 4
        # forward jobs: q-block (g, ob), r-block tb; acc rows of `run`, sources = taps of x_padded
        t = np.arange(ntb * 4)
        c, i, j = t // (kh * kw), t // kw % kh, t % kw
        tap = np.where(t < T, c * ps + i * Wp + j, 0)
        fo = (g[:, None, None] * nob * 4 + np.arange(nob * 4).reshape(nob, 4)[None]) * self.run  # (groups, nob, 4)
        self.f_ao = np.array(np.broadcast_to(fo[:, :, None, :], (groups, nob, ntb, 4)).reshape(groups * nob, ntb, 4))
        fs = g[:, None, None] * Cg * ps + tap.reshape(ntb, 4)[None]  # (groups, ntb, 4)
        self.f_so = np.array(np.broadcast_to(fs[:, None], (groups, nob, ntb, 4)).reshape(groups * nob, ntb, 4))
        # input-gradient jobs: q-block (g, cb), r-block (tap ij, ob); acc = dx_padded planes
        ij = np.arange(kh * kw)
        cr = (g[:, None] * ncb * 4 + np.arange(ncb * 4)) * ps  # (groups, ncb*4)
        ia = cr.reshape(groups, ncb, 1, 1, 4) + ((ij // kw) * Wp + ij % kw).reshape(1, 1, kh * kw, 1, 1)
        self.i_ao = np.array(np.broadcast_to(ia, (groups, ncb, kh * kw, nob, 4)).reshape(groups * ncb, kh * kw * nob, 4))
        isrc = fo.reshape(groups, 1, 1, nob, 4)
        self.i_so = np.array(np.broadcast_to(isrc, (groups, ncb, kh * kw, nob, 4)).reshape(groups * ncb, kh * kw * nob, 4))
        self.groups, self.Og, self.Cg, self.nob, self.ncb, self.ntb, self.T = groups, Og, Cg, nob, ncb, ntb, T
        self.kh, self.kw, self.ph, self.pw, self.C, self.O = kh, kw, ph, pw, C, O
        self.x_rows = np.arange(C)

    def forward_weights(self, w: np.ndarray) -> np.ndarray:
        """(groups*nob, ntb, 4, 4): block [q, r] = W[o_q, tap_r]."""
        wr = np.zeros((self.groups, self.nob * 4, self.ntb * 4), w.dtype)
        wr[:, :self.Og, :self.T] = w.reshape(self.groups, self.Og, self.T)
        return _c(wr.reshape(self.groups, self.nob, 4, self.ntb, 4).transpose(0, 1, 3, 2, 4)
                  .reshape(self.groups * self.nob, self.ntb, 4, 4))

    def input_weights(self, w: np.ndarray) -> np.ndarray:
        """(groups*ncb, kh*kw*nob, 4, 4): block [q, r] = W[o_r, c_q, i, j]."""
        k2 = self.kh * self.kw
        wr = np.zeros((self.groups, self.nob * 4, self.ncb * 4, k2), w.dtype)
        wr[:, :self.Og, :self.Cg] = w.reshape(self.groups, self.Og, self.Cg, k2)
        wr = wr.reshape(self.groups, self.nob, 4, self.ncb, 4, k2).transpose(0, 3, 5, 1, 4, 2)
        return _c(wr.reshape(self.groups * self.ncb, k2 * self.nob, 4, 4))

    def weight_grad(self, part: np.ndarray) -> np.ndarray:
        """The dot-product blocks back to (O, Cg, kh, kw)."""
        g = part.reshape(self.groups, self.nob, self.ntb, 4, 4).transpose(0, 1, 3, 2, 4)
        g = g.reshape(self.groups, self.nob * 4, self.ntb * 4)[:, :self.Og, :self.T]
        return _c(g).reshape(self.O, self.Cg, self.kh, self.kw)


_plans: dict[tuple[int, ...], _Plan] = {}


def _plan(N: int, C: int, H: int, W: int, O: int, kh: int, kw: int, ph: int, pw: int, groups: int) -> _Plan:
    # samples per block: runs of about _RUN values or more, and a whole number of blocks per thread
    threads = numba.get_num_threads()
    Hp, Wp = H + 2 * ph, W + 2 * pw
    blocks = -(-max(1, -(-N * Hp * Wp // _RUN)) // threads) * threads
    key = (C, H, W, O, kh, kw, ph, pw, groups, max(1, -(-N // blocks)))
    plan = _plans.get(key)
    if plan is None:
        if len(_plans) > 64:
            _plans.clear()
        plan = _plans[key] = _Plan(*key)
    return plan


def _chunk(dtype: np.dtype) -> int:
    return _CHUNK_BYTES // np.dtype(dtype).itemsize


def _direct_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: _Plan) -> np.ndarray:
    return _direct_pass(x, p.nb, p.x_rows, p.ps, p.ss, p.Wp, p.ph, p.pw, p.C * p.ps, p.f_ao, p.f_so, p.forward_weights(w),
                        p.run, _chunk(x.dtype), p.n_orows * p.run, p.o_rows, p.run, p.Wp, 0, 0, p.OH, p.OW, b)


def _direct_input_grad(dy: np.ndarray, w: np.ndarray, p: _Plan) -> np.ndarray:
    H, W = p.Hp - 2 * p.ph, p.Wp - 2 * p.pw
    return _direct_pass(dy, p.nb, p.o_rows, p.run, p.ss, p.Wp, 0, 0, p.n_orows * p.run, p.i_ao, p.i_so, p.input_weights(w),
                        p.run, _chunk(dy.dtype), p.n_crows * p.ps, p.c_rows, p.ps, p.Wp, p.ph, p.pw, H, W,
                        np.zeros(p.C, dy.dtype))


def _use_direct(stride: IntPair) -> bool:
    """Direct loops for stride-1 layers (measured faster than im2col + BLAS at every size
    we benchmark, 0.97x torch on the 56x56x64 layer); im2col + BLAS for strided ones."""
    return stride == (1, 1)


def _c(a: np.ndarray) -> np.ndarray:
    """C-contiguous and writable: numba compiles a separate kernel for each array layout and for
    read-only arrays, so everything handed to a kernel is normalised to one kind."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


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
    if _use_direct(stride):
        plan = _plan(N, C, H, W, O, kh, kw, padding[0], padding[1], groups)
        return _direct_forward(_c(x), _c(weight.astype(x.dtype, copy=False)), b, plan)
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
    if _use_direct(stride):
        plan = _plan(N, C, H, W, O, kh, kw, padding[0], padding[1], groups)
        dy = _c(grad_out.astype(x.dtype, copy=False))
        w = _c(weight.astype(x.dtype, copy=False))
        dx = dw = None
        if need_input:
            dx = _direct_input_grad(dy, w, plan)
        if need_weight:
            chunks = min(-(-N // plan.nb), 2 * numba.get_num_threads())
            part = _direct_weight_grad(_c(x), plan.nb, C * plan.ps, dy, plan.o_rows, plan.n_orows * plan.run,
                                       padding[0], padding[1], plan.ps, plan.ss, plan.Wp, plan.f_ao, plan.f_so, plan.run,
                                       _chunk(x.dtype), chunks)
            dw = plan.weight_grad(part.sum(axis=0))
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
# Max and average pooling share one forward and one backward kernel (a flag picks the
# rule), which halves what a cold cache has to compile.


@njit(**_JIT)
def _pool(x, kh, kw, sh, sw, ph, pw, OH, OW, is_max):  # pragma: no cover - compiled
    """(y, argmax) for max pooling; (y, empty) for average pooling (padding counts as zeros)."""
    N, C, H, W = x.shape
    y = np.empty((N, C, OH, OW), x.dtype)
    arg = np.empty((N, C, OH, OW) if is_max else (0, 0, 0, 0), np.int64)
    scale = 1.0 / (kh * kw)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            h0 = oh * sh - ph
            for ow in range(OW):
                w0 = ow * sw - pw
                if is_max:
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
                else:
                    s = 0.0
                    for h in range(max(h0, 0), min(h0 + kh, H)):
                        for w in range(max(w0, 0), min(w0 + kw, W)):
                            s += x[n, c, h, w]
                    y[n, c, oh, ow] = s * scale
    return y, arg


@njit(**_JIT)
def _unpool(dy, arg, H, W, kh, kw, sh, sw, ph, pw, is_max):  # pragma: no cover - compiled
    """dx: max pooling routes each gradient to its window's winner (arg); average pooling
    spreads it evenly, 1/(kh*kw), over the window."""
    N, C, OH, OW = dy.shape
    dx = np.zeros((N, C, H * W), dy.dtype)
    scale = 1.0 / (kh * kw)
    for t in prange(N * C):
        n = t // C
        c = t % C
        for oh in range(OH):
            for ow in range(OW):
                if is_max:
                    dx[n, c, arg[n, c, oh, ow]] += dy[n, c, oh, ow]
                else:
                    h0 = oh * sh - ph
                    w0 = ow * sw - pw
                    g = dy[n, c, oh, ow] * scale
                    for h in range(max(h0, 0), min(h0 + kh, H)):
                        for w in range(max(w0, 0), min(w0 + kw, W)):
                            dx[n, c, h * W + w] += g
    return dx.reshape(N, C, H, W)


_NO_ARG = np.empty((0, 0, 0, 0), np.int64)


def max_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> tuple[np.ndarray, np.ndarray]:
    """(y, argmax): each output the largest value of its window (padding counts as -inf);
    argmax holds its flat index h*W + w within the (n, c) input plane, int64."""
    OH, OW = _out_hw(x.shape[2], x.shape[3], kernel_size, stride, padding)
    return _pool(_c(x), *kernel_size, *stride, *padding, OH, OW, True)


def max_pool2d_backward(
    grad_out: np.ndarray, argmax: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient goes to the input that won its window (local gradient 1, others 0)."""
    return _unpool(_c(grad_out), _c(argmax.astype(np.int64, copy=False)), input_shape[2], input_shape[3],
                   *kernel_size, *stride, *padding, True)


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntPair, stride: IntPair, padding: IntPair) -> np.ndarray:
    """y: the mean of each window, padding counted as zeros (count_include_pad=True)."""
    OH, OW = _out_hw(x.shape[2], x.shape[3], kernel_size, stride, padding)
    return _pool(_c(x), *kernel_size, *stride, *padding, OH, OW, False)[0]


def avg_pool2d_backward(
    grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntPair, stride: IntPair, padding: IntPair
) -> np.ndarray:
    """dx: each output's gradient spread evenly, 1/(kh*kw), over its window."""
    return _unpool(_c(grad_out), _NO_ARG, input_shape[2], input_shape[3], *kernel_size, *stride, *padding, False)
