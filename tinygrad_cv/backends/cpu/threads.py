"""Who uses the cores: our kernels own them, NumPy's BLAS runs in the calling thread.

Our kernels already use every core (parallel_for, below). If NumPy's BLAS keeps its own pool of as
many threads, the two pools spin-wait for work on the same cores after every call: on the
2-core development machine a LeNet-5 epoch took 3.2 s instead of 0.6 s, and a ResNet-18 step
2.1 s instead of 0.1 s (OPENBLAS_NUM_THREADS=1 fixed both, but no user should have to know
that). So the first time the numba backend is used, BLAS is limited to one thread through
threadpoolctl; no environment variable is read or written.

Measured and rejected (benchmarks/README.md): raising BLAS to 2 threads around the big conv
products only (switching costs more than it wins: ResNet-18 step 0.47 s), and splitting
those products by rows over our own Python threads (slower than one thread on this machine).
"""
from __future__ import annotations

import os
import threading
import time

import numba
import numpy as np

from .atomics import finish_and_watch, wait_change

_arranged = False
_lock = threading.Lock()


def arrange() -> bool:
    """Limit NumPy's BLAS to one thread, once; False if threadpoolctl is missing (BLAS untouched)."""
    global _arranged
    with _lock:
        if not _arranged:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                return False
            threadpool_limits(limits=1, user_api="blas")
            _arranged = True
    return True


# -- a small pool of our own threads for the serial (nogil) kernels ------------------------------
# A numba ``parallel=True`` kernel costs 2-3 s more to compile than the same loop serial (the
# parfor machinery, per kernel), which a cold first run pays for every kernel. The kernels on
# LeNet's path are therefore compiled serial with nogil=True and run over contiguous pieces of
# their outer loop on these threads.
#
# The hand-off. A thread that sleeps on a lock costs 15-100 us to wake on the development VM, and
# so does a thread that has to wait for the GIL (CPython parks it on a condition variable): a
# hand-off that slept twice and waited for the GIL twice cost ~60 us, as long as LeNet's ReLU
# itself. So the hand-off never sleeps while work keeps coming (benchmarks/handoff.py):
# - after a job a worker watches its "post" flag for IDLE_WATCH_US, in nogil code
#   (atomics.finish_and_watch), and only then sleeps on its ``go`` lock;
# - when it sees a post it keeps watching for GIL_GRACE_US more, so that the caller, who posted
#   holding the GIL, is inside its own piece (GIL released) when the worker asks for the GIL;
# - it writes its "done" flag from nogil code too, and the caller watches that flag (nogil) for
#   up to DONE_WATCH_US before it sleeps on the worker's ``done`` lock.
# The locks stay the truth (posting releases ``go`` and finishing releases ``done``; the flags
# only say when taking them will not block), so a watch that times out costs only the old sleep.
# The grace must outlast the caller's Python between the post and its own kernel (taking its
# piece, numba's dispatch of the kernel's arguments). With 6 us the worker still found the GIL
# held and slept on it 3-7 times a layer call; with 20 us, 1-3 times. One process, the two
# graces in alternate calls or steps, medians of the per-pair ratios (20 us / 6 us): LeNet-5
# training step 0.952, ResNet-18 step 0.956, the benchmark's conv rows 0.96-0.99 (the 56x56
# one 1.00), and a lone ReLU of 150,000 to 2,000,000 values 0.998-0.999 (benchmarks/README.md).
IDLE_WATCH_US = 300.0
DONE_WATCH_US = 1000.0
GIL_GRACE_US = 20.0
_LINE = 8                                   # int64 flags a cache line apart: one line per flag


class _Worker:
    """One thread that runs a job once ``go`` is released and releases ``done`` after it (two bare
    locks, no futures or queues), watching flags in between as described above."""

    def __init__(self, k: int, reads_per_us: float) -> None:
        self.post, self.done_at = _LINE * (2 * k + 1), _LINE * (2 * k + 2)
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.job: tuple = ()
        self.seq = 0
        self.error: BaseException | None = None
        self.idle_reads = int(IDLE_WATCH_US * reads_per_us)
        self.done_reads = int(DONE_WATCH_US * reads_per_us)
        self.grace_reads = int(GIL_GRACE_US * (1 + k / 2) * reads_per_us)   # later workers after earlier ones
        threading.Thread(target=self._loop, name="tgcv-kernels", daemon=True).start()

    def _loop(self) -> None:
        seen = 0
        while True:
            finish_and_watch(_flags, self.done_at, seen, self.post, self.idle_reads, self.grace_reads)
            self.go.acquire()
            seen = int(_flags[self.post])
            fn, args = self.job
            try:
                fn(*args)
            except BaseException as e:  # handed back to the caller
                self.error = e
            self.done.release()

    def start(self, fn, *args) -> None:
        self.job = (fn, args)
        self.seq += 1
        _flags[self.post] = self.seq
        self.go.release()

    def wait(self) -> None:
        wait_change(_flags, self.done_at, self.seq - 1, self.done_reads)
        self.done.acquire()
        if self.error is not None:
            e, self.error = self.error, None
            raise e


def _reads_per_us() -> float:
    """How many flag reads a watch makes per microsecond on this machine: the fastest of seven
    short timings, since being descheduled during one only ever makes it slower, and a rate too
    low makes every watch too short (a tenth of the true rate: a LeNet-5 epoch 609-689 ms
    against 515-626). 0, so that nothing is watched, when numba's JIT is off (NUMBA_DISABLE_JIT=1,
    its debugging mode)."""
    if numba.config.DISABLE_JIT:
        return 0.0
    wait_change(_flags, 0, 0, 10)                                # compiled or loaded from the cache
    n, best = 50_000, float("inf")
    for _ in range(7):
        t = time.perf_counter()
        wait_change(_flags, 0, 0, n)
        best = min(best, time.perf_counter() - t)
    return n / max(1e-9, best * 1e6)


_workers: list[_Worker] = []
_call_lock = threading.Lock()
_flags = np.zeros(0, np.int64)               # the workers' post and done flags (made by _grow)


def _forget_workers() -> None:
    """In a child made by fork: the parent's worker threads do not exist here, so start afresh
    (a post to one of them would wait for ever)."""
    global _flags, _call_lock
    _workers.clear()
    _flags = np.zeros(0, np.int64)
    _call_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_workers)


def num_threads() -> int:
    """Threads a kernel may use: numba's setting (numba.set_num_threads), all cores by default."""
    return numba.get_num_threads()


class _Pieces:
    """The pieces of one parallel_for call, each taken by whichever thread is free first (the
    caller included): a worker that wakes late, or whose core another process holds, takes fewer
    pieces instead of holding everyone up (with fixed halves, a neighbour's process on one core
    made the caller wait for a descheduled worker on every call). Taking a piece is Python, so it
    needs the GIL, and two threads asking for it at once cost one of them a wait of ~20 us: hence
    one piece per thread by default (a LeNet-5 epoch: 4 pieces per thread 606-671 ms, 1 piece
    566-594 ms, alternating processes on the idle machine)."""

    __slots__ = ("fn", "args", "edges", "next", "lock")

    def __init__(self, fn, args, edges):
        self.fn, self.args, self.edges, self.next, self.lock = fn, args, edges, 0, threading.Lock()

    def run(self) -> None:
        edges, last = self.edges, len(self.edges) - 1
        while True:
            with self.lock:
                i = self.next
                self.next = i + 1
            if i >= last:
                return
            self.fn(edges[i], edges[i + 1], *self.args)


# Work (about one value read or written each) below which a call stays on the calling thread. A
# hand-off costs 10-20 us even when the worker is watching (benchmarks/handoff.py: a ReLU of
# 75,264 values 9.9 us on one thread, 16.2 on two; 150,000 values, 300,000 of work, 18.5 and 20.1;
# 301,056 values 72.9 and 29.9); ResNet-18 at CIFAR size makes ~120 calls a step below it.
INLINE_WORK = 131_072


def _grow(n: int) -> None:
    """At least n workers (the caller holds _call_lock). The flags are made once, for as many
    workers as numba allows threads (numba.set_num_threads can only lower that count)."""
    global _flags
    if not _flags.size:
        _flags = np.zeros(_LINE * (2 * max(n, numba.config.NUMBA_NUM_THREADS) + 1), np.int64)
    rate = _reads_per_us()
    while len(_workers) < n:
        _workers.append(_Worker(len(_workers), rate))


def parallel_for(fn, n: int, *args, pieces_per_thread: int = 1, work: int | None = None) -> None:
    """fn(lo, hi, *args) over contiguous pieces [lo, hi) that cover range(n), about
    ``pieces_per_thread`` per thread (see _Pieces), each taken by the next free thread (the caller is one of
    them). ``fn`` must release the GIL (numba nogil=True, or BLAS) for this to run in parallel,
    and must accept any split of range(n). ``work``: the call's size in values touched, if known;
    under INLINE_WORK it runs here as one piece. Calls from several user threads at once run one
    after the other."""
    t = min(n, num_threads())
    if t <= 1 or (work is not None and work < INLINE_WORK):
        fn(0, n, *args)
        return
    k = min(n, t * max(1, pieces_per_thread))
    job = _Pieces(fn, args, [n * i // k for i in range(k + 1)])
    with _call_lock:
        if len(_workers) < t - 1:
            _grow(t - 1)
        for i in range(1, t):
            _workers[i - 1].start(job.run)
        try:
            job.run()
        finally:
            for i in range(1, t):
                _workers[i - 1].wait()
