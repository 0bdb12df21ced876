"""Who uses the cores: numba's kernels own them, NumPy's BLAS runs in the calling thread.

numba's parallel kernels already use every core. If NumPy's BLAS keeps its own pool of as
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
