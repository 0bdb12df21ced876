"""The numba backend's one-pass batch norm (backends/cpu/norm.py) against the NumPy lines of
BatchNormOp (run on the numpy backend) and against torch, where installed."""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_cv import Tensor, backends
from tinygrad_cv.nn import functional as F

SHAPES = [(4, 3), (5, 3, 7), (4, 6, 5, 5), (2, 4, 1, 1)]


def _run(backend, x, w, b, rm, rv, training, up):
    backends.set_backend(backend)
    xt = Tensor(x.copy(), requires_grad=True, dtype=x.dtype)
    wt = None if w is None else Tensor(w.copy(), requires_grad=True, dtype=w.dtype)
    bt = None if b is None else Tensor(b.copy(), requires_grad=True, dtype=b.dtype)
    rm, rv = (None if a is None else a.copy() for a in (rm, rv))
    y = F.batch_norm(xt, rm, rv, wt, bt, training=training, momentum=0.2, eps=1e-3)
    (y * Tensor(up, dtype=up.dtype)).sum().backward()
    grads = [xt.grad] + [t.grad for t in (wt, bt) if t is not None]
    return y.data, [np.asarray(g.data if hasattr(g, "data") else g) for g in grads], rm, rv


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_batch_norm_matches_numpy_lines(shape, training, affine, dtype):
    rng = np.random.default_rng(7)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    up = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(C).astype(dtype) if affine else None
    b = rng.standard_normal(C).astype(dtype) if affine else None
    rm, rv = rng.standard_normal(C).astype(dtype), (rng.random(C) + 0.5).astype(dtype)
    got = _run("numba", x, w, b, rm, rv, training, up)
    want = _run("numpy", x, w, b, rm, rv, training, up)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[0], want[0], **tol)
    assert got[0].dtype == want[0].dtype == dtype
    for g, h in zip(got[1], want[1]):
        np.testing.assert_allclose(g, h, **tol)
    np.testing.assert_allclose(got[2], want[2], **tol)
    np.testing.assert_allclose(got[3], want[3], **tol)


@pytest.mark.parametrize("training", [True, False])
def test_fused_batch_norm_matches_torch(training):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4, 5, 5)).astype(np.float32)
    up = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    rm, rv = np.zeros(4, np.float32), np.ones(4, np.float32) * 2
    y, grads, rm2, rv2 = _run("numba", x, w, b, rm, rv, training, up)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    yt = torch.nn.functional.batch_norm(xt, trm, trv, wt, bt, training=training, momentum=0.2, eps=1e-3)
    (yt * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    for g, t in zip(grads, (xt, wt, bt)):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rm2, trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv2, trv.numpy(), rtol=1e-5, atol=1e-6)
