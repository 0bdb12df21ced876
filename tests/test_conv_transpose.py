"""F.conv_transpose2d / nn.ConvTranspose2d: every backend's kernels against the readable
reference, the reference and the op against torch (values and gradients), finite-difference
gradchecks in float64, the output size formula, and errors that name the shapes."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from tinygrad_cv import backends, nn
from tinygrad_cv.backends import reference as ref
from tinygrad_cv.backends.shapes import transposed_output_hw
from tests.test_kernels import BACKENDS, kernels, load_backend  # noqa: F401  (kernels: a fixture)

# (N, C_in, H, W, C_out, kernel, stride, padding, output_padding, groups)
CASES = [
    (2, 4, 5, 4, 6, (3, 2), (2, 1), (1, 0), (1, 0), 2),
    (1, 3, 4, 4, 2, (3, 3), (1, 1), (0, 0), (0, 0), 1),
    (2, 2, 3, 3, 4, (4, 4), (2, 2), (1, 1), (0, 0), 1),     # the usual exact 2x upsampler
    (2, 2, 3, 3, 2, (2, 2), (2, 2), (0, 0), (0, 0), 1),     # k = S = 2: each pixel -> a 2x2 block
    (1, 4, 1, 1, 4, (3, 3), (1, 1), (1, 1), (0, 0), 4),     # depthwise, a 1x1 map
    (2, 3, 4, 5, 3, (1, 1), (1, 1), (0, 0), (0, 0), 1),     # pointwise
    (2, 2, 3, 3, 2, (1, 1), (3, 3), (0, 0), (2, 1), 1),     # stride beyond the filter: gaps
    (1, 6, 6, 5, 9, (3, 3), (3, 2), (2, 1), (2, 1), 3),
]
TOL = {np.float32: 2e-5, np.float64: 1e-11}


@pytest.fixture(params=BACKENDS)
def on_backend(request):
    """Select each backend for the ops (cuda on numba's simulator); conftest restores the choice."""
    load_backend(request.param)
    backends._selected = request.param
    return request.param


def _arrays(rng, case, dtype):
    n, ci, h, w, co, k, s, p, op, g = case
    x = rng.standard_normal((n, ci, h, w)).astype(dtype)
    wt = rng.standard_normal((ci, co // g, *k)).astype(dtype)
    return x, wt, rng.standard_normal(co).astype(dtype), (s, p, op, g)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_reference(kernels, case, dtype, rng):
    name, mod = kernels
    x, wt, b, (s, p, op, g) = _arrays(rng, case, dtype)
    y = mod.conv_transpose2d_forward(x, wt, b, s, p, op, g)
    want = ref.conv_transpose2d_forward(x, wt, b, s, p, op, g)
    assert y.dtype == dtype and y.shape == want.shape
    np.testing.assert_allclose(y, want, atol=TOL[dtype] * max(1, np.abs(want).max()), rtol=0)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got, exp = mod.conv_transpose2d_backward(dy, x, wt, s, p, g), ref.conv_transpose2d_backward(dy, x, wt, s, p, g)
    for what, a, e in zip("dx dW db".split(), got, exp):
        assert a.shape == e.shape and a.dtype == dtype, what
        np.testing.assert_allclose(a, e, atol=TOL[dtype] * max(1, np.abs(e).max()), rtol=0, err_msg=f"{name} {what}")
    dx, dw, db = mod.conv_transpose2d_backward(dy, x, wt, s, p, g, True, False, False)
    assert dw is None and db is None and np.allclose(dx, exp[0], atol=1e-4)


def test_reference_scatters_a_filter_per_pixel():
    """A single 1 in the input puts one copy of the filter in the output, at (h*S, w*S)."""
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = 1.0
    wt = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = ref.conv_transpose2d_forward(x, wt, None, (2, 2), (0, 0), (0, 0), 1)
    assert y.shape == (1, 1, 7, 7)                      # (3 - 1)*2 + 3 = 7
    assert np.array_equal(y[0, 0, 2:5, 4:7], wt[0, 0]) and y.sum() == wt.sum()


@pytest.mark.parametrize("case", CASES)
def test_reference_matches_torch(case, rng):
    torch = pytest.importorskip("torch")
    x, wt, b, (s, p, op, g) = _arrays(rng, case, np.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g)
    y = ref.conv_transpose2d_forward(x, wt, b, s, p, op, g)
    np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-12)
    dy = rng.standard_normal(y.shape)
    ty.backward(torch.tensor(dy))
    for a, t in zip(ref.conv_transpose2d_backward(dy, x, wt, s, p, g), (tx, tw, tb)):
        np.testing.assert_allclose(a, t.grad.numpy(), atol=1e-11)


@pytest.mark.parametrize("case", CASES[:4] + CASES[6:])
@pytest.mark.parametrize("dilation", [1, (2, 1)])
def test_op_matches_torch_on_every_backend(on_backend, case, dilation, rng):
    """float32 through Tensor: values and all three gradients to ~1e-5."""
    torch = pytest.importorskip("torch")
    x, wt, b, (s, p, op, g) = _arrays(rng, case, np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, wt, b))
    ty = torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p, op, g, dilation)
    ox, ow, ob = (tg.Tensor(a, requires_grad=True) for a in (x, wt, b))
    oy = F.conv_transpose2d(ox, ow, ob, s, p, op, g, dilation)
    assert oy.shape == tuple(ty.shape) and oy.dtype == np.float32
    np.testing.assert_allclose(oy.data, ty.detach().numpy(), atol=1e-5, rtol=1e-5)
    dy = rng.standard_normal(oy.shape).astype(np.float32)
    (oy * tg.Tensor(dy)).sum().backward()
    ty.backward(torch.tensor(dy))
    for a, t in zip((ox, ow, ob), (tx, tw, tb)):
        np.testing.assert_allclose(a.grad, t.grad.numpy(), atol=1e-5 * max(1, np.abs(t.grad.numpy()).max()), rtol=1e-5)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("shape, wshape, kwargs", [
    ((2, 3, 3, 4), (3, 2, 3, 3), dict()),
    ((1, 2, 3, 3), (2, 3, 3, 2), dict(stride=2, padding=1)),
    ((1, 2, 3, 2), (2, 2, 3, 3), dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2))),
    ((2, 4, 2, 3), (4, 1, 2, 2), dict(stride=2, groups=2)),
    ((1, 2, 3, 3), (2, 1, 2, 3), dict(stride=2, output_padding=1, dilation=2)),
])
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(backend, shape, wshape, kwargs, bias, rng):
    backends.set_backend(backend)
    out_ch = wshape[1] * kwargs.get("groups", 1)
    args = [tg.Tensor(rng.standard_normal(s), requires_grad=True, dtype=np.float64)
            for s in (shape, wshape) + (((out_ch,),) if bias else ())]
    assert tg.gradcheck(lambda *a: (F.conv_transpose2d(*a, **kwargs) ** 2).sum(), *args, raise_exception=True)


def test_output_size_formula_matches_torch():
    torch = pytest.importorskip("torch")
    for h, k, s, p, op, d in [(5, 3, 2, 1, 1, 1), (7, 4, 2, 1, 0, 1), (3, 2, 3, 0, 2, 2), (1, 1, 1, 0, 0, 1), (4, 5, 1, 2, 0, 3)]:
        want = torch.nn.functional.conv_transpose2d(torch.zeros(1, 1, h, h), torch.zeros(1, 1, k, k), None, s, p, op, 1, d)
        got = transposed_output_hw((h, h), (k, k), (s, s), (p, p), (op, op), (d, d))
        assert got == tuple(want.shape[2:]) == ((h - 1) * s - 2 * p + d * (k - 1) + op + 1,) * 2


def test_layer_matches_torch_module_and_init(on_backend):
    torch = pytest.importorskip("torch")
    from tests.test_nn_torch_parity import _pair
    x = np.random.default_rng(3).normal(size=(2, 4, 5, 6)).astype(np.float32)
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    _pair(ours, torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), x)
    assert ours(tg.Tensor(x)).shape == (2, 6, 10, 12)              # (5 - 1)*2 - 2 + 3 + 1 = 10
    # PyTorch's init: weight and bias uniform in +-1/sqrt(fan_in), fan_in = out/groups * k * k = 27
    big = nn.ConvTranspose2d(64, 6, 3, groups=2)
    bound = 1 / np.sqrt(3 * 9)
    for t in (big.weight.data, big.bias.data):
        assert np.abs(t).max() <= bound and np.abs(t).max() > 0.8 * bound
    assert big.weight.shape == (64, 3, 3, 3) and np.isclose(big.weight.data.std(), bound / np.sqrt(3), rtol=0.05)


def test_layer_without_bias_and_repr():
    m = nn.ConvTranspose2d(2, 3, (2, 3), stride=2, bias=False)
    assert m.bias is None and [k for k, _ in m.named_parameters()] == ["weight"]
    assert repr(m) == "ConvTranspose2d(2, 3, kernel_size=(2, 3), stride=(2, 2), bias=False)"


@pytest.mark.parametrize("call, words", [
    (lambda x, w: F.conv_transpose2d(x, tg.Tensor(np.zeros((3, 2, 3, 3)))), ["(1, 2, 5, 5)", "(3, 2, 3, 3)", "2 channels"]),
    (lambda x, w: F.conv_transpose2d(x, w, stride=2, output_padding=2), ["output_padding 2", "stride 2"]),
    (lambda x, w: F.conv_transpose2d(x, w, output_padding=1), ["output_padding 1", "stride 1"]),
    (lambda x, w: F.conv_transpose2d(x, w, tg.Tensor(np.zeros(5))), ["bias", "(4,)", "(5,)"]),
    (lambda x, w: F.conv_transpose2d(x, w, padding=4), ["less than 1", "(5 - 1)*1 - 8"]),
    (lambda x, w: F.conv_transpose2d(x, w, groups=3), ["groups=3", "(2)"]),
    (lambda x, w: F.conv_transpose2d(x[0], w), ["4-D", "(2, 5, 5)"]),
    (lambda x, w: F.conv_transpose2d(x, w[0]), ["4-D", "(4, 3, 3)"]),
    (lambda x, w: nn.ConvTranspose2d(2, 4, 3)(tg.Tensor(np.zeros((1, 3, 4, 4)))), ["(N, 2, H, W)", "(1, 3, 4, 4)"]),
    (lambda x, w: nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=2), ["output_padding (2, 2)", "stride (2, 2)"]),
    (lambda x, w: nn.ConvTranspose2d(2, 3, 3, groups=2), ["out_channels=3", "groups=2"]),
])
def test_errors_name_the_shapes(call, words):
    x, w = tg.Tensor(np.zeros((1, 2, 5, 5))), tg.Tensor(np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError) as e:
        call(x, w)
    for word in words:
        assert word in str(e.value), str(e.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_numba_matches_reference_on_drawn_shapes(data):
    """Hypothesis draws many more shapes for the fast path users run (every conv2d route below it)."""
    cpu = load_backend("numba")
    g = data.draw(st.sampled_from([1, 2]))
    ci, co = g * data.draw(st.integers(1, 3)), g * data.draw(st.integers(1, 3))
    k = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    s = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    p = (data.draw(st.integers(0, k[0] - 1)), data.draw(st.integers(0, k[1] - 1)))
    op = (data.draw(st.integers(0, s[0] - 1)), data.draw(st.integers(0, s[1] - 1)))
    hw = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6)))
    try:
        transposed_output_hw(hw, k, s, p, op)
    except ValueError:                                   # the padding eats the whole output
        assume(False)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal((2, ci, *hw))
    wt = rng.standard_normal((ci, co // g, *k))
    b = rng.standard_normal(co)
    y = cpu.conv_transpose2d_forward(x, wt, b, s, p, op, g)
    np.testing.assert_allclose(y, ref.conv_transpose2d_forward(x, wt, b, s, p, op, g), atol=1e-10)
    dy = rng.standard_normal(y.shape)
    for a, e in zip(cpu.conv_transpose2d_backward(dy, x, wt, s, p, g), ref.conv_transpose2d_backward(dy, x, wt, s, p, g)):
        np.testing.assert_allclose(a, e, atol=1e-10)



def test_summary_counts_the_scatter_multiply_adds():
    """Each of the H*W*C_in input values scatters C_out/groups filters of kh*kw taps."""
    from tinygrad_cv.models import summary
    s = summary(nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), nn.Upsample(scale_factor=2)), (4, 5, 5))
    convt, up = s.rows
    assert convt["type"] == "ConvTranspose2d" and convt["output_shape"] == (6, 11, 11)
    assert convt["macs"] == 5 * 5 * 4 * 3 * 3 * 3 and convt["params"] == 4 * 3 * 9 + 6 and not convt["inplace"]
    assert up["type"] == "Upsample" and up["output_shape"] == (6, 22, 22) and up["macs"] == 0
