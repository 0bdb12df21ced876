"""backends/cpu/common.py's wide_vectors(): the calling kernel alone is compiled for 512-bit vectors."""
from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
import pytest
from numba import config, njit

from tinygrad_cv.backends.cpu.common import FASTMATH, wide_vectors

pytestmark = pytest.mark.skipif(config.DISABLE_JIT, reason="compiled code only")


def _axpy_pair():
    @njit(cache=False, fastmath=FASTMATH)
    def wide(y, a, x):
        wide_vectors()
        for i in range(x.size):
            y[i] += a * x[i]

    @njit(cache=False, fastmath=FASTMATH)
    def plain(y, a, x):
        for i in range(x.size):
            y[i] += a * x[i]

    x = np.arange(100, dtype=np.float32)
    for f in (wide, plain):
        y = np.ones(100, np.float32)
        f(y, np.float32(2), x)
        np.testing.assert_array_equal(y, 1 + 2 * x)     # the same sums either way
    return wide, plain


def test_only_the_calling_kernel_prefers_512_bit_vectors():
    wide, plain = _axpy_pair()
    attr = '"prefer-vector-width"="512"'
    assert attr in wide.inspect_llvm(wide.signatures[0])
    assert attr not in plain.inspect_llvm(plain.signatures[0])


@pytest.mark.skipif("+avx512f" not in llvm.get_host_cpu_features().flatten(), reason="needs AVX-512")
def test_an_avx512_cpu_gets_zmm_registers():
    wide, plain = _axpy_pair()
    assert "zmm" in wide.inspect_asm(wide.signatures[0])
    assert "zmm" not in plain.inspect_asm(plain.signatures[0])   # LLVM's default tuning: 256 bits
