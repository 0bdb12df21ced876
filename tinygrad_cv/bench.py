"""Conv and pool kernels, forward + backward: numba vs the NumPy reference vs torch.

All three run in one process, interleaved round by round, and the medians are
compared. torch (if installed) gets torch.set_num_threads(2). A short pause before
each timed call lets the other libraries' worker threads go idle, so no one pays
for another's spinning threads. Also reported: the numba kernels' first-call
(compile or cache-load) time, and a fresh process's time to import and run once
with the on-disk cache warm.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

ROWS: list[dict[str, Any]] = [
    dict(name="conv2d 64x1x28x28 * 6x1x5x5 pad 2", kind="conv", x=(64, 1, 28, 28), w=(6, 1, 5, 5), stride=1, padding=2),
    dict(name="conv2d 64x6x14x14 * 16x6x5x5", kind="conv", x=(64, 6, 14, 14), w=(16, 6, 5, 5), stride=1, padding=0),
    dict(name="conv2d 8x64x56x56 * 64x64x3x3 pad 1", kind="conv", x=(8, 64, 56, 56), w=(64, 64, 3, 3), stride=1, padding=1),
    dict(name="max_pool2d 2x2 on 64x6x28x28", kind="maxpool", x=(64, 6, 28, 28), k=2),
]

_ONCE = """
import time, numpy as np
t = time.perf_counter()
from tinygrad_cv.backends import cpu
x = np.ones((2, 1, 8, 8), np.float32); w = np.ones((2, 1, 3, 3), np.float32)
y = cpu.conv2d_forward(x, w, None, (1, 1), (1, 1), 1); cpu.conv2d_backward(y, x, w, (1, 1), (1, 1), 1)
p, a = cpu.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0)); cpu.max_pool2d_backward(p, a, x.shape, (2, 2), (2, 2), (0, 0))
print(time.perf_counter() - t)
"""


def _case(row: dict[str, Any], mod) -> Callable[[], Any]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(row["x"]).astype(np.float32)
    if row["kind"] == "conv":
        w = rng.standard_normal(row["w"]).astype(np.float32)
        b = rng.standard_normal(row["w"][0]).astype(np.float32)
        s, p = (row["stride"],) * 2, (row["padding"],) * 2
        dy = rng.standard_normal(mod.conv2d_forward(x, w, b, s, p, 1).shape).astype(np.float32)

        def run():
            mod.conv2d_forward(x, w, b, s, p, 1)
            return mod.conv2d_backward(dy, x, w, s, p, 1)
    else:
        k = (row["k"],) * 2
        dy = rng.standard_normal(mod.max_pool2d_forward(x, k, k, (0, 0))[0].shape).astype(np.float32)

        def run():
            _, arg = mod.max_pool2d_forward(x, k, k, (0, 0))
            return mod.max_pool2d_backward(dy, arg, x.shape, k, k, (0, 0))
    return run


def _torch_case(row: dict[str, Any], torch) -> Callable[[], Any]:
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    x = torch.randn(row["x"], generator=g, requires_grad=True)
    if row["kind"] == "conv":
        w = torch.randn(row["w"], generator=g, requires_grad=True)
        b = torch.randn(row["w"][0], generator=g, requires_grad=True)
        dy = torch.randn(F.conv2d(x, w, b, padding=row["padding"]).shape, generator=g)

        def run():
            y = F.conv2d(x, w, b, stride=row["stride"], padding=row["padding"])
            return torch.autograd.grad(y, (x, w, b), dy)
    else:
        dy = torch.randn(F.max_pool2d(x, row["k"]).shape, generator=g)

        def run():
            return torch.autograd.grad(F.max_pool2d(x, row["k"]), (x,), dy)
    return run


def _timed(fn: Callable[[], Any]) -> float:
    # Calls run back to back, as in a training loop (no idle gap for thread pools to doze off in).
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Time every row; returns one dict per row (times in milliseconds, ratios)."""
    t0 = time.perf_counter()
    from .backends import cpu, reference
    import_s = time.perf_counter() - t0
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
    reps = 5 if quick else 20
    results = []
    for i, row in enumerate(ROWS):
        fast, ref = _case(row, cpu), _case(row, reference)
        t = time.perf_counter()
        fast()
        first = time.perf_counter() - t + (import_s if i == 0 else 0.0)
        contenders = {"numba": fast, "numpy": ref}
        if torch is not None:
            contenders["torch"] = _torch_case(row, torch)
        for fn in contenders.values():
            fn()
        ref_reps = max(2, reps // 4) if row["kind"] == "conv" and np.prod(row["x"]) > 1e6 else reps
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for r in range(reps):
            for k, fn in contenders.items():
                if k != "numpy" or r < ref_reps:
                    times[k].append(_timed(fn))
        med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
        results.append(dict(
            name=row["name"], numba_ms=med["numba"], numpy_ms=med["numpy"], torch_ms=med.get("torch"),
            speedup_vs_numpy=med["numpy"] / med["numba"],
            vs_torch=(med["numba"] / med["torch"]) if "torch" in med else None,
            first_call_s=first,
        ))
    results.append(dict(name="cached: fresh process, import + first run", cached_process_s=_cached_process_seconds()))
    return results


def _cached_process_seconds() -> float:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", _ONCE], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def format_table(results: list[dict[str, Any]]) -> str:
    """The results as a text table: medians of forward + backward, ratios."""
    head = f"{'forward + backward (float32)':<38}{'numba ms':>10}{'numpy ms':>10}{'torch ms':>10}{'x numpy':>9}{'/ torch':>9}{'1st call s':>11}"
    lines = [head, "-" * len(head)]
    for r in results:
        if "cached_process_s" in r:
            lines.append(f"{r['name']}: {r['cached_process_s']:.2f} s")
            continue
        torch_ms = f"{r['torch_ms']:10.3f}" if r["torch_ms"] is not None else f"{'-':>10}"
        vs = f"{r['vs_torch']:9.2f}" if r["vs_torch"] is not None else f"{'-':>9}"
        lines.append(f"{r['name']:<38}{r['numba_ms']:10.3f}{r['numpy_ms']:10.2f}{torch_ms}"
                     f"{r['speedup_vs_numpy']:9.1f}{vs}{r['first_call_s']:11.2f}")
    lines.append("x numpy: how many times faster numba is than the reference; / torch: numba time over torch time")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    print(format_table(run(quick="--quick" in argv)))


if __name__ == "__main__":
    main()
