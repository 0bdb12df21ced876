"""backends/cpu/threads.py's parallel_for and gemm.py's split matrix product."""
from __future__ import annotations

import numpy as np
import numba
import pytest

from tinygrad_cv.backends.cpu import gemm, threads


@pytest.fixture
def two_threads():
    before = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 33])
@pytest.mark.parametrize("per_thread", [1, 4])
def test_parallel_for_covers_every_index_once(two_threads, n, per_thread):
    seen = []
    threads.parallel_for(lambda lo, hi, out: out.extend(range(lo, hi)), n, seen, pieces_per_thread=per_thread)
    assert sorted(seen) == list(range(n))


def test_parallel_for_hands_errors_back(two_threads):
    def boom(lo, hi):
        if lo > 0:
            raise ValueError("piece failed")
    with pytest.raises(ValueError, match="piece failed"):
        threads.parallel_for(boom, 8)
    out = []
    threads.parallel_for(lambda lo, hi: out.append(hi - lo), 8)   # the pool still works after it
    assert sum(out) == 8


@pytest.mark.parametrize("shape", [(64, 300, 40), (20, 300, 500)], ids=str)
@pytest.mark.parametrize("transposed", [False, True])
def test_split_matmul_matches_numpy(two_threads, monkeypatch, shape, transposed):
    monkeypatch.setattr(gemm, "_SPLIT_FLOPS", 0)                    # split even these small products
    M, K, N = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((N, K)).astype(np.float32).T if transposed else rng.standard_normal((K, N)).astype(np.float32)
    out = np.empty((M, N), np.float32)
    gemm.matmul(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)


def test_small_work_stays_on_the_calling_thread(two_threads):
    import threading
    who = set()
    threads.parallel_for(lambda lo, hi: who.add(threading.get_ident()), 8, work=10)
    assert who == {threading.get_ident()}
