"""The one-pass (numba) optimizer updates agree with the readable NumPy updates."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv import optim
from tinygrad_cv.optim import _fused

CASES = [(optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
         (optim.SGD, dict(lr=0.1, momentum=0.5, dampening=0.3)), (optim.Adam, dict(lr=0.01)),
         (optim.Adam, dict(lr=0.01, weight_decay=0.1)), (optim.AdamW, dict(lr=0.01, weight_decay=0.1))]


@pytest.mark.parametrize("cls, kw", CASES, ids=lambda v: getattr(v, "__name__", str(v)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_update_matches_numpy(cls, kw, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((64, 33)).astype(dtype)
    grads = [rng.standard_normal(w0.shape).astype(dtype) for _ in range(3)]
    results = []
    for min_size in (10 ** 9, 1):                    # the NumPy path, then the fused one
        monkeypatch.setattr(_fused, "MIN_SIZE", min_size)
        p = tg.Tensor(w0.copy(), requires_grad=True, dtype=dtype)
        opt = cls([p], **kw)
        for g in grads:
            p.grad = g.copy()
            opt.step()
        results.append(p.data.copy())
        assert p.data.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(results[1], results[0], rtol=tol, atol=tol)


def test_small_or_strided_tensors_take_the_numpy_path():
    a = np.zeros(10, np.float32)
    assert not _fused.usable(a, a)
    b = np.zeros((1 << 17) * 2, np.float32)[::2]
    assert not _fused.usable(np.zeros(1 << 17, np.float32), b)
