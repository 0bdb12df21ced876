"""python benchmarks/handoff.py [--calls N] [--sizes 75264,600000,2000000]: what a hand-off to
our worker threads costs, against running the same kernel on the calling thread.

Each size runs ``backends/cpu/threads.parallel_for`` over the one-pass ReLU kernel, first on
one thread (numba.set_num_threads(1)), then on all cores, in one fresh process per setting,
alternating; medians over ``--calls`` calls. A size where two threads are slower than one is a
call that should stay on the caller (threads.INLINE_WORK)."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker(size: int, threads: int, calls: int) -> float:
    import numba
    import numpy as np

    numba.set_num_threads(threads)
    from tinygrad_cv.backends.cpu import elementwise
    from tinygrad_cv.backends.cpu.threads import parallel_for

    a = np.random.default_rng(0).normal(size=size).astype(np.float32)
    out = np.empty_like(a)
    for _ in range(50):
        parallel_for(elementwise._relu, a.size, a, out)
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        parallel_for(elementwise._relu, a.size, a, out)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1e6)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--sizes", default="75264,600000,2000000")
    ap.add_argument("--worker", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    cores = os.cpu_count() or 1
    print(f"parallel_for over a one-pass ReLU, median us per call over {args.calls} calls")
    print(f"{'values':>10} {'1 thread':>10} {f'{cores} threads':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        row = []
        for threads in (1, cores):
            cmd = [sys.executable, os.path.abspath(__file__), "--calls", str(args.calls),
                   "--worker", str(size), str(threads), str(args.calls)]
            row.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout))
        print(f"{size:>10} {row[0]:>10.1f} {row[1]:>11.1f}")


if __name__ == "__main__":
    main()
