"""Issue 15, numbers: Pow's edge cases follow PyTorch (never complex), gradcheck never passes NaN/inf.

Kept apart from test_scalar.py/test_tensor.py so they can be re-run after the engine rewrite.
"""
import math
import warnings

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv.scalar import Value

torch = pytest.importorskip("torch")

CASES = [(-1.0, 0.5), (0.0, 0.5), (0.0, 0.0), (0.0, -1.0), (-0.0, -1.0), (10.0, 400.0), (-10.0, 401.0),
         (-8.0, 1 / 3), (2.0, 0.0), (0.0, 2.0), (-2.0, 3.0), (0.0, -0.5), (3.0, -2.0)]


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def _torch(a, k):
    t = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y = t ** k
    y.backward()
    return y.item(), t.grad.item()


@pytest.mark.parametrize("a,k", CASES)
def test_scalar_pow_matches_torch_and_is_never_complex(a, k):
    v = Value(a)
    f = v ** k
    f.backward()
    want, dwant = _torch(a, k)
    assert type(f.data) is float and type(v.grad) is float
    assert _same(f.data, want) and _same(v.grad, dwant), (f.data, v.grad, want, dwant)


@pytest.mark.parametrize("a,k", CASES)
def test_tensor_pow_matches_torch_without_warnings(a, k):
    x = tg.Tensor(np.array([a]), requires_grad=True, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = (x ** k).sum()
        y.backward()
    want, dwant = _torch(a, k)
    assert _same(float(y.data), want) and _same(float(x.grad[0]), dwant)


def test_gradcheck_fails_on_a_nan_analytic_gradient_and_names_the_element(capsys):
    assert not tg.gradcheck(lambda t: (t * t) ** 0.5, Value(0.0, label="t"))
    assert "element t" in capsys.readouterr().err
    x = tg.Tensor(np.array([0.0, 1.0]), requires_grad=True, label="x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not tg.gradcheck(lambda x: (x * x) ** 0.5, x)
    err = capsys.readouterr().err
    assert "x[0]" in err and "non-finite analytic" in err
    with pytest.raises(AssertionError, match=r"x\[0\]"):          # GradcheckError
        tg.gradcheck(lambda x: (x * x) ** 0.5, x, raise_exception=True)


def test_gradcheck_fails_on_a_non_finite_numeric_value(capsys):
    assert not tg.gradcheck(lambda t: (t * 1e308) * 1e308 - (t * 1e308) * 1e308, Value(1.0, label="t"))
    assert "numeric" in capsys.readouterr().err


def test_gradcheck_still_passes_finite_smooth_functions():
    assert tg.gradcheck(lambda t: (t * t + 1) ** 0.5, Value(0.0))
    assert tg.gradcheck(lambda x: ((x * x + 1) ** 0.5).sum(), tg.Tensor(np.array([0.0, 2.0]), requires_grad=True))


def test_pow_zero_gradient_is_zero_at_zero():
    v = Value(0.0)
    (v ** 0).backward()
    assert v.grad == 0.0


@pytest.mark.parametrize("args,words", [((3, 4, 0), "kernel_size must be >= 1, got 0"),
                                        ((3, 4, -3), "kernel_size must be >= 1, got -3"),
                                        ((3, 4, 3, 0), "stride must be >= 1"), ((3, 4, 3, 1, -1), "padding must be >= 0")])
def test_conv2d_sizes_are_checked_with_the_argument_named(args, words):
    with pytest.raises(ValueError, match=words):
        tg.nn.Conv2d(*args)
