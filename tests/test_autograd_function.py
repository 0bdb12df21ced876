"""User-defined ops (tg.autograd.Function) and the one chain rule that every consumer shares."""
import numpy as np
import pytest

import tinygrad_cv as tg
import viz
from tinygrad_cv.graph import BackwardEdge, backward_edges, topo_order
from tinygrad_cv.step import BackwardStep, Stepper
from viz.format import describe, local_rule


class Cubic(tg.autograd.Function):
    """P3(x) = (5x^3 - 3x) / 2, the Legendre polynomial of PyTorch's own Function tutorial."""

    formula, derivatives = "P3(a)", ("1.5 (5a^2 - 1)",)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return 0.5 * (5 * x ** 3 - 3 * x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 1.5 * (5 * x ** 2 - 1)


class Sigmoid(tg.autograd.Function):
    """The course's point: the sigmoid gate as one op with local gradient (1 - s) s."""

    @staticmethod
    def forward(ctx, x):
        s = 1 / (1 + (-x).exp())
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * (1 - s) * s


class ScaledAdd(tg.autograd.Function):
    """Two tensor inputs and a number: needs_input_grad and a None gradient for the number."""

    @staticmethod
    def forward(ctx, a, b, k):
        ctx.k = k
        ctx.flags = ctx.needs_input_grad
        return a + k * b

    @staticmethod
    def backward(ctx, g):
        return g, g * ctx.k, None


def t64(values, grad=True):
    return tg.Tensor(np.asarray(values, dtype=np.float64), requires_grad=grad, dtype=np.float64)


def test_function_backward_matches_the_formula():
    x = t64([-1.0, 0.5, 2.0])
    y = Cubic.apply(x)
    assert y.data == pytest.approx(0.5 * (5 * x.data ** 3 - 3 * x.data))
    y.sum().backward()
    assert x.grad == pytest.approx(1.5 * (5 * x.data ** 2 - 1))
    assert y.op.name == "Cubic" and len(tg.trace(y).nodes) == 2       # one gate: x -> y


def test_function_passes_gradcheck_and_a_wrong_one_fails():
    x = t64([-1.3, 0.2, 0.9, 2.1])
    assert tg.gradcheck(lambda t: Cubic.apply(t), x)

    class Wrong(Cubic):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 1.5 * (5 * x ** 2)                     # forgot the -1

    assert tg.gradcheck(lambda t: Wrong.apply(t), x) is False


def test_one_sigmoid_gate_equals_the_composed_gates_with_fewer_nodes():
    z = np.array([-3.0, -0.5, 0.0, 1.5, 4.0])
    a, b = t64(z), t64(z)
    fused = Sigmoid.apply(a)
    composed = 1 / (1 + (-b).exp())
    fused.sum().backward()
    composed.sum().backward()
    s = 1 / (1 + np.exp(-z))
    assert a.grad == pytest.approx(s * (1 - s), abs=1e-15)
    assert b.grad == pytest.approx(a.grad, abs=1e-15)
    assert len(tg.trace(fused).nodes) == 2 and len(tg.trace(composed).nodes) > 5
    assert tg.gradcheck(lambda t: Sigmoid.apply(t), t64(z))


def test_needs_input_grad_and_non_tensor_arguments():
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0], grad=False)
    y = ScaledAdd.apply(a, b, 2.5)
    assert y.data == pytest.approx([8.5, 12.0])
    assert y.ctx.flags == (True, False, False)
    y.sum().backward()
    assert a.grad == pytest.approx([1.0, 1.0]) and b.grad is None


def test_backward_returning_the_wrong_number_of_gradients_is_named():
    class Bad(tg.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    y = Bad.apply(t64([1.0]), t64([2.0]))
    with pytest.raises(ValueError, match="Bad.backward returned 1 gradients for 2 inputs"):
        y.backward(np.ones(1))
    with pytest.raises(TypeError, match="needs at least one Tensor"):
        Cubic.apply(3.0)


def test_function_in_the_stepper_and_the_drawing():
    x = t64([0.5, -1.0])
    x.label = "x"
    y = Cubic.apply(x * 2.0)
    y.label = "y"
    s = Stepper(y.sum())
    cubic_edge = next(e for e in s.events if isinstance(e, BackwardStep) and e.op.name == "Cubic")
    assert local_rule(cubic_edge.op, cubic_edge.slot) == "d(P3(a))/da = 1.5 (5a^2 - 1)"
    assert "Cubic" in describe(cubic_edge)
    assert s.gradient("x") == pytest.approx(2 * 1.5 * (5 * (2 * x.data) ** 2 - 1))
    dot = viz.draw(s).source
    assert "Cubic" in dot


def test_the_stepper_records_exactly_the_engine_walk():
    a, b = tg.Value(0.7, label="a"), tg.Value(-1.3, label="b")
    c = (a * b + a.exp()).tanh() * a + 2 * b
    order = topo_order(c)
    grads: dict = {}
    edges = list(backward_edges(order, 1.0, grads))
    assert all(isinstance(e, BackwardEdge) for e in edges)
    steps = [e for e in Stepper(c).events if isinstance(e, BackwardStep)]
    assert [(e.child, e.parent, e.slot, e.downstream, e.accumulated) for e in steps] == \
           [(e.child, e.parent, e.slot, e.downstream, e.accumulated) for e in edges]
    c.backward()
    assert grads[id(a)] == a.grad and grads[id(b)] == b.grad


def test_backward_twice_on_a_leaf_root_accumulates():
    x = tg.Value(3.0)
    x.backward()
    x.backward()
    assert x.grad == 2.0
    t = t64([1.0, 2.0])
    t.backward(np.ones(2))
    t.backward(np.ones(2))
    assert t.grad == pytest.approx([2.0, 2.0])


def test_numbers_in_expressions_are_constants():
    x = tg.Value(1.0, label="x")
    f = 3 + x * 2
    f.backward()
    s = Stepper(f)
    assert [s.name(n) for n in s.constants] == ["2", "3"]          # in creation order
    assert all(e.parent not in s.constants for e in s.events if isinstance(e, BackwardStep))
    assert s.gradients == {"x": 2.0}
    dot = viz.draw(f).source
    const_rows = [line for line in dot.splitlines() if "<b>const</b>" in line]
    assert len(const_rows) == 2 and all(">constant<" in row and "grad" not in row for row in const_rows)
    assert "grad 2" in dot                                      # x.grad, drawn as a gradient


def test_gradcheck_catches_a_gradient_off_by_a_tenth_of_a_percent():
    class Slightly(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x * 1.001                       # 0.1% too large

    x = t64([0.5, 1.0, 2.0])
    assert tg.gradcheck(lambda t: Cubic.apply(t), x)       # the float64 default tolerance fits exact gradients
    assert tg.gradcheck(lambda t: Slightly.apply(t), x) is False


def test_ties_in_max_split_the_gradient_as_torch_does():
    a, b = tg.Value(2.0), tg.Value(2.0)
    a.max(b).backward()
    assert (a.grad, b.grad) == (0.5, 0.5)
    c, d = tg.Value(3.0), tg.Value(2.0)
    c.max(d).backward()
    assert (c.grad, d.grad) == (1.0, 0.0)
    x, y = t64([1.0, 2.0, 5.0]), t64([1.0, 3.0, 4.0])
    x.maximum(y).sum().backward()
    assert x.grad.tolist() == [0.5, 0.0, 1.0] and y.grad.tolist() == [0.5, 1.0, 0.0]
    z = t64([[2.0, 2.0, 1.0]])
    z.amax(dim=1).sum().backward()                          # amax: a tie shares the gradient
    assert z.grad.tolist() == [[0.5, 0.5, 0.0]]
    torch = pytest.importorskip("torch")
    tx, ty = torch.tensor([1.0, 2.0, 5.0], requires_grad=True), torch.tensor([1.0, 3.0, 4.0], requires_grad=True)
    torch.maximum(tx, ty).sum().backward()
    assert tx.grad.tolist() == x.grad.tolist() and ty.grad.tolist() == y.grad.tolist()
