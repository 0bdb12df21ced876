"""The convolutions' inner kernels: one tile of outputs summed in vector registers.

A tile is OCB output channels times TILE consecutive positions of the "wide" output run
(cpu/direct.py). For every tap t = (c, i, j) of the filters, in order,

    acc[o, k] += W[o, t] * src[so[t] + k]        for the OCB channels o and TILE positions k

and only after the last tap are the sums stored. The OCB x TILE sums live in vector registers
for the whole loop over the taps: per tap the kernel loads TILE source values once (NV vector
loads), broadcasts OCB weights and issues OCB * NV fused multiply-adds, with no accumulator
traffic through memory. With AVX-512, OCB = 8 and NV = 3 (24 of the 32 zmm registers hold
sums); with 16 registers (AVX2) OCB = 4 and NV = 2.

numba has no vector types, so the loop is written in LLVM IR (an ``@intrinsic``): LLVM's own
vectorizer only vectorizes innermost loops, and here the vectorized axis (positions) must be
outside the tap loop for the sums to stay in registers. One thread, forward of 8x64x56x56 *
64 3x3 pad 1 (1.85 Gflop): 23 ms with the accumulators in memory (cpu/direct.py's older
_mac4x4, 4x4 blocks), 13.4 ms with this tile (138 Gflop/s; OpenBLAS's sgemm reaches 149).

``gather_tile`` is the same loop with both operands read through offset tables: GQ rows of
scalars (any positions of an array) times GNV vectors of a second array, stored at any row
offsets. cpu/phases.py sums a strided layer's input gradient with it; both tiles are emitted
by one function (_emit_tile).
"""
from __future__ import annotations

import llvmlite.binding as llvm
from llvmlite import ir
from numba import config, types
from numba.core import cgutils
from numba.extending import intrinsic

_features = config.CPU_FEATURES if config.CPU_FEATURES is not None else llvm.get_host_cpu_features().flatten()
WIDE = "+avx512f" in _features.split(",")
VECTOR_BYTES = 64 if WIDE else 32
OCB, NV = (8, 3) if WIDE else (4, 2)


def tile_positions(itemsize: int) -> int:
    """TILE: positions one tile covers, NV vectors of the dtype (float32 with AVX-512: 48)."""
    return NV * VECTOR_BYTES // itemsize


# The gathered tile (cpu/phases.py, the GEMM route's input gradient): GQ positions x GNV
# vectors of channels. Both operands come through offset tables, so a tile can sum positions
# that are not evenly spaced (one phase of a strided layer's input) and write them anywhere.
GQ, GNV = (6, 4) if WIDE else (4, 2)


def gather_channels(itemsize: int) -> int:
    """CB: channels one gathered tile covers, GNV vectors of the dtype (float32 with AVX-512: 64)."""
    return GNV * VECTOR_BYTES // itemsize


def _emit_tile(context, builder, dt, rows, nv, n_taps, vectors_at, scalar_at, store_at):
    """The loop both tiles share: rows x nv vector sums held in registers over n_taps steps.
    Step t loads nv vectors from the element pointers vectors_at(t, lanes) and one scalar per
    row, scalar_at(t, r), and adds each broadcast scalar x vector to its row's sums; after the
    last step sum (r, v) is stored at the element pointer store_at(r, v, lanes)."""
    fty, nbytes = context.get_value_type(dt), dt.bitwidth // 8
    lanes = VECTOR_BYTES // nbytes
    vty, i32 = ir.VectorType(fty, lanes), ir.IntType(32)
    fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                         f"llvm.fma.v{lanes}f{dt.bitwidth}")
    undef = ir.Constant(vty, ir.Undefined)
    splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
    # one alloca per sum: LLVM promotes them to registers (nothing else takes their address)
    sums = [cgutils.alloca_once_value(builder, ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes))
            for _ in range(rows * nv)]
    with cgutils.for_range(builder, n_taps) as loop:
        t = loop.index
        x = [builder.load(builder.bitcast(p, vty.as_pointer()), align=nbytes) for p in vectors_at(t, lanes)]
        for r in range(rows):
            wv = builder.shuffle_vector(builder.insert_element(undef, scalar_at(t, r), ir.Constant(i32, 0)),
                                        undef, splat)
            for v in range(nv):
                s = sums[r * nv + v]
                builder.store(builder.call(fma, [wv, x[v], builder.load(s)]), s)
    for r in range(rows):
        for v in range(nv):
            builder.store(builder.load(sums[r * nv + v]), builder.bitcast(store_at(r, v, lanes), vty.as_pointer()),
                          align=nbytes)


def _at(builder, ptr, *indices):
    """&ptr[sum of indices] (i64 values)."""
    index = indices[0]
    for i in indices[1:]:
        index = builder.add(index, i)
    return builder.gep(ptr, [index])


_I64 = ir.IntType(64)


def _c(v: int):
    return ir.Constant(_I64, v)


if config.DISABLE_JIT:
    def conv_tile(acc, a_off, a_stride, src, s_base, so, so_base, wt, w_base, T):
        """The tile as plain Python (numba's JIT is off): acc[a_off + o*a_stride + k] = sum over
        t < T of wt[w_base + t*OCB + o] * src[so[so_base + t] + s_base + k]."""
        n = NV * VECTOR_BYTES // acc.itemsize
        for o in range(OCB):
            for k in range(n):
                s = 0.0
                for t in range(T):
                    s += wt[w_base + t * OCB + o] * src[so[so_base + t] + s_base + k]
                acc[a_off + o * a_stride + k] = s

    def gather_tile(c, cpos, a, apos, aoff, b, boff, q0, t0, T, c0):
        """The gathered tile as plain Python: c[cpos[q0 + q] + c0 + k] = sum over t < T of
        a[apos[q0 + q] + aoff[t0 + t]] * b[boff[t0 + t] + c0 + k]."""
        n = gather_channels(c.itemsize)
        for q in range(GQ):
            for k in range(n):
                s = 0.0
                for t in range(T):
                    s += a[apos[q0 + q] + aoff[t0 + t]] * b[boff[t0 + t] + c0 + k]
                c[cpos[q0 + q] + c0 + k] = s
else:
    @intrinsic
    def conv_tile(typingctx, acc, a_off, a_stride, src, s_base, so, so_base, wt, w_base, T):
        """acc[a_off + o*a_stride + k] = sum over t < T of wt[w_base + t*OCB + o] *
        src[so[so_base + t] + s_base + k], for o < OCB and k < TILE (all flat arrays; stored,
        not added)."""
        sig = types.void(acc, a_off, a_stride, src, s_base, so, so_base, wt, w_base, T)

        def codegen(context, builder, signature, args):
            acc_a, src_a, so_a, wt_a = (context.make_array(signature.args[i])(context, builder, args[i])
                                        for i in (0, 3, 5, 7))
            a_off, a_stride, s_base, so_base, w_base, n_taps = (args[i] for i in (1, 2, 4, 6, 8, 9))

            def vectors_at(t, lanes):
                base = builder.add(builder.load(_at(builder, so_a.data, so_base, t)), s_base)
                return [_at(builder, src_a.data, base, _c(v * lanes)) for v in range(NV)]

            def scalar_at(t, o):
                return builder.load(_at(builder, wt_a.data, w_base, builder.mul(t, _c(OCB)), _c(o)))

            def store_at(o, v, lanes):
                return _at(builder, acc_a.data, a_off, builder.mul(a_stride, _c(o)), _c(v * lanes))

            _emit_tile(context, builder, signature.args[0].dtype, OCB, NV, n_taps, vectors_at, scalar_at, store_at)
            return context.get_dummy_value()
        return sig, codegen

    @intrinsic
    def gather_tile(typingctx, c, cpos, a, apos, aoff, b, boff, q0, t0, T, c0):
        """c[cpos[q0 + q] + c0 + k] = sum over t < T of a[apos[q0 + q] + aoff[t0 + t]] *
        b[boff[t0 + t] + c0 + k], for q < GQ and k < CB (all flat arrays; stored, not added)."""
        sig = types.void(c, cpos, a, apos, aoff, b, boff, q0, t0, T, c0)

        def codegen(context, builder, signature, args):
            c_a, cpos_a, a_a, apos_a, aoff_a, b_a, boff_a = (
                context.make_array(signature.args[i])(context, builder, args[i]) for i in range(7))
            q0, t0, n_taps, c0 = args[7:]
            rows = [builder.gep(a_a.data, [builder.load(_at(builder, apos_a.data, q0, _c(q)))]) for q in range(GQ)]

            def vectors_at(t, lanes):
                base = builder.add(builder.load(_at(builder, boff_a.data, t0, t)), c0)
                return [_at(builder, b_a.data, base, _c(v * lanes)) for v in range(GNV)]

            def scalar_at(t, q):
                return builder.load(builder.gep(rows[q], [builder.load(_at(builder, aoff_a.data, t0, t))]))

            def store_at(q, v, lanes):
                return _at(builder, c_a.data, builder.load(_at(builder, cpos_a.data, q0, _c(q))), c0, _c(v * lanes))

            _emit_tile(context, builder, signature.args[0].dtype, GQ, GNV, n_taps, vectors_at, scalar_at, store_at)
            return context.get_dummy_value()
        return sig, codegen
