"""What every numba CPU kernel file shares: compile flags, the array normaliser, scratch buffers."""
from __future__ import annotations

import numpy as np
from numba import config, njit, types
from numba.extending import intrinsic

# cache=True: compiled once per dtype and array kind, kept on disk next to the source.
# Every kernel is serial and releases the GIL (nogil=True); threads.parallel_for shares its
# outer loop out over our own threads. No kernel uses numba's parallel=True: that costs 2-3 s
# more compile per kernel on a cold cache, and numba's OpenMP workers spin after each call
# (under load on 2 cores a ResNet layer ran 9x slower until OMP_WAIT_POLICY=PASSIVE was set,
# an environment variable a library must not need).
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
SERIAL = dict(cache=True, nogil=True, fastmath=FASTMATH)

# LLVM vectorizes with 256-bit registers on every AVX-512 CPU from Skylake-X on (its tuning for
# them "prefers" 256 bits, against the clock drop that 512-bit code caused on the first of them),
# so a float32 loop does 8 lanes a step where the hardware does 16. A kernel that calls
# wide_vectors() is compiled preferring 512 bits: only that function, without touching numba's
# settings for anyone else; on a CPU without AVX-512 nothing changes. One thread, forward of
# 8x64x56x56 * 64 3x3 pad 1: 256-bit 47 GFLOP/s, 512-bit 76 (OpenBLAS's sgemm: 149).
if config.DISABLE_JIT:
    def wide_vectors() -> None:
        """No effect: numba's JIT is off, the kernels run as Python."""
else:
    @intrinsic
    def wide_vectors(typingctx):
        """Compile the calling kernel for 512-bit vectors where the CPU has them."""
        def codegen(context, builder, signature, args):
            # llvmlite's attribute set accepts only the flag attributes it knows; this one is a
            # key="value" string attribute, which LLVM reads per function
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
            return context.get_dummy_value()
        return types.void(), codegen

# Reused scratch buffers (im2col's column matrix, its gradient): allocating tens of MB per call
# costs a page fault per 4 KiB touched, as much as the im2col itself on the big layers.
_scratch: dict[str, np.ndarray] = {}


def buffer(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A scratch array of ``shape`` named ``name``, reused from call to call (contents undefined)."""
    size = int(np.prod(shape))
    key = name + np.dtype(dtype).str
    buf = _scratch.get(key)
    if buf is None or buf.size < size:
        buf = _scratch[key] = np.empty(size, dtype)
    return buf[:size].reshape(shape)


def c_array(a: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """C-contiguous, writable and of ``dtype``: numba compiles a separate kernel for each array
    layout and for read-only arrays, so everything handed to a kernel is normalised to one kind.
    Copies only when it has to."""
    if dtype is not None and a.dtype != dtype:
        return np.ascontiguousarray(a, dtype=dtype)
    if a.flags.c_contiguous and a.flags.writeable:
        return a
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


@njit(inline="always", cache=True)
def valid_range(j: int, pad: int, stride: int, size: int, out_size: int) -> tuple[int, int]:
    """Output positions o with 0 <= o*stride + j - pad < size, as [lo, hi)."""
    lo = max(0, (pad - j + stride - 1) // stride)
    hi = min(out_size, (size - 1 + pad - j) // stride + 1)
    return lo, max(lo, hi)
