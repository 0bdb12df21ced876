import pytest

import tinygrad_cv as tg
from tinygrad_cv import Value


def test_course_example_forward_and_gradients():
    x, y, z = Value(-2.0, label="x"), Value(5.0, label="y"), Value(-4.0, label="z")
    f = (x + y) * z
    f.backward()
    assert f.data == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_reused_node_accumulates_through_intermediates():
    a = Value(3.0)
    b = a + a
    c = b + b
    c.backward()
    assert a.grad == 4.0 and b.grad == 2.0


def test_second_backward_after_zero_grad_does_not_double_intermediates():
    a = Value(1.5)
    b = a * a
    c = b * b + b
    c.backward()
    first = (a.grad, b.grad)
    a.zero_grad()
    c.backward()
    assert (a.grad, b.grad) == first


def test_leaf_gradients_accumulate_across_backward_calls_like_pytorch():
    a = Value(2.0)
    f = a * 3
    f.backward()
    f.backward()
    assert a.grad == 6.0


def test_chain_of_20000_ops_has_no_recursion_error():
    x = Value(1.0)
    y = x
    for _ in range(20_000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == 1.0


def test_reflected_operators():
    x = Value(4.0)
    f = 2 - x + 3 * x - 8 / x + 1 + x / 2
    f.backward()
    assert f.data == pytest.approx(2 - 4 + 12 - 2 + 1 + 2)
    assert x.grad == pytest.approx(-1 + 3 + 8 / 16 + 0.5)


@pytest.mark.parametrize("fn", [
    lambda a, b: a * b + a / b - b ** 2,
    lambda a, b: (a - b).tanh() * b.sigmoid(),
    lambda a, b: (a * b).exp() + (b * b).log(),
    lambda a, b: a.relu() * b + (-a).leaky_relu(0.1) + b.elu(0.5) + (a - 3).elu(),
    lambda a, b: a.max(b) * b.max(a * 2) - (-a) ** 3,
    lambda a, b: 1 / (1 + (-a * b).exp()),
])
def test_every_scalar_op_passes_gradcheck(fn):
    assert tg.gradcheck(fn, Value(0.7, label="a"), Value(-1.3, label="b"))


def test_max_routes_gradient_to_larger_input():
    a, b = Value(2.0), Value(5.0)
    a.max(b).backward()
    assert (a.grad, b.grad) == (0.0, 1.0)


def test_sigmoid_neuron_matches_course_figures():
    w0, x0, w1, x1, w2 = (Value(v) for v in (2.0, -1.0, -3.0, -2.0, -3.0))
    f = (w0 * x0 + w1 * x1 + w2).sigmoid()
    f.backward()
    assert f.data == pytest.approx(0.7311, abs=1e-4)
    assert [round(v.grad, 2) for v in (w0, x0, w1, x1, w2)] == [-0.2, 0.39, -0.39, -0.59, 0.2]


def test_no_grad_records_nothing():
    a = Value(2.0)
    with tg.no_grad():
        b = a * a + 1
    assert b.op is None and b.parents == () and b.data == 5.0


def test_sigmoid_is_stable_for_large_inputs():
    assert Value(-800.0).sigmoid().data == 0.0
    assert Value(800.0).sigmoid().data == 1.0


def test_bad_input_errors():
    with pytest.raises(TypeError, match="str"):
        Value("3")
    with pytest.raises(TypeError, match="exponent must be a number"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="non-positive"):
        Value(-1.0).log()


def test_trace_orders_parents_first_and_finds_labels():
    x, y, z = Value(-2.0, label="x"), Value(5.0, label="y"), Value(-4.0, label="z")
    q = x + y
    q.label = "q"
    f = q * z
    f.label = "f"
    g = tg.trace(f)
    assert g.nodes[-1] is f
    pos = {id(n): i for i, n in enumerate(g.nodes)}
    assert all(pos[id(p)] < pos[id(c)] for p, c in g.edges)
    assert g["q"] is q and len(g.edges) == 4 and set(map(id, g.leaves)) == {id(x), id(y), id(z)}
    assert tg.trace(f).nodes == g.nodes  # deterministic
    with pytest.raises(KeyError, match="labels"):
        g["nope"]


def test_kinks_take_the_left_derivative_at_zero_as_pytorch_does():
    # relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha e^0 = alpha: the a > 0 branch is strict
    for make, expected in ((lambda v: v.relu(), 0.0), (lambda v: v.leaky_relu(0.1), 0.1),
                           (lambda v: v.elu(0.5), 0.5)):
        x = Value(0.0)
        make(x).backward()
        assert x.grad == pytest.approx(expected, abs=1e-15)
    x = Value(1e-300)
    x.relu().backward()
    assert x.grad == 1.0
