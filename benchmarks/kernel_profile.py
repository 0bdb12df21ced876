"""python benchmarks/kernel_profile.py [lenet5|resnet18] [--threads N] [--steps K]: where one
training step's time goes, kernel by kernel.

Every ``parallel_for`` call of the numba backend (threads.py) is timed, keyed by the kernel it
runs, and so is every BLAS product of the GEMM route (gemm.matmul); what is left of the step is
Python, NumPy outside the kernels, and the linear layers. The step is the benchmark's own
(tinygrad_cv.bench), in one process, after warm-up steps; ms per step. Comparing the same
kernel at --threads 1 and 2 shows which ones gain from the second core. Not a fair engine
comparison (that is run_all.py); a map for finding the next thing to speed up.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="lenet5", choices=("lenet5", "resnet18"))
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all cores)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: an epoch / 10)")
    args = ap.parse_args(argv)

    import numba
    import numpy as np
    if args.threads:
        numba.set_num_threads(args.threads)
    from tinygrad_cv import bench
    from tinygrad_cv.backends.cpu import direct, elementwise, gemm, norm, pool, threads, upsample, rownorm

    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter = collections.Counter()
    run = threads.parallel_for

    def timed_parallel_for(fn, n, *a, **k):
        t = time.perf_counter()
        run(fn, n, *a, **k)
        spent[fn.__name__] += time.perf_counter() - t
        calls[fn.__name__] += 1
    for module in (threads, direct, elementwise, gemm, norm, pool, upsample, rownorm):
        module.parallel_for = timed_parallel_for    # (optim's one-pass updates look it up in threads)
    product = gemm.matmul

    def timed_matmul(a, b, out):
        t = time.perf_counter()
        product(a, b, out)
        spent["BLAS product"] += time.perf_counter() - t
        calls["BLAS product"] += 1
        return out
    gemm.matmul = timed_matmul
    inner = {"_mm_rows", "_mm_cols"}               # a split product's pieces, inside "BLAS product"

    step = bench._trainer(args.model, "tinygrad_cv", None)
    if args.model == "lenet5":
        batches = bench.lenet_batches(0)
        steps = args.steps or len(batches)
    else:
        rng = np.random.default_rng(0)
        batches = [(rng.standard_normal((bench.RESNET_BATCH, 3, 32, 32)).astype(np.float32),
                    rng.integers(0, bench.RESNET_CLASSES, bench.RESNET_BATCH)) for _ in range(4)]
        steps = args.steps or 10
    for i in range(min(len(batches), 10) if args.model == "resnet18" else len(batches)):
        step(*batches[i % len(batches)])           # warm-up: compile or load, fill the caches
    spent.clear()
    calls.clear()
    t = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    total = (time.perf_counter() - t) / steps * 1e3
    in_kernels = sum(v for k, v in spent.items() if k not in inner) / steps * 1e3
    print(f"{args.model}, {numba.get_num_threads()} threads: {total:.2f} ms a step, "
          f"{in_kernels:.2f} in kernels and BLAS, {total - in_kernels:.2f} elsewhere")
    for name, s in sorted(spent.items(), key=lambda kv: -kv[1]):
        note = "  (inside BLAS product)" if name in inner else ""
        print(f"  {name:24s} {s / steps * 1e3:8.3f} ms  {calls[name] / steps:5.1f} calls{note}")


if __name__ == "__main__":
    main()
