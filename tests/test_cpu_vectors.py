"""backends/cpu: wide_vectors() (512-bit code for one kernel) and the conv tile in vector registers."""
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


_CONV_CHECK = """
import numpy as np
from tinygrad_cv.backends import reference as ref
from tinygrad_cv.backends.cpu import direct, microkernel, phases
assert (microkernel.OCB, microkernel.NV) == {shape}, (microkernel.OCB, microkernel.NV)
assert (microkernel.GQ, microkernel.GNV) == {gathered}, (microkernel.GQ, microkernel.GNV)
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    # the wide-run route (one ungrouped, one grouped with a padding wider than the filter) and
    # the batch-innermost route (16 samples on 2 threads, small maps)
    assert direct._batch_last(16, 6, 6, 3, 3, (0, 0), 1) and not direct._batch_last(2, 7, 6, 3, 3, (1, 1), 1)
    for n, c, h, w_, o, k, p, g in ((2, 3, 7, 6, 9, 3, 1, 1), (1, 4, 5, 5, 6, 2, 2, 2), (16, 2, 6, 6, 5, 3, 0, 1)):
        x = rng.standard_normal((n, c, h, w_)).astype(dtype)
        w = rng.standard_normal((o, c // g, k, k)).astype(dtype)
        b = rng.standard_normal(o).astype(dtype)
        y = direct.forward(x, w, b, (p, p), g)
        np.testing.assert_allclose(y, ref.conv2d_forward(x, w, b, (1, 1), (p, p), g), rtol=1e-4, atol=1e-4)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, _ = direct.backward(dy, x, w, (p, p), g, True, False)
        np.testing.assert_allclose(dx, ref.conv2d_backward(dy, x, w, (1, 1), (p, p), g)[0], rtol=1e-4, atol=1e-4)
    # the gathered tile: a strided layer's input gradient by phases; 70 channels fill more than one
    # tile of channels and leave the last part-filled
    x = rng.standard_normal((2, 70, 7, 6)).astype(dtype)
    w = rng.standard_normal((5, 70, 3, 3)).astype(dtype)
    dy = rng.standard_normal((2, 5, 4, 3)).astype(dtype)
    dY = np.ascontiguousarray(dy.transpose(1, 0, 2, 3).reshape(5, -1))
    dx = phases.input_grad(dY, w, x.shape, (4, 3), (2, 2), (1, 1))
    np.testing.assert_allclose(dx, ref.conv2d_backward(dy, x, w, (2, 2), (1, 1), 1)[0], rtol=1e-4, atol=1e-4)
print("ok")
"""


def _run_conv_check(env: dict, shape: tuple[int, int], gathered: tuple[int, int], tmp_path) -> None:
    import os
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", _CONV_CHECK.format(shape=shape, gathered=gathered)],
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "NUMBA_NUM_THREADS": "2", **env})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-3000:]


def test_the_conv_tile_without_avx512_uses_a_smaller_tile(tmp_path):
    """A CPU with 16 vector registers gets 4 x 2-vector tiles (and 4 positions x 2 vectors of
    channels for the gathered tile): the same sums as the reference
    (compiled here for this CPU's features minus AVX-512, in a fresh cache)."""
    features = ",".join(f for f in llvm.get_host_cpu_features().flatten().split(",")
                        if not f.startswith("+avx512"))
    _run_conv_check({"NUMBA_CPU_FEATURES": features}, (4, 2), (4, 2), tmp_path)


def test_the_conv_tile_runs_as_python_with_the_jit_off(tmp_path):
    """NUMBA_DISABLE_JIT=1: both tiles' plain-Python spellings give the reference's sums."""
    from tinygrad_cv.backends.cpu import microkernel
    _run_conv_check({"NUMBA_DISABLE_JIT": "1"}, (microkernel.OCB, microkernel.NV), (microkernel.GQ, microkernel.GNV),
                    tmp_path)
