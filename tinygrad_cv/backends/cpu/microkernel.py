"""The direct convolution's inner kernel: one tile of outputs summed in vector registers.

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
            dt = signature.args[0].dtype
            fty, nbytes = context.get_value_type(dt), dt.bitwidth // 8
            lanes = VECTOR_BYTES // nbytes
            vty, i64, i32 = ir.VectorType(fty, lanes), ir.IntType(64), ir.IntType(32)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3),
                                                 f"llvm.fma.v{lanes}f{dt.bitwidth}")
            undef = ir.Constant(vty, ir.Undefined)
            splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            # one alloca per sum: LLVM promotes them to registers (nothing else takes their address)
            sums = [cgutils.alloca_once_value(builder, ir.Constant(vty, [ir.Constant(fty, 0.0)] * lanes))
                    for _ in range(OCB * NV)]

            def at(ptr, index):                   # a vector pointer at element ``index`` of a flat array
                return builder.bitcast(builder.gep(ptr, [index]), vty.as_pointer())

            with cgutils.for_range(builder, n_taps) as loop:
                t = loop.index
                base = builder.add(builder.load(builder.gep(so_a.data, [builder.add(so_base, t)])), s_base)
                x = [builder.load(at(src_a.data, builder.add(base, ir.Constant(i64, v * lanes))), align=nbytes)
                     for v in range(NV)]
                w_row = builder.add(w_base, builder.mul(t, ir.Constant(i64, OCB)))
                for o in range(OCB):
                    w = builder.load(builder.gep(wt_a.data, [builder.add(w_row, ir.Constant(i64, o))]))
                    wv = builder.shuffle_vector(builder.insert_element(undef, w, ir.Constant(i32, 0)), undef, splat)
                    for v in range(NV):
                        s = sums[o * NV + v]
                        builder.store(builder.call(fma, [wv, x[v], builder.load(s)]), s)
            for o in range(OCB):
                row = builder.add(a_off, builder.mul(a_stride, ir.Constant(i64, o)))
                for v in range(NV):
                    builder.store(builder.load(sums[o * NV + v]),
                                  at(acc_a.data, builder.add(row, ir.Constant(i64, v * lanes))), align=nbytes)
            return context.get_dummy_value()
        return sig, codegen
