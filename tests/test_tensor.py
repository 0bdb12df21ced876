import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cv as tg
from tinygrad_cv import Tensor


def t64(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def test_float32_by_default_and_integers_stay_integers():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float32
    assert Tensor(np.array([1, 2])).dtype == np.int64
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_broadcasting_gradients_sum_back_to_each_shape(data):
    shape_a, shape_b = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3)).input_shapes
    rng = np.random.default_rng(0)
    a = t64(rng.uniform(0.5, 1.5, shape_a))
    b = t64(rng.uniform(0.5, 1.5, shape_b))
    out = (a * b + a / b - b) ** 2
    out.sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    assert tg.gradcheck(lambda a, b: (a * b + a / b - b) ** 2, a, b)


@pytest.mark.parametrize("name, fn, shapes", [
    ("add sub mul div", lambda a, b: (a + b) * (a - b) / (b * b + 1), [(3, 4), (4,)]),
    ("matmul 2d", lambda a, b: a @ b, [(3, 4), (4, 2)]),
    ("matmul batched", lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("matmul vec", lambda a, b: a @ b, [(4,), (4, 3)]),
    ("matvec", lambda a, b: a @ b, [(3, 4), (4,)]),
    ("pow neg", lambda a: (-a) ** 3 + a ** 2.5, [(2, 3)]),
    ("exp log sqrt", lambda a: a.exp() + a.log() * a.sqrt(), [(5,)]),
    ("activations", lambda a: a.tanh() + a.sigmoid() * a.relu() + a.leaky_relu(0.2) + a.elu(0.7), [(3, 3)]),
    ("sum axes", lambda a: a.sum(axis=1) * a.sum(axis=(0, 2), keepdims=True).sum(), [(2, 3, 4)]),
    ("mean", lambda a: a.mean(axis=0) + a.mean(), [(3, 4)]),
    ("max", lambda a: a.max(axis=1, keepdims=True).values * a.max(), [(3, 4)]),
    ("reshape transpose", lambda a: a.reshape(4, 6).T @ a.reshape(4, 6) + a.transpose(0, 2).flatten(1).sum(), [(2, 3, 4)]),
    ("permute flatten", lambda a: a.permute(2, 0, 1).flatten() * 2, [(2, 3, 4)]),
    ("getitem slices", lambda a: a[1:, ::2] * a[0, 1], [(3, 4)]),
    ("getitem int arrays", lambda a: a[np.array([0, 2, 0]), np.array([1, 1, 1])], [(3, 4)]),
    ("cat stack", lambda a, b: tg.cat([a, b], dim=1) * tg.stack([a, b]).sum(axis=0).sum(), [(2, 3), (2, 3)]),
    ("maximum abs", lambda a, b: a.maximum(b) + (a - b).abs(), [(3, 4), (3, 4)]),
])
def test_every_tensor_op_passes_gradcheck(name, fn, shapes):
    rng = np.random.default_rng(zlib.crc32(name.encode()))          # the same inputs in every process
    inputs = [t64(rng.uniform(0.2, 1.2, s) * rng.choice([-1, 1], s) if name not in ("exp log sqrt", "pow neg") else rng.uniform(0.2, 1.2, s)) for s in shapes]
    assert tg.gradcheck(fn, *inputs), name


def test_gradcheck_reports_worst_element_on_a_wrong_gradient(capsys):
    from tinygrad_cv.graph import Op

    class WrongSquare(tg.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, up):
            (a,) = ctx.saved_tensors
            return up * a                                   # should be 2a

    x = t64([1.0, 2.0, 3.0])
    assert tg.gradcheck(lambda x: WrongSquare.apply(x), x) is False
    err = capsys.readouterr().err
    assert "worst element" in err and "[2]" in err and "numeric" in err
    with pytest.raises(tg.gradcheck.__globals__["GradcheckError"]):
        tg.gradcheck(lambda x: WrongSquare.apply(x), x, raise_exception=True)


def test_reused_tensor_accumulates_and_second_backward_is_stable():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = a + a
    c = (b + b).sum()
    c.backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    a.zero_grad()
    c.backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])


def test_requires_grad_flows_and_no_grad_records_nothing():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    assert (w * x).requires_grad and not (x * 2).requires_grad
    with tg.no_grad():
        y = w * x
    assert y.op is None and not y.requires_grad
    assert (w * x).detach().op is None


def test_long_tensor_chain_backpropagates():
    x = Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad[0] == 1.0


def test_backward_on_non_scalar_names_shape():
    t = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        t.backward()
    t.backward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        t.backward(np.ones(3))


def test_shape_errors_name_both_shapes():
    a, b = Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a + b
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        a.reshape(4)
    with pytest.raises(IndexError, match="dim 2 is out of range for a tensor with 2 dims"):
        a.sum(axis=2)


def test_numpy_item_and_repr():
    t = Tensor([[1.0, 2.0]], requires_grad=True, label="w")
    assert t.numpy() is t.data and t.shape == (1, 2)
    assert t.sum().item() == 3.0
    assert "requires_grad=True" in repr(t) and "'w'" in repr(t)


def test_int_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor([1, 2], requires_grad=True)


def test_parity_with_torch_values_and_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    a_np, b_np = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    a, b = t64(a_np), t64(b_np)
    out = ((a @ b).tanh() * 3 - a.sum(axis=1, keepdims=True).sigmoid()).max(axis=1).values.mean()
    out.backward()
    ta = torch.tensor(a_np, requires_grad=True)
    tb = torch.tensor(b_np, requires_grad=True)
    tout = ((ta @ tb).tanh() * 3 - ta.sum(dim=1, keepdim=True).sigmoid()).max(dim=1).values.mean()
    tout.backward()
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-12)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(b.grad, tb.grad.numpy(), rtol=1e-10)


def test_scalar_parity_with_torch():
    torch = pytest.importorskip("torch")
    x, y = tg.Value(0.3), tg.Value(-1.2)
    f = (x * y).tanh() + (x - y).exp() / (y * y) + x.elu(0.5) + y.leaky_relu(0.1)
    f.backward()
    tx = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(-1.2, dtype=torch.float64, requires_grad=True)
    tf = (tx * ty).tanh() + (tx - ty).exp() / (ty * ty) + torch.nn.functional.elu(tx, 0.5) + torch.nn.functional.leaky_relu(ty, 0.1)
    tf.backward()
    assert f.data == pytest.approx(tf.item(), rel=1e-12)
    assert (x.grad, y.grad) == (pytest.approx(tx.grad.item(), rel=1e-12), pytest.approx(ty.grad.item(), rel=1e-12))


def test_each_leaf_gradient_is_its_own_array():
    """backward keeps a kernel's fresh gradient without copying it, but a gradient the chain rule
    hands to two nodes (a + b passes the same upstream array to both) or a view of another
    node's gradient is copied: zeroing one leaf's .grad must leave every other gradient alone."""
    a = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    b = tg.Tensor(np.ones((2, 3)), requires_grad=True)
    c = tg.Tensor(np.ones((3, 2)), requires_grad=True)
    s = a + b
    r = (s * 3.0).sum() + (c.reshape(2, 3) * 2.0).sum()
    r.backward()
    grads = [a.grad.data, b.grad.data, c.grad.data, s.grad.data]
    for i, g in enumerate(grads):
        for h in grads[i + 1:]:
            assert not np.shares_memory(g, h)
    a.grad.data[...] = 0
    np.testing.assert_array_equal(b.grad.data, np.full((2, 3), 3.0))
    np.testing.assert_array_equal(s.grad.data, np.full((2, 3), 3.0))
    np.testing.assert_array_equal(c.grad.data, np.full((3, 2), 2.0))


def test_backward_with_a_given_gradient_never_aliases_it():
    x = tg.Tensor(np.ones(3), requires_grad=True)
    seed = np.array([1.0, 2.0, 3.0], np.float32)
    x.backward(seed)
    x.grad.data[0] = 9
    assert seed[0] == 1.0
