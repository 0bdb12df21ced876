"""Every backend's kernels against the readable NumPy reference (and torch, where installed).

The fixed cases run on every backend: numba (each conv route: direct, gemm, pointwise),
cuda on numba's simulator (NUMBA_ENABLE_CUDASIM=1, chosen before numba.cuda is first
imported in this process) and the reference itself (against torch). Hypothesis then draws
many more shapes for the numba kernels, the fast path users run.
"""
from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_cv.backends import reference as ref
from tinygrad_cv.backends.shapes import conv_output_size, output_hw

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}
BACKENDS = ["numba", "cuda", "numpy"]


# TGCV_TEST_REAL_GPU=1 (on a machine with an NVIDIA GPU): the cuda cases run on the GPU itself,
# not on the simulator, and fail if there is none.
REAL_GPU = os.environ.get("TGCV_TEST_REAL_GPU") == "1"


def load_backend(name: str):
    """The kernel module of ``name``; cuda runs on the simulator (skipped if numba.cuda already
    loaded for a real GPU-less device in this process), or on the GPU with TGCV_TEST_REAL_GPU=1."""
    if name == "numba":
        return importlib.import_module("tinygrad_cv.backends.cpu")
    if name == "numpy":
        return ref
    if REAL_GPU:
        from numba import cuda
        assert cuda.is_available() and not hasattr(cuda, "simulator_init"), \
            "TGCV_TEST_REAL_GPU=1, but numba.cuda sees no GPU (or runs the simulator)"
    elif "numba.cuda" in sys.modules and not hasattr(sys.modules["numba.cuda"], "simulator_init"):
        from numba import cuda
        if not cuda.is_available():
            pytest.skip("numba.cuda was loaded without the simulator and there is no GPU")
    elif "numba.cuda" not in sys.modules:
        from numba.core import config
        old = os.environ.get("NUMBA_ENABLE_CUDASIM")
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        config.reload_config()
        import numba.cuda  # noqa: F401  (binds the simulator)
        if old is None:
            os.environ.pop("NUMBA_ENABLE_CUDASIM")
        else:
            os.environ["NUMBA_ENABLE_CUDASIM"] = old
    return importlib.import_module("tinygrad_cv.backends.cuda")


@pytest.fixture(params=BACKENDS)
def kernels(request):
    return request.param, load_backend(request.param)


def _close(a, b, dtype):
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)


def _check_conv(mod, n, c, H, W, o, k, s, p, groups, dtype, has_bias, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, H, W)).astype(dtype)
    w = rng.standard_normal((o, c // groups, *k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if has_bias else None
    y = mod.conv2d_forward(x, w, b, s, p, groups)
    y_ref = ref.conv2d_forward(x, w, b, s, p, groups)
    assert y.shape == y_ref.shape and y.dtype == dtype
    _close(y, y_ref, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(mod.conv2d_backward(dy, x, w, s, p, groups), ref.conv2d_backward(dy, x, w, s, p, groups)):
        assert got.dtype == dtype and got.shape == want.shape
        _close(got, want, dtype)


# (n, c, H, W, o, kernel, stride, padding, groups): each numba route, groups, odd shapes
CONV_CASES = [
    (2, 3, 7, 6, 4, (3, 3), (1, 1), (1, 1), 1),      # direct
    (2, 3, 5, 6, 4, (2, 3), (1, 1), (2, 1), 1),      # direct, padding wider than the filter (dx crops dy)
    (2, 4, 6, 6, 6, (3, 3), (1, 1), (1, 1), 2),      # direct, grouped (dx swaps channels per group)
    (2, 4, 5, 5, 4, (3, 2), (2, 1), (1, 0), 2),      # gemm, grouped, strided
    (1, 6, 4, 4, 6, (3, 3), (1, 1), (1, 1), 6),      # depthwise
    (2, 5, 4, 3, 3, (1, 1), (1, 1), (0, 0), 1),      # pointwise
    (2, 4, 5, 5, 6, (1, 1), (2, 2), (0, 0), 1),      # 1x1 stride 2 (ResNet's shortcut)
    (2, 40, 3, 3, 8, (3, 3), (1, 1), (1, 1), 1),     # many channels, small map: gemm, channels last
    (2, 16, 5, 7, 6, (3, 2), (2, 1), (1, 0), 2),     # gemm channels last, grouped, strided, uneven
    (3, 8, 1, 1, 5, (3, 3), (1, 1), (1, 1), 1),      # 1x1 map, 1x1 output: single
    (2, 4, 1, 1, 3, (3, 2), (2, 2), (1, 1), 1),      # single, strided, uneven filter
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-k{c[5][0]}s{c[6][0]}g{c[8]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_every_backend(kernels, case, dtype):
    _, mod = kernels
    _check_conv(mod, *case, dtype, True, 0)


@pytest.mark.parametrize("C", [15, 16], ids=lambda c: f"C{c}")
def test_gemm_column_layouts_agree_on_either_side_of_the_threshold(C):
    """The GEMM route builds its column matrix from the NCHW input below ROWS_MIN_CHANNELS input
    channels and from a channels-last copy (transposed) from it on; both must give the
    reference's values, forward and backward."""
    from tinygrad_cv.backends.cpu import gemm
    assert gemm.ROWS_MIN_CHANNELS == 16
    _check_conv(load_backend("numba"), 3, C, 10, 9, 5, (3, 3), (2, 2), (1, 1), 1, np.float64, True, 2)


def test_conv_routes_cover_all_four():
    cpu = load_backend("numba")
    routes = {cpu.conv_route((c[0], c[1], c[2], c[3]), (c[4], c[1] // c[8], *c[5]), c[6], c[7], c[8]) for c in CONV_CASES}
    assert routes == {"direct", "gemm", "pointwise", "single"}


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 3))
    depthwise = draw(st.booleans()) and groups > 1
    og = 1 if depthwise else draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), 11))
    W = draw(st.integers(max(1, kw - 2 * pw), 11))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return (n, cg * groups, H, W, og * groups, (kh, kw), (sh, sw), (ph, pw), groups, dtype,
            draw(st.booleans()), draw(st.integers(0, 2**16)))


@SETTINGS
@given(conv_case())
def test_numba_conv2d_matches_reference(case):
    _check_conv(load_backend("numba"), *case)


@pytest.mark.parametrize("route", ["direct", "gemm"])
def test_numba_larger_layer_both_routes(route, monkeypatch):
    """A VGG-sized block forced down each route."""
    cpu = load_backend("numba")
    monkeypatch.setattr(cpu, "conv_route", lambda *a: route)
    _check_conv(cpu, 8, 32, 24, 24, 64, (3, 3), (1, 1), (1, 1), 1, np.float32, True, 1)


@pytest.mark.parametrize("n, pad, k", [(16, 0, (5, 5)), (17, 2, (5, 3)), (20, 1, (3, 3))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_direct_batch_innermost(n, pad, k, dtype):
    """LeNet's second-layer kind (small maps, 5x5 filters): the direct route with the batch
    innermost, a piece of samples per thread (17: the last piece is short)."""
    from tinygrad_cv.backends.cpu import direct
    cpu = load_backend("numba")
    H, W = 8, 7
    assert cpu.conv_route((n, 3, H, W), (5, 3, *k), (1, 1), (pad, pad), 1) == "direct"
    assert direct._batch_last(n, H, W, *k, (pad, pad), 1)
    _check_conv(cpu, n, 3, H, W, 5, k, (1, 1), (pad, pad), 1, dtype, True, 3)


def test_backward_skips_unneeded_gradients(kernels):
    _, mod = kernels
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    dy = np.ones((1, 3, 3, 3))
    assert mod.conv2d_backward(dy, x, w, (1, 1), (0, 0), 1, False, True, False)[::2] == (None, None)


POOL_CASES = [((2, 3, 6, 5), (2, 2), (2, 2), (0, 0)), ((1, 2, 5, 4), (3, 2), (2, 1), (1, 1)),
              ((2, 1, 7, 7), (3, 3), (2, 2), (1, 1))]


def _check_pools(mod, shape, k, s, p, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y, arg = mod.max_pool2d_forward(x, k, s, p)
    y_ref, arg_ref = ref.max_pool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _close(mod.max_pool2d_backward(dy, arg, shape, k, s, p), ref.max_pool2d_backward(dy, arg_ref, shape, k, s, p), dtype)
    _close(mod.avg_pool2d_forward(x, k, s, p), ref.avg_pool2d_forward(x, k, s, p), dtype)
    _close(mod.avg_pool2d_backward(dy, shape, k, s, p), ref.avg_pool2d_backward(dy, shape, k, s, p), dtype)


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pools_every_backend(kernels, case, dtype):
    _, mod = kernels
    _check_pools(mod, *case, dtype, 0)


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    H = draw(st.integers(max(1, kh - 2 * p[0]), 10))
    W = draw(st.integers(max(1, kw - 2 * p[1]), 10))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W)
    return shape, (kh, kw), s, p, draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16))


@SETTINGS
@given(pool_case())
def test_numba_pools_match_reference(case):
    _check_pools(load_backend("numba"), *case)


def test_max_pool_ties_pick_first_and_padding_never_wins(kernels):
    _, mod = kernels
    x = -np.ones((1, 1, 2, 2))
    y, arg = mod.max_pool2d_forward(x, (2, 2), (1, 1), (1, 1))
    assert (y == -1).all()  # the -inf padding never beats a real -1
    assert arg[0, 0, 1, 1] == 0  # all four tie: the first in scan order wins


@pytest.mark.parametrize("k, s, p", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))], ids=str)
def test_max_pool_nan_wins_first_one(kernels, k, s, p):
    _, mod = kernels
    x = np.random.default_rng(5).standard_normal((2, 3, 8, 7))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[1, 2, 3, 3] = x[1, 2, 4, 4] = np.nan
    y, arg = mod.max_pool2d_forward(x, k, s, p)
    y_ref, arg_ref = ref.max_pool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(y, y_ref)  # NaN == NaN here
    np.testing.assert_array_equal(arg, arg_ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_2x2_path_breaks_ties_and_nans_like_the_scan(kernels, dtype):
    """The 2x2 stride-2 kernel compares vertical pairs first; on values drawn from {0, 1, 2}
    (ties in most windows, including the top-right against the bottom-left one), NaNs, and odd
    H and W, its winners must still be the reference scan's."""
    _, mod = kernels
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, (3, 4, 9, 11)).astype(dtype)
    x.flat[rng.choice(x.size, 40, replace=False)] = np.nan
    y, arg = mod.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    y_ref, arg_ref = ref.max_pool2d_forward(x, (2, 2), (2, 2), (0, 0))
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_array_equal(mod.max_pool2d_backward(dy, arg, x.shape, (2, 2), (2, 2), (0, 0)),
                                  ref.max_pool2d_backward(dy, arg_ref, x.shape, (2, 2), (2, 2), (0, 0)))


# -- against torch, where installed -------------------------------------------------------------

TORCH_CONV = [((4, 1, 12, 12), (6, 1, 5, 5), 1, 2, 1), ((2, 6, 9, 9), (16, 6, 5, 5), 1, 0, 1),
              ((2, 8, 8, 8), (16, 8, 3, 3), 2, 1, 1), ((2, 8, 4, 4), (8, 8, 1, 1), 1, 0, 1),
              ((2, 32, 3, 3), (16, 32, 3, 3), 1, 1, 1), ((2, 4, 6, 6), (4, 1, 3, 3), 1, 1, 4)]


@pytest.mark.parametrize("xs, ws, s, p, g", TORCH_CONV, ids=lambda v: str(v))
def test_conv2d_matches_torch(kernels, xs, ws, s, p, g):
    torch = pytest.importorskip("torch")
    _, mod = kernels
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(sh).astype(np.float32) for sh in (xs, ws, (ws[0],)))
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p, groups=g)
    dy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    want = torch.autograd.grad(yt, (xt, wt, bt), torch.from_numpy(dy))
    y = mod.conv2d_forward(x, w, b, (s, s), (p, p), g)
    _close(y, yt.detach().numpy(), np.float32)
    for got, t in zip(mod.conv2d_backward(dy, x, w, (s, s), (p, p), g), want):
        _close(got, t.numpy(), np.float32)


def test_pools_match_torch(kernels):
    torch = pytest.importorskip("torch")
    _, mod = kernels
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 7)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, 3, 2, 1)
    y, arg = mod.max_pool2d_forward(x, (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    dx = torch.autograd.grad(yt.sum(), xt)[0].numpy()
    _close(mod.max_pool2d_backward(np.ones_like(y), arg, x.shape, (3, 3), (2, 2), (1, 1)), dx, np.float32)
    at = torch.nn.functional.avg_pool2d(xt, 3, 2, 1)
    _close(mod.avg_pool2d_forward(x, (3, 3), (2, 2), (1, 1)), at.detach().numpy(), np.float32)


def test_output_size_formula_and_errors():
    assert conv_output_size(32, 5, 1, 0) == 28
    assert conv_output_size(56, 3, 2, 1) == 28  # floors (28.5) like PyTorch
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 0\)/3 \+ 1 = 2.33, not an integer"):
        conv_output_size(7, 3, 3, 0, strict=True)
    with pytest.raises(ValueError, match="3x3 filter with stride 3 does not fit a 7x7 input"):
        output_hw((7, 7), (3, 3), (3, 3), (0, 0), strict=True)
    with pytest.raises(ValueError, match="less than 1"):
        output_hw((2, 9), (3, 3), (1, 1), (0, 0))


@pytest.mark.parametrize("xs, ws, s, p, g", TORCH_CONV + [((2, 32, 4, 4), (16, 32, 3, 3), 1, 1, 1),
                                                          ((3, 16, 9, 9), (8, 8, 3, 3), 2, 1, 2),
                                                          ((2, 15, 8, 8), (4, 15, 3, 3), 2, 1, 1),
                                                          ((4, 64, 1, 1), (32, 64, 3, 3), 1, 1, 1),    # single position
                                                          ((3, 8, 1, 1), (5, 8, 5, 5), 1, 2, 1)], ids=lambda v: str(v))
def test_numba_kept_columns_give_the_same_gradients(xs, ws, s, p, g):
    mod = load_backend("numba")
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y, kept = mod.conv2d_forward_keep(x, w, b, (s, s), (p, p), g)
    np.testing.assert_array_equal(y, mod.conv2d_forward(x, w, b, (s, s), (p, p), g))
    route = mod.conv_route(xs, ws, (s, s), (p, p), g)
    if route == "gemm":
        assert "cols" in kept
    if route == "single":                    # the centre taps, gathered once for both passes
        np.testing.assert_array_equal(kept["center"], w[:, :, p, p])
    dy = rng.standard_normal(y.shape).astype(np.float32)
    got = mod.conv2d_backward_kept(dy, x, w, (s, s), (p, p), g, True, True, True, kept)
    want = ref.conv2d_backward(dy, x, w, (s, s), (p, p), g)
    for a, e in zip(got, want):
        _close(a, e, np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numba_relu_one_pass_matches_numpy(dtype):
    """cpu/elementwise.py against the NumPy lines it replaces: NaN stays NaN going forward,
    and the gradient passes only where a > 0 (0 at a = 0, as torch)."""
    from tinygrad_cv.backends.cpu import elementwise
    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 7, 11, 13)).astype(dtype)
    a.flat[[0, 5, 17]] = [np.nan, 0.0, -0.0]
    up = rng.standard_normal(a.shape).astype(dtype)
    np.testing.assert_array_equal(elementwise.relu_forward(a), np.maximum(a, 0))
    g = elementwise.relu_backward(up, a)
    np.testing.assert_array_equal(g, np.where(a > 0, up, 0))
    assert g.dtype == dtype and g.flat[5] == 0 and g.flat[0] == 0


def test_tensor_relu_takes_the_one_pass_kernels_on_large_arrays(monkeypatch):
    """tensor_ops.Relu hands arrays from _FUSED_RELU_SIZE on to the backend's kernels; the
    gradient is the same as the NumPy lines' (checked by running both)."""
    import tinygrad_cv as tg
    from tinygrad_cv import tensor_ops
    from tinygrad_cv.backends.cpu import elementwise
    calls = []
    orig = elementwise.relu_backward
    monkeypatch.setattr(elementwise, "relu_backward", lambda up, a: calls.append(a.size) or orig(up, a))
    monkeypatch.setattr(load_backend("numba"), "relu_backward", elementwise.relu_backward)
    x0 = np.random.default_rng(2).standard_normal((4, 8, 32, 33)).astype(np.float32)
    grads = []
    for size in (tensor_ops._FUSED_RELU_SIZE, 10 ** 9):          # fused, then NumPy only
        monkeypatch.setattr(tensor_ops, "_FUSED_RELU_SIZE", size)
        x = tg.Tensor(x0, requires_grad=True)
        (x.relu() * tg.Tensor(x0)).sum().backward()
        grads.append(x.grad.numpy())
    assert calls == [x0.size]
    np.testing.assert_array_equal(grads[0], grads[1])
