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


def test_back_to_back_calls_each_cover_every_index_once(two_threads):
    """The hand-off without sleeping (workers watch flags between calls): 500 calls in a row,
    each adding 1 over its pieces. A call returns only once every piece has run, so right after
    call i both ends hold i (a caller that returned early would see the worker's end behind)."""
    out = np.zeros(1000, np.int64)

    def add_one(lo, hi, a):
        a[lo:hi] += 1
    for i in range(1, 501):
        threads.parallel_for(add_one, out.size, out)
        assert out[0] == out[-1] == i
    assert (out == 500).all()


def test_a_worker_that_fell_asleep_still_takes_its_piece(two_threads):
    """After a pause far longer than the watch (0.3 ms) the worker sleeps on its lock; the next
    call must wake it. The caller's piece waits until the other piece has run, so the call only
    finishes if a second thread took it."""
    import threading
    import time
    threads.parallel_for(lambda lo, hi: None, 2)                  # the worker exists
    time.sleep(0.05)
    other_done = threading.Event()
    who = {}

    def piece(lo, hi):
        who[lo] = threading.get_ident()
        if lo == 0 and who.get(1) is None:
            assert other_done.wait(5), "no second thread took the other piece"
        else:
            other_done.set()
    threads.parallel_for(piece, 2)
    assert set(who) == {0, 1} and len(set(who.values())) == 2


def test_the_pool_works_with_numbas_jit_off():
    """NUMBA_DISABLE_JIT=1 (numba's debugging mode) runs the kernels as Python, where the
    flag-watching intrinsics cannot run: the pool then watches nothing and still splits."""
    import os
    import subprocess
    import sys
    code = ("import numpy as np\nfrom tinygrad_cv.backends.cpu import threads, elementwise\n"
            "a = np.linspace(-1, 1, 300_000).astype(np.float32); out = np.empty_like(a)\n"
            "for _ in range(3):\n    threads.parallel_for(elementwise._relu, a.size, a, out)\n"
            "assert np.array_equal(out, np.maximum(a, 0)); print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "NUMBA_DISABLE_JIT": "1", "NUMBA_NUM_THREADS": "2"})
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_a_forked_child_gets_its_own_workers(two_threads):
    """After fork the parent's worker threads do not exist in the child; its kernels must still
    run (on fresh workers) instead of waiting for ever on a thread that is not there."""
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    threads.parallel_for(lambda lo, hi: None, 4)                  # the parent's workers exist
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_splits, args=(q,))
    p.start()
    p.join(60)
    if p.is_alive():                                              # hung: do not leave it behind
        p.terminate()
    assert p.exitcode == 0 and q.get(timeout=5) == list(range(8))


def _child_splits(q):
    seen = []
    threads.parallel_for(lambda lo, hi: seen.extend(range(lo, hi)), 8)
    q.put(sorted(seen))
