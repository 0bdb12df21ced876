"""F.interpolate / nn.Upsample ('nearest' and 'bilinear'): every backend's kernels against the
readable reference, torch parity of values and gradients on every backend (cuda on the
simulator), float64 gradchecks, the source-index formulas, and errors naming the shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import nn
from tinygrad_cv.backends import reference as ref
from tinygrad_cv.backends.resample import taps, touching
from tests.test_conv_transpose import on_backend  # noqa: F401  (a fixture: each backend selected)
from tests.test_kernels import kernels, load_backend  # noqa: F401  (kernels: a fixture, each backend's module)

# (H, W, size, scale_factor, mode, align_corners)
CASES = [
    (5, 4, None, (2, 2), "nearest", False),
    (5, 7, (7, 11), None, "nearest", False),
    (5, 4, None, (1.5, 2.5), "nearest", False),      # sampled at 1/factor, not at in/out
    (6, 6, (3, 4), None, "nearest", False),          # downsampling
    (5, 4, None, (2, 2), "bilinear", False),
    (5, 4, None, (2, 2), "bilinear", True),
    (5, 7, (7, 11), None, "bilinear", False),
    (5, 7, (7, 11), None, "bilinear", True),
    (5, 4, None, (1.5, 2.5), "bilinear", False),
    (6, 6, (3, 4), None, "bilinear", False),
    (6, 6, (1, 4), None, "bilinear", True),          # a 1-pixel output reads the corner
    (5, 5, None, (1.1, 1.1), "bilinear", False),     # same size out: a copy, as torch
]


def _factors(sf):
    return None if sf is None else tuple(float(v) for v in sf)


def _torch(x, dy, h, w, size, sf, mode, ac):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.interpolate(tx, size=size, scale_factor=sf, mode=mode,
                                         align_corners=ac if mode == "bilinear" else None)
    if dy is None:
        return ty.detach().numpy(), None
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_reference(kernels, case, dtype, rng):
    name, mod = kernels
    h, w, size, sf, mode, ac = case
    x = rng.standard_normal((2, 3, h, w)).astype(dtype)
    out = size or (int(h * sf[0]), int(w * sf[1]))
    y, want = mod.interpolate2d_forward(x, out, mode, ac, _factors(sf)), ref.interpolate2d_forward(x, out, mode, ac, _factors(sf))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert y.dtype == dtype and y.shape == (2, 3, *out)
    np.testing.assert_allclose(y, want, atol=tol, rtol=0, err_msg=name)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = mod.interpolate2d_backward(dy, x.shape, mode, ac, _factors(sf))
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ref.interpolate2d_backward(dy, x.shape, mode, ac, _factors(sf)), atol=4 * tol, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_reference_matches_torch_exactly(case, rng):
    """float64: the same source indices and weights as torch, so agreement to rounding."""
    h, w, size, sf, mode, ac = case
    x = rng.standard_normal((2, 3, h, w))
    y_t, _ = _torch(x, None, *case)
    y = ref.interpolate2d_forward(x, y_t.shape[2:], mode, ac, _factors(sf))
    np.testing.assert_allclose(y, y_t, atol=1e-6)      # torch computes the weights in float32
    dy = rng.standard_normal(y.shape)
    _, dx_t = _torch(x, dy, *case)
    np.testing.assert_allclose(ref.interpolate2d_backward(dy, x.shape, mode, ac, _factors(sf)), dx_t, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_op_matches_torch_on_every_backend(on_backend, case, rng):
    h, w, size, sf, mode, ac = case
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    ox = tg.Tensor(x, requires_grad=True)
    oy = F.interpolate(ox, size=size, scale_factor=sf, mode=mode, align_corners=ac if mode == "bilinear" else None)
    dy = rng.standard_normal(oy.shape).astype(np.float32)
    y_t, dx_t = _torch(x, dy, *case)
    assert oy.shape == y_t.shape and oy.dtype == np.float32
    np.testing.assert_allclose(oy.data, y_t, atol=1e-5, rtol=1e-5)
    (oy * tg.Tensor(dy)).sum().backward()
    np.testing.assert_allclose(ox.grad, dx_t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(size=(5, 7)), dict(scale_factor=(1.5, 0.5)),
    dict(scale_factor=2, mode="bilinear"), dict(size=(5, 7), mode="bilinear", align_corners=True),
    dict(size=(2, 5), mode="bilinear", align_corners=False),
])
def test_gradcheck(backend, kwargs, rng):
    tg.set_backend(backend)
    x = tg.Tensor(rng.standard_normal((2, 2, 3, 4)), requires_grad=True, dtype=np.float64)
    assert tg.gradcheck(lambda a: (F.interpolate(a, **kwargs) ** 2).sum(), x, raise_exception=True)


def test_nearest_doubling_copies_blocks_and_bilinear_corners():
    x = np.arange(6.0).reshape(1, 1, 2, 3)
    y = F.interpolate(tg.Tensor(x), scale_factor=2).data[0, 0]
    assert np.array_equal(y, np.kron(x[0, 0], np.ones((2, 2))))
    z = F.interpolate(tg.Tensor(x), size=(3, 5), mode="bilinear", align_corners=True).data[0, 0]
    assert np.allclose(z[[0, 0, -1, -1], [0, -1, 0, -1]], [0, 2, 3, 5])       # corners kept
    assert np.allclose(z[1], [1.5, 2, 2.5, 3, 3.5])                           # halfway rows
    # align_corners=False on 2 -> 4: centres line up, src = (o + 0.5)/2 - 0.5 = -0.25 (clamped), 0.25, 0.75, 1.25
    i0, i1, l0, l1 = taps(2, 4, "bilinear", False, None)
    assert list(i0) == [0, 0, 0, 1] and list(i1) == [1, 1, 1, 1] and np.allclose(l1, [0, 0.25, 0.75, 0.25])


def test_touching_runs_are_the_readers():
    for args in [(5, 11, "bilinear", False, None), (7, 3, "bilinear", True, None), (4, 9, "nearest", False, None)]:
        t = taps(*args)
        lo, hi = touching(t, args[0])
        for i in range(args[0]):
            readers = {o for o in range(args[1]) if t[0][o] == i or t[1][o] == i}
            assert readers == set(range(lo[i], hi[i])), (args, i)


def test_upsample_layer_matches_torch():
    torch = pytest.importorskip("torch")
    from tests.test_nn_torch_parity import _pair
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5)).astype(np.float32)
    for kw in (dict(scale_factor=2), dict(size=(7, 3), mode="bilinear"), dict(scale_factor=3, mode="bilinear", align_corners=True)):
        m = nn.Upsample(**kw)
        _pair(m, torch.nn.Upsample(**kw), x)
        assert list(m.parameters()) == []
    assert repr(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)) == \
        "Upsample(scale_factor=2, mode='bilinear', align_corners=False)"


@pytest.mark.parametrize("kwargs, words", [
    (dict(size=4, scale_factor=2), ["exactly one of size and scale_factor", "both", "(1, 2, 3, 3)"]),
    (dict(), ["exactly one", "neither"]),
    (dict(scale_factor=2, mode="bicubic"), ["'bicubic'", "nearest, bilinear"]),
    (dict(scale_factor=2, align_corners=True), ["align_corners", "bilinear"]),
    (dict(scale_factor=0.2), ["floor(3 * 0.2) = 0", "(1, 2, 3, 3)"]),
    (dict(size=(0, 3)), ["positive", "(0, 3)"]),
    (dict(size=(2, 3, 4)), ["pair", "(2, 3, 4)"]),
    (dict(scale_factor=-1.0), ["positive", "-1.0"]),
])
def test_errors_name_the_values(kwargs, words):
    with pytest.raises(ValueError) as e:
        F.interpolate(tg.Tensor(np.zeros((1, 2, 3, 3))), **kwargs)
    for word in words:
        assert word in str(e.value), str(e.value)
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(tg.Tensor(np.zeros((2, 3, 3))), scale_factor=2)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 7), w=st.integers(1, 7), oh=st.integers(1, 15), ow=st.integers(1, 15),
       mode=st.sampled_from(["nearest", "bilinear"]), ac=st.booleans(), seed=st.integers(0, 2**16))
def test_numba_matches_reference_on_drawn_sizes(h, w, oh, ow, mode, ac, seed):
    cpu = load_backend("numba")
    ac = ac and mode == "bilinear"
    x = np.random.default_rng(seed).standard_normal((2, 2, h, w))
    y = cpu.interpolate2d_forward(x, (oh, ow), mode, ac, None)
    np.testing.assert_allclose(y, ref.interpolate2d_forward(x, (oh, ow), mode, ac, None), atol=1e-12)
    dy = np.random.default_rng(seed + 1).standard_normal(y.shape)
    np.testing.assert_allclose(cpu.interpolate2d_backward(dy, x.shape, mode, ac, None),
                               ref.interpolate2d_backward(dy, x.shape, mode, ac, None), atol=1e-12)
