"""Edge cases a realistic one-line bug would break and no other test pins (from benchmarks/mutation.py)."""
import numpy as np
import pytest

import tinygrad_cv as tg


def test_matmul_gradients_of_a_square_left_operand():
    # with A square, forgetting the transpose in dB = A^T @ dC still has the right shape: check values
    rng = np.random.default_rng(0)
    a = tg.Tensor(rng.standard_normal((3, 3)), requires_grad=True, dtype=np.float64)
    b = tg.Tensor(rng.standard_normal((3, 4)), requires_grad=True, dtype=np.float64)
    up = rng.standard_normal((3, 4))
    ((a @ b) * tg.Tensor(up, dtype=np.float64)).sum().backward()
    np.testing.assert_allclose(b.grad, a.numpy().T @ up, rtol=1e-12)
    np.testing.assert_allclose(a.grad, up @ b.numpy().T, rtol=1e-12)
    sq = tg.Tensor(rng.standard_normal((4, 4)), requires_grad=True, dtype=np.float64)
    assert tg.gradcheck(lambda m, n: ((m @ n) ** 2).sum(), sq, tg.Tensor(rng.standard_normal((4, 4)),
                        requires_grad=True, dtype=np.float64), raise_exception=True)


def test_tensor_kinks_take_the_left_derivative_at_zero_as_pytorch_does():
    x = tg.Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])
    x = tg.Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.leaky_relu(0.1).sum().backward()
    np.testing.assert_allclose(x.grad, [0.1, 0.1, 1.0], rtol=1e-6)


@pytest.mark.parametrize("axis", [None, 1])
def test_max_over_an_axis_shares_a_tie(axis):
    x = tg.Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]]), requires_grad=True)
    top = x.max() if axis is None else x.amax(dim=axis)     # amax: a tie shares, as torch.amax
    top.sum().backward()
    want = [[0, 0.5, 0.5], [0, 0, 0]] if axis is None else [[0, 0.5, 0.5], [1, 0, 0]]
    np.testing.assert_array_equal(x.grad, want)


class _ScaleThenAdd(tg.autograd.Function):
    """a * k + b with the number k between the two tensors: its gradient slot must be dropped."""

    @staticmethod
    def forward(ctx, a, k, b):
        ctx.k = k
        return a * k + b

    @staticmethod
    def backward(ctx, up):
        return up * ctx.k, None, up


def test_function_with_a_number_between_tensors_routes_each_gradient_to_its_tensor():
    a = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True, dtype=np.float64)
    b = tg.Tensor(np.array([3.0, 4.0]), requires_grad=True, dtype=np.float64)
    out = _ScaleThenAdd.apply(a, 5.0, b)
    np.testing.assert_array_equal(out.numpy(), [8.0, 14.0])
    (out * tg.Tensor(np.array([1.0, 10.0]), dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(a.grad, [5.0, 50.0])
    np.testing.assert_array_equal(b.grad, [1.0, 10.0])


def test_adaptive_avg_pool_averages_each_bin():
    x = tg.Tensor(np.arange(2 * 1 * 4 * 6, dtype=np.float64).reshape(2, 1, 4, 6))
    want = x.numpy().reshape(2, 1, 2, 2, 2, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(tg.nn.AdaptiveAvgPool2d((2, 2))(x).numpy(), want, rtol=1e-12)
    np.testing.assert_allclose(tg.nn.AdaptiveAvgPool2d(1)(x).numpy()[:, :, 0, 0], x.numpy().mean(axis=(2, 3)), rtol=1e-12)
