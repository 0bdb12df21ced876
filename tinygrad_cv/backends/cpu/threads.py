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

import threading

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
# their outer loop on these threads; they sleep on a lock between calls, so nothing spins.

class _Worker:
    """One thread that runs a job when ``go`` is released and releases ``done`` after it: two bare
    locks, no futures or queues (a hand-off costs about half of ThreadPoolExecutor's)."""

    def __init__(self) -> None:
        self.go, self.done = threading.Lock(), threading.Lock()
        self.go.acquire()
        self.done.acquire()
        self.job: tuple = ()
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, name="tgcv-kernels", daemon=True).start()

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            fn, args = self.job
            try:
                fn(*args)
            except BaseException as e:  # handed back to the caller
                self.error = e
            self.done.release()

    def start(self, fn, *args) -> None:
        self.job = (fn, args)
        self.go.release()

    def wait(self) -> None:
        self.done.acquire()
        if self.error is not None:
            e, self.error = self.error, None
            raise e


_workers: list[_Worker] = []
_call_lock = threading.Lock()


def num_threads() -> int:
    """Threads a kernel may use: numba's setting (numba.set_num_threads), all cores by default."""
    import numba
    return numba.get_num_threads()


class _Pieces:
    """The pieces of one parallel_for call, handed out one at a time to whichever thread is free
    (the caller included): a worker that wakes late, or whose core another process holds, takes
    fewer pieces instead of holding everyone up. On the shared 2-core machine, with a neighbour's
    process on one core, fixed halves made the caller wait for a descheduled worker on every call
    (a ResNet-18 step 151 ms against 130 ms without the second thread)."""

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


# Work (about one value read or written each) below which a call stays on the calling thread: a
# hand-off to a sleeping worker costs 15-40 us on the development machine, as much as a 2x2 pool
# of 30,000 values; ResNet-18 at CIFAR size makes ~120 such calls a step (layer4's maps are 1x1).
INLINE_WORK = 32_768


def parallel_for(fn, n: int, *args, pieces_per_thread: int = 4, work: int | None = None) -> None:
    """fn(lo, hi, *args) over contiguous pieces [lo, hi) that cover range(n), about
    ``pieces_per_thread`` per thread, each taken by the next free thread (the caller is one of
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
        while len(_workers) < t - 1:
            _workers.append(_Worker())
        for i in range(1, t):
            _workers[i - 1].start(job.run)
        try:
            job.run()
        finally:
            for i in range(1, t):
                _workers[i - 1].wait()
