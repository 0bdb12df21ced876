"""Every backend kernel against the readable NumPy reference, on shapes hypothesis draws."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_cv.backends import cpu, reference as ref
from tinygrad_cv.backends.shapes import conv_output_size, output_hw

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}


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
    has_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**16))
    return n, cg * groups, H, W, og * groups, cg, (kh, kw), (sh, sw), (ph, pw), groups, dtype, has_bias, seed


def _close(a, b, dtype):
    scale = max(1.0, float(np.abs(b).max()) if b.size else 1.0)
    np.testing.assert_allclose(a, b, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale)


@SETTINGS
@given(conv_case())
def test_conv2d_matches_reference(case):
    n, c, H, W, o, cg, k, s, p, groups, dtype, has_bias, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, H, W)).astype(dtype)
    w = rng.standard_normal((o, cg, *k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype) if has_bias else None
    y = cpu.conv2d_forward(x, w, b, s, p, groups)
    y_ref = ref.conv2d_forward(x, w, b, s, p, groups)
    assert y.shape == y_ref.shape and y.dtype == dtype
    _close(y, y_ref, dtype)
    dy = rng.standard_normal(y.shape).astype(dtype)
    for got, want in zip(cpu.conv2d_backward(dy, x, w, s, p, groups), ref.conv2d_backward(dy, x, w, s, p, groups)):
        assert got.dtype == dtype
        _close(got, want, dtype)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_conv2d_larger_layer_both_paths(stride):
    """A VGG-sized block on the direct path (stride 1) and the im2col + BLAS path (stride 2)."""
    assert cpu._use_direct(stride) == (stride == (1, 1))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 32, 24, 24)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    y = cpu.conv2d_forward(x, w, None, stride, (1, 1), 1)
    _close(y, ref.conv2d_forward(x, w, None, stride, (1, 1), 1), np.float32)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    for got, want in zip(cpu.conv2d_backward(dy, x, w, stride, (1, 1), 1), ref.conv2d_backward(dy, x, w, stride, (1, 1), 1)):
        _close(got, want, np.float32)


def test_backward_skips_unneeded_gradients():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    dy = np.ones((1, 3, 3, 3))
    for mod in (cpu, ref):
        assert mod.conv2d_backward(dy, x, w, (1, 1), (0, 0), 1, False, True, False)[::2] == (None, None)


@st.composite
def pool_case(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    H = draw(st.integers(max(1, kh - 2 * p[0]), 10))
    W = draw(st.integers(max(1, kw - 2 * p[1]), 10))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), H, W)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return shape, (kh, kw), s, p, dtype, draw(st.integers(0, 2**16))


@SETTINGS
@given(pool_case())
def test_pools_match_reference(case):
    shape, k, s, p, dtype, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y, arg = cpu.max_pool2d_forward(x, k, s, p)
    y_ref, arg_ref = ref.max_pool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    _close(cpu.max_pool2d_backward(dy, arg, shape, k, s, p), ref.max_pool2d_backward(dy, arg_ref, shape, k, s, p), dtype)
    _close(cpu.avg_pool2d_forward(x, k, s, p), ref.avg_pool2d_forward(x, k, s, p), dtype)
    _close(cpu.avg_pool2d_backward(dy, shape, k, s, p), ref.avg_pool2d_backward(dy, shape, k, s, p), dtype)


@pytest.mark.parametrize("mod", [cpu, ref], ids=["numba", "numpy"])
def test_max_pool_ties_pick_first_and_padding_never_wins(mod):
    x = -np.ones((1, 1, 2, 2))
    y, arg = mod.max_pool2d_forward(x, (2, 2), (1, 1), (1, 1))
    assert (y == -1).all()  # the -inf padding never beats a real -1
    assert arg[0, 0, 1, 1] == 0  # all four tie: the first in scan order wins


def test_output_size_formula_and_errors():
    assert conv_output_size(32, 5, 1, 0) == 28
    assert conv_output_size(56, 3, 2, 1) == 28  # floors (28.5) like PyTorch
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 0\)/3 \+ 1 = 2.33, not an integer"):
        conv_output_size(7, 3, 3, 0, strict=True)
    with pytest.raises(ValueError, match="3x3 filter with stride 3 does not fit a 7x7 input"):
        output_hw((7, 7), (3, 3), (3, 3), (0, 0), strict=True)
    with pytest.raises(ValueError, match="less than 1"):
        output_hw((2, 9), (3, 3), (1, 1), (0, 0))
