"""Who uses the cores: numba's kernels and NumPy's BLAS take turns instead of fighting.

numba's parallel kernels already use every core. If NumPy's BLAS keeps its own pool of as
many threads, the two pools spin-wait for work on the same cores after every call, and on a
2-core machine a LeNet epoch took 3.2 s instead of 0.6 s (OPENBLAS_NUM_THREADS=1 fixed it, but
no user should have to know that). So when the numba backend loads, BLAS is set to one thread
through threadpoolctl (no environment variable is touched); the big matrix products of the
GEMM convolutions are split by rows across a small pool of our own threads instead, each
running a one-thread BLAS on its block (NumPy releases the GIL in matmul). Those threads sleep
on a lock between calls, so nothing spins while numba works.
"""
from __future__ import annotations

import concurrent.futures
import threading

import numba
import numpy as np

_arranged = False
_lock = threading.Lock()
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_SPLIT_FLOPS = 4e6          # below this a product runs in one thread: a hand-off costs ~20-50 us


def arrange() -> None:
    """Limit NumPy's BLAS to one thread (once, when the numba backend is first used)."""
    global _arranged
    with _lock:
        if _arranged:
            return
        _arranged = True
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:         # optional at run time: without it, BLAS keeps its default
            return
        threadpool_limits(limits=1, user_api="blas")


_blas = None


def _blas_libs() -> list:
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas").lib_controllers
        except ImportError:
            _blas = []
    return _blas


_now = [1]


def _blas_threads(n: int) -> None:
    if _now[0] != n:
        for lib in _blas_libs():
            lib.set_num_threads(n)
        _now[0] = n


MODE = "one"


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a @ b; a product big enough to share runs on every core."""
    m, k = a.shape
    n = b.shape[1]
    if MODE == "dyn" and 2.0 * m * n * k >= _SPLIT_FLOPS:
        _blas_threads(numba.get_num_threads())
        np.matmul(a, b, out=out)
        _blas_threads(1)
        return out
    return np.matmul(a, b, out=out)
