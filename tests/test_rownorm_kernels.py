"""The normalize_rows kernels (layer, instance and group norm) of every backend against the
readable reference: odd shapes, rows of one value and very long rows, float32 and float64,
missing gamma/beta, and values far from zero, where the one-pass E[x^2] - E[x]^2 would lose
the variance. The numba kernels also over hypothesis-drawn views. cuda runs on numba's
simulator (tests/test_kernels.py's load_backend)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cv.backends import reference as ref
from tests.test_kernels import SETTINGS, kernels  # noqa: F401  (kernels: a fixture, each backend's module)
from tests.test_kernels import load_backend


@pytest.fixture
def quick_simulator():
    """numba's simulator polls its Python threads at every syncthreads: with a short GIL switch
    interval the handovers are about 6x quicker. Restored after the test."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(old)


@pytest.fixture
def rows_kernels(kernels, quick_simulator):
    return kernels


# (N, G, P, L): the view of x (backends/rownorm.py)
VIEWS = [
    (3, 1, 5, 1),        # layer norm over 5 values
    (2, 3, 2, 7),        # group norm: 3 groups of 2 channels, 7 positions
    (2, 4, 1, 9),        # instance norm
    (4, 1, 1, 1),        # rows of one value: x_hat = 0, y = beta
    (1, 1, 4099, 1),     # one long row (odd: the block's threads do uneven shares)
    (1, 2, 3, 1001),     # long rows of group norm
    (0, 2, 3, 4),        # no examples
]
TOL = {np.float32: 2e-6, np.float64: 1e-12}


def _case(view, dtype, affine, seed=0, offset=1.0, spread=3.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(view) * spread + offset).astype(dtype)
    dy = rng.standard_normal(view).astype(dtype)
    g = rng.standard_normal(view[1:3]).astype(dtype) if affine else None
    b = rng.standard_normal(view[1:3]).astype(dtype) if affine else None
    return x, dy, g, b


def _close(got, want, dtype, what):
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL[dtype] * scale, err_msg=what)


@pytest.mark.parametrize("view", VIEWS, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_kernels_match_reference(rows_kernels, view, dtype, affine):
    name, mod = rows_kernels
    x, dy, g, b = _case(view, dtype, affine)
    y, mean, inv_std = mod.normalize_rows_forward(x, g, b, 1e-5)
    y_ref, mean_ref, inv_ref = ref.normalize_rows_forward(x, g, b, 1e-5)
    assert y.shape == x.shape and y.dtype == dtype, name
    assert mean.shape == inv_std.shape == view[:2] and mean.dtype == inv_std.dtype == np.float64
    _close(y, y_ref, dtype, f"{name} y")
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(inv_std, inv_ref, rtol=1e-11)
    got = mod.normalize_rows_backward(dy, x, mean, inv_std, g)
    want = ref.normalize_rows_backward(dy, x, mean_ref, inv_ref, g)
    for what, a, c in zip(("dx", "dgamma", "dbeta"), got, want):
        assert a.shape == c.shape and a.dtype == dtype, (name, what)
        _close(a, c, dtype, f"{name} {what}")
    dx, dgamma, dbeta = mod.normalize_rows_backward(dy, x, mean, inv_std, g, need_params=False)
    assert dgamma is None and dbeta is None
    _close(dx, want[0], dtype, f"{name} dx without the parameters")


def test_reference_is_the_formula():
    """The reference against the course's formulas written out for one group-norm view."""
    x, dy, g, b = _case((2, 3, 2, 5), np.float64, True, seed=3)
    y, mean, inv_std = ref.normalize_rows_forward(x, g, b, 1e-3)
    rows = x.reshape(6, 10)
    np.testing.assert_allclose(mean.ravel(), rows.mean(1), rtol=1e-14)
    np.testing.assert_allclose(inv_std.ravel(), 1 / np.sqrt(rows.var(1) + 1e-3), rtol=1e-14)
    x_hat = ((rows - rows.mean(1, keepdims=True)) / np.sqrt(rows.var(1, keepdims=True) + 1e-3)).reshape(x.shape)
    np.testing.assert_allclose(y, g[None, :, :, None] * x_hat + b[None, :, :, None], rtol=1e-13)
    dx, dgamma, dbeta = ref.normalize_rows_backward(dy, x, mean, inv_std, g)
    np.testing.assert_allclose(dgamma, (dy * x_hat).sum(axis=(0, 3)), rtol=1e-13)
    np.testing.assert_allclose(dbeta, dy.sum(axis=(0, 3)), rtol=1e-13)
    # dx: the Jacobian of one row, written out, times the row's upstream gradient
    m, r = 10, inv_std.ravel()[0]
    xh, d = x_hat[0, 0].ravel(), (g[0][:, None] * dy[0, 0]).ravel()
    jac = r * (np.eye(m) - 1 / m - np.outer(xh, xh) / m)
    np.testing.assert_allclose(dx[0, 0].ravel(), jac @ d, rtol=1e-12, atol=1e-14)


def _naive_var(x: np.ndarray) -> np.ndarray:
    """E[x^2] - E[x]^2 per row in x's dtype, the one-pass formula the kernels avoid."""
    rows = x.reshape(x.shape[0] * x.shape[1], -1)
    return (rows * rows).mean(1) - rows.mean(1) ** 2


@pytest.mark.parametrize("dtype, offset", [(np.float64, 1e8), (np.float32, 1e4)])
def test_far_from_zero_keeps_the_variance(rows_kernels, dtype, offset):
    """Values around 1e8 (float64) or 1e4 (float32) with unit spread: the exact variance comes from
    the values minus the offset (an exact subtraction here); the naive formula is far off. At 1e8
    float64 numbers are 1.5e-8 apart, so the mean itself, and x - mean, can be no closer than that."""
    name, mod = rows_kernels
    view = (2, 2, 3, 50)
    x, dy, g, b = _case(view, dtype, True, seed=5, offset=offset, spread=1.0)
    centred = x.astype(np.float64) - offset                 # exact: both within a factor 2 of offset
    exact_var = centred.reshape(4, -1).var(1)
    naive = _naive_var(x)
    assert np.abs(naive - exact_var).max() > 0.05, "the naive formula should fail on these values"
    y, mean, inv_std = mod.normalize_rows_forward(x, g, b, 1e-5)
    np.testing.assert_allclose(inv_std.ravel(), 1 / np.sqrt(exact_var + 1e-5), rtol=1e-9, err_msg=name)
    x_hat = (centred.reshape(4, -1) - centred.reshape(4, -1).mean(1, keepdims=True)) * inv_std.reshape(4, 1)
    want = g[None, :, :, None] * x_hat.reshape(view) + b[None, :, :, None]
    np.testing.assert_allclose(y, want, atol=1e-5 if dtype == np.float32 else 1e-7, err_msg=name)
    dx, dgamma, _ = mod.normalize_rows_backward(dy, x, mean, inv_std, g)
    _, dgamma_ref, _ = ref.normalize_rows_backward(dy, x, mean, inv_std, g)
    np.testing.assert_allclose(dgamma, (dy * x_hat.reshape(view)).sum(axis=(0, 3)),
                               atol=1e-4 if dtype == np.float32 else 1e-6)
    np.testing.assert_allclose(dgamma, dgamma_ref, atol=1e-4 if dtype == np.float32 else 1e-6)
    assert np.all(np.isfinite(dx))


@given(n=st.integers(0, 3), groups=st.integers(1, 4), p=st.integers(1, 5), length=st.integers(1, 40),
       affine=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 99))
@SETTINGS
def test_numba_matches_reference_on_drawn_views(n, groups, p, length, affine, dtype, seed):
    mod = load_backend("numba")
    view = (n, groups, p, length)
    x, dy, g, b = _case(view, dtype, affine, seed=seed)
    y, mean, inv_std = mod.normalize_rows_forward(x, g, b, 1e-5)
    y_ref, mean_ref, inv_ref = ref.normalize_rows_forward(x, g, b, 1e-5)
    _close(y, y_ref, dtype, "y")
    for what, a, c in zip(("dx", "dgamma", "dbeta"), mod.normalize_rows_backward(dy, x, mean, inv_std, g),
                          ref.normalize_rows_backward(dy, x, mean_ref, inv_ref, g)):
        _close(a, c, dtype, what)


def test_kernels_take_non_contiguous_input_and_other_dtype_parameters(rows_kernels):
    """A transposed view of x and float64 parameters for float32 x: same numbers, x's dtype out."""
    name, mod = rows_kernels
    x = np.asfortranarray(_case((2, 2, 3, 4), np.float32, False, seed=8)[0])
    g, b = np.linspace(0.5, 2, 6).reshape(2, 3), np.linspace(-1, 1, 6).reshape(2, 3)
    y, mean, inv_std = mod.normalize_rows_forward(x, g, b, 1e-5)
    y_ref, _, _ = ref.normalize_rows_forward(np.ascontiguousarray(x), g.astype(np.float32),
                                             b.astype(np.float32), 1e-5)
    assert y.dtype == np.float32, name
    _close(y, y_ref, np.float32, name)


@pytest.mark.parametrize("block", [1, 32])
def test_cuda_block_reduction_at_other_widths(monkeypatch, quick_simulator, block):
    """The simulator runs 4 threads a row (a GPU 128): the same halving with 1 thread and with 32,
    on rows shorter than the block (idle threads) and longer (uneven shares)."""
    mod = load_backend("cuda")
    from tinygrad_cv.backends import cuda_rownorm
    monkeypatch.setattr(cuda_rownorm, "_BLOCK", block)
    for view in [(2, 1, 5, 1), (1, 2, 3, 15)]:
        x, dy, g, b = _case(view, np.float64, True, seed=block)
        y, mean, inv_std = mod.normalize_rows_forward(x, g, b, 1e-5)
        y_ref, mean_ref, inv_ref = ref.normalize_rows_forward(x, g, b, 1e-5)
        _close(y, y_ref, np.float64, f"block {block} y")
        for what, a, c in zip(("dx", "dgamma", "dbeta"), mod.normalize_rows_backward(dy, x, mean, inv_std, g),
                              ref.normalize_rows_backward(dy, x, mean_ref, inv_ref, g)):
            _close(a, c, np.float64, f"block {block} {what}")
