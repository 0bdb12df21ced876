"""The numba.cuda kernels on the CUDA simulator, against the reference, on tiny shapes.

The simulator must be chosen before numba.cuda is first imported, so the checks run
in a subprocess with NUMBA_ENABLE_CUDASIM=1.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import tinygrad_cv as tg
    import tinygrad_cv.nn.functional as F
    from tinygrad_cv import backends
    from tinygrad_cv.backends import cuda as G, reference as R

    backends.set_backend("cuda")
    rng = np.random.default_rng(0)
    for dt in (np.float32, np.float64):
        tol = 1e-5 if dt == np.float32 else 1e-12
        for n, c, h, w, o, k, s, p, g in [(1, 2, 5, 4, 2, (3, 2), (2, 1), (1, 0), 2), (1, 2, 4, 4, 2, (1, 1), (1, 1), (0, 0), 1)]:
            x = rng.standard_normal((n, c, h, w)).astype(dt)
            wt = rng.standard_normal((o, c // g, *k)).astype(dt)
            b = rng.standard_normal(o).astype(dt)
            y = G.conv2d_forward(x, wt, b, s, p, g)
            assert y.dtype == dt and np.allclose(y, R.conv2d_forward(x, wt, b, s, p, g), atol=tol)
            dy = rng.standard_normal(y.shape).astype(dt)
            for got, want in zip(G.conv2d_backward(dy, x, wt, s, p, g), R.conv2d_backward(dy, x, wt, s, p, g)):
                assert np.allclose(got, want, atol=tol)
        x = rng.standard_normal((1, 2, 5, 4)).astype(dt)
        for k, s, p in [((2, 2), (2, 2), (0, 0)), ((3, 2), (2, 1), (1, 1))]:
            y, a = G.max_pool2d_forward(x, k, s, p)
            y_ref, a_ref = R.max_pool2d_forward(x, k, s, p)
            assert np.allclose(y, y_ref) and (a == a_ref).all()
            dy = rng.standard_normal(y.shape).astype(dt)
            assert np.allclose(G.max_pool2d_backward(dy, a, x.shape, k, s, p), R.max_pool2d_backward(dy, a, x.shape, k, s, p))
            assert np.allclose(G.avg_pool2d_forward(x, k, s, p), R.avg_pool2d_forward(x, k, s, p))
            assert np.allclose(G.avg_pool2d_backward(dy, x.shape, k, s, p), R.avg_pool2d_backward(dy, x.shape, k, s, p))
    # through Tensor: the ops pick the cuda kernels
    x = tg.Tensor(rng.standard_normal((1, 1, 4, 4)), requires_grad=True)
    wt = tg.Tensor(rng.standard_normal((1, 1, 3, 3)), requires_grad=True)
    F.max_pool2d(F.conv2d(x, wt, padding=1), 2).sum().backward()
    assert x.grad.shape == (1, 1, 4, 4) and wt.grad.shape == (1, 1, 3, 3)
    print("CUDASIM-OK")
    """
)


def _run(env_extra: dict[str, str], code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_extra}
    env.pop("TGCV_BACKEND", None)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def test_cuda_kernels_on_simulator():
    """On numba's simulator; with TGCV_TEST_REAL_GPU=1 (a machine with an NVIDIA GPU), on the GPU."""
    if os.environ.get("TGCV_TEST_REAL_GPU") == "1":
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
        code = "from numba import cuda; assert cuda.is_available(), 'no GPU'\n" + SCRIPT
        r = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                           capture_output=True, text=True, timeout=300)
    else:
        r = _run({"NUMBA_ENABLE_CUDASIM": "1"}, SCRIPT)
    assert r.returncode == 0 and "CUDASIM-OK" in r.stdout, r.stderr[-3000:]


def test_cuda_unavailable_is_one_clear_line():
    code = textwrap.dedent(
        """
        from numba import cuda
        from tinygrad_cv import backends
        if cuda.is_available():
            print("HAS-GPU")
        else:
            try:
                backends.set_backend("cuda")
            except RuntimeError as e:
                print("ERR:" + str(e))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    r = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    if "HAS-GPU" not in r.stdout:
        line = r.stdout.strip()
        assert line.startswith("ERR:the cuda backend needs an NVIDIA GPU or NUMBA_ENABLE_CUDASIM=1") and "\n" not in line
