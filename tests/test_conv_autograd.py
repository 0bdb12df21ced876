"""conv2d and the pools through Tensor: numerical gradients, errors, and parity with torch."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import backends


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    previous = backends.get_backend()
    backends.set_backend(request.param)
    yield request.param
    backends.set_backend(previous)


def _t(rng, *shape):
    return tg.Tensor(rng.standard_normal(shape), requires_grad=True, dtype=np.float64)


@pytest.mark.parametrize(
    "shape, wshape, kwargs",
    [
        ((2, 3, 6, 5), (4, 3, 3, 3), dict()),
        ((1, 2, 7, 7), (2, 2, 3, 2), dict(stride=2, padding=1)),
        ((2, 4, 5, 5), (6, 2, 2, 2), dict(groups=2, padding=(1, 0))),
        ((1, 3, 5, 6), (3, 1, 3, 3), dict(groups=3, stride=(1, 2), padding=1)),  # depthwise
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_gradcheck(backend, shape, wshape, kwargs, bias):
    rng = np.random.default_rng(0)
    x, w = _t(rng, *shape), _t(rng, *wshape)
    args = [x, w] + ([_t(rng, wshape[0])] if bias else [])
    assert tg.gradcheck(lambda *a: (F.conv2d(*a, **kwargs) ** 2).sum(), *args, raise_exception=True)


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 1))])
def test_pool_gradcheck(backend, pool, k, s, p):
    x = tg.Tensor(np.random.default_rng(1).permutation(2 * 2 * 6 * 7).reshape(2, 2, 6, 7) / 10.0,
                  requires_grad=True, dtype=np.float64)  # distinct values: no ties for max
    assert tg.gradcheck(lambda a: (pool(a, k, s, p) ** 2).sum(), x, raise_exception=True)


def test_conv_filter_larger_than_input_raises_with_the_formula():
    with pytest.raises(ValueError, match=r"5x5 filter .* does not fit a 3x3 input: \(W - F \+ 2P\)/S \+ 1"):
        F.conv2d(tg.Tensor(np.zeros((1, 1, 3, 3))), tg.Tensor(np.zeros((1, 1, 5, 5))))


def test_channel_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(1, 3, 8, 8\).*\(4, 2, 3, 3\)"):
        F.conv2d(tg.Tensor(np.zeros((1, 3, 8, 8))), tg.Tensor(np.zeros((4, 2, 3, 3))))
    with pytest.raises(ValueError, match="groups=2 must divide"):
        F.conv2d(tg.Tensor(np.zeros((1, 3, 8, 8))), tg.Tensor(np.zeros((4, 1, 3, 3))), groups=2)
    with pytest.raises(ValueError, match="bias"):
        F.conv2d(tg.Tensor(np.zeros((1, 3, 8, 8))), tg.Tensor(np.zeros((4, 3, 3, 3))), tg.Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="4-D"):
        F.max_pool2d(tg.Tensor(np.zeros((3, 8, 8))), 2)


def test_first_layer_skips_input_gradient(backend):
    x = tg.Tensor(np.ones((1, 1, 6, 6)))
    w = tg.Tensor(np.ones((2, 1, 3, 3)), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (2, 1, 3, 3) and w.grad.dtype == np.float32
    # every weight of a 3x3 filter meets a 1 in each of the 4x4 output positions
    np.testing.assert_array_equal(w.grad, np.full((2, 1, 3, 3), 16.0, np.float32))


torch_cases = [
    ((4, 3, 9, 8), (6, 3, 3, 3), dict(stride=1, padding=1)),
    ((2, 4, 10, 9), (6, 2, 3, 2), dict(stride=(2, 1), padding=(0, 1), groups=2)),
    ((2, 1, 28, 28), (6, 1, 5, 5), dict(padding=2)),
]


@pytest.mark.parametrize("shape, wshape, kwargs", torch_cases)
def test_conv2d_matches_torch(backend, shape, wshape, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    xs, ws, bs = rng.standard_normal(shape), rng.standard_normal(wshape), rng.standard_normal(wshape[0])
    x, w, b = (tg.Tensor(a, requires_grad=True) for a in (xs, ws, bs))
    y = F.conv2d(x, w, b, **kwargs)
    g = rng.standard_normal(y.shape).astype(np.float32)
    (y * tg.Tensor(g)).sum().backward()
    xt, wt, bt = (torch.tensor(a, dtype=torch.float32, requires_grad=True) for a in (xs, ws, bs))
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kwargs)
    yt.backward(torch.from_numpy(g))
    for ours, theirs in [(y.data, yt), (x.grad, xt.grad), (w.grad, wt.grad), (b.grad, bt.grad)]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-4, atol=1e-4 * float(theirs.detach().abs().max()))


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1), ((3, 2), (2, 1), (1, 0))])
def test_pools_match_torch(backend, name, k, s, p):
    torch = pytest.importorskip("torch")
    xs = np.random.default_rng(3).standard_normal((2, 3, 9, 8))
    x = tg.Tensor(xs, requires_grad=True)
    y = getattr(F, name)(x, k, s, p)
    y.sum().backward()
    xt = torch.tensor(xs, dtype=torch.float32, requires_grad=True)
    yt = getattr(torch.nn.functional, name)(xt, k, s, p)
    yt.sum().backward()
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_conv_course_rule_where_windows_tile_and_torch_floor_elsewhere():
    import tinygrad_cv.nn.functional as F

    x = tg.Tensor(np.ones((1, 1, 7, 7)))
    with pytest.raises(ValueError, match=r"3x3 filter with stride 3 does not fit a 7x7 input.*\(7 - 3 \+ 0\)/3 \+ 1 = 2.33"):
        F.conv2d(x, tg.Tensor(np.ones((1, 1, 3, 3))), stride=3)
    # everywhere else conv2d floors like PyTorch (ResNet's padded stride-2 convs, 1x1 shortcuts)
    assert F.conv2d(tg.Tensor(np.ones((1, 1, 56, 56))), tg.Tensor(np.ones((1, 1, 3, 3))), stride=2, padding=1).shape == (1, 1, 28, 28)
    assert F.conv2d(tg.Tensor(np.ones((1, 1, 7, 7))), tg.Tensor(np.ones((1, 1, 1, 1))), stride=2).shape == (1, 1, 4, 4)
    assert F.conv2d(tg.Tensor(np.ones((1, 1, 10, 9))), tg.Tensor(np.ones((1, 1, 3, 2))), stride=(2, 1)).shape == (1, 1, 4, 8)
