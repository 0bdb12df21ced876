"""Stepper: forward replay and per-edge backward events agree with the engine's own backward()."""
import math

import numpy as np
import pytest

import tinygrad_cv as tg
from tinygrad_cv.graph import name_scope
from tinygrad_cv.step import BackwardStep, ForwardStep, SeedStep, Stepper
from viz.format import describe, summarize


def course_example():
    x, y, z = tg.Value(-2.0, label="x"), tg.Value(5.0, label="y"), tg.Value(-4.0, label="z")
    q = x + y
    q.label = "q"
    f = q * z
    f.label = "f"
    return x, y, z, q, f


def test_course_example_forward_then_backward():
    x, y, z, q, f = course_example()
    s = Stepper(f)
    kinds = [e.kind for e in s.events]
    assert kinds == ["forward"] * 2 + ["backward"] * 5
    fw = [e for e in s.events if isinstance(e, ForwardStep)]
    assert [(e.name, e.inputs, e.result) for e in fw] == [("q", [-2.0, 5.0], 3.0), ("f", [3.0, -4.0], -12.0)]
    assert isinstance(s.events[2], SeedStep) and s.events[2].grad == 1.0

    bw = {(e.child_name, e.parent_name): e for e in s.events if isinstance(e, BackwardStep)}
    assert set(bw) == {("f", "q"), ("f", "z"), ("q", "x"), ("q", "y")}
    expected = {("f", "z"): (1.0, 3.0, 3.0), ("f", "q"): (1.0, -4.0, -4.0),
                ("q", "x"): (-4.0, 1.0, -4.0), ("q", "y"): (-4.0, 1.0, -4.0)}
    for edge, (up, local, down) in expected.items():
        e = bw[edge]
        assert (e.upstream, e.local, e.downstream) == (up, local, down)
        assert e.upstream * e.local == e.downstream
        assert e.accumulated == down and e.previous is None
    assert s.gradients == {"x": -4.0, "y": -4.0, "z": 3.0}
    # the Stepper keeps its gradients to itself
    assert x.grad == 0.0


def test_describe_reads_like_the_course():
    *_, f = course_example()
    s = Stepper(f)
    text = [describe(e) for e in s.events]
    assert text[0] == "forward 1/2  q = x + y = -2 + 5 = 3"
    assert text[1] == "forward 2/2  f = q * z = 3 * (-4) = -12"
    assert "df/df = 1" in text[2]
    assert "upstream df/df = 1  *  local df/dz = 3  =  downstream 3" in "\n".join(text)
    assert "upstream df/dq = -4  *  local dq/dx = 1  =  downstream -4" in "\n".join(text)


def test_final_gradients_equal_engine_backward():
    a, b = tg.Value(0.7, label="a"), tg.Value(-1.3, label="b")
    c = (a * b + a.exp()).tanh() / (b ** 2 + 1) - a.sigmoid().max(b.relu()) + a.leaky_relu(0.1) * b.elu()
    s = Stepper(c)
    c.backward()
    constants = [n for n in s.graph.nodes if not n.requires_grad]
    assert [n.data for n in constants] == [1.0]                # the 1 in b**2 + 1
    for n in s.graph.nodes:
        if n.requires_grad:
            assert s.gradient(n) == pytest.approx(n.grad, abs=1e-15), s.name(n)
        else:
            assert s.gradient(n) is None and n.grad == 0.0     # a constant takes no gradient
    assert not any(e.parent in constants for e in s.events if isinstance(e, BackwardStep))


def test_reused_node_accumulates():
    a = tg.Value(3.0, label="a")
    b = a + a
    b.label = "b"
    s = Stepper(b)
    edges = [e for e in s.events if isinstance(e, BackwardStep)]
    assert [(e.parent_name, e.slot, e.previous, e.downstream, e.accumulated) for e in edges] == [
        ("a", 0, None, 1.0, 1.0), ("a", 1, 1.0, 1.0, 2.0)]
    assert "a.grad = 1 + 1 = 2" in describe(edges[1])
    b.backward()
    assert a.grad == s.gradients["a"] == 2.0


def test_next_back_and_state():
    *_, q, f = course_example()
    s = Stepper(f)
    assert s.position == 0 and s.current is None and not s.done
    st = s.state()
    assert id(q) not in st.values and st.grads == {}
    e1 = s.next()
    assert e1.name == "q" and s.position == 1
    assert s.state().values[id(q)] == 3.0
    assert s.back() is None and s.position == 0
    assert s.back() is None and s.position == 0          # stays at the start
    taken = list(s)
    assert len(taken) == 7 and s.done and s.next() is None
    assert s.back() is taken[-2]
    assert s.state(len(s.events)).grads[id(f)] == 1.0


def test_set_replays_and_keeps_position():
    x, y, z, q, f = course_example()
    s = Stepper(f)
    s.next(); s.next(); s.next()
    s.set("x", 3)
    assert s.position == 3
    assert s.events[0].result == 8.0 and s.events[1].result == -32.0
    assert q.data == 8.0 and f.data == -32.0 and x.data == 3.0
    assert s.gradients == {"x": -4.0, "y": -4.0, "z": 8.0}
    with pytest.raises(KeyError, match="inputs: x, y, z"):
        s.set("w", 1.0)
    with pytest.raises(KeyError):
        s.set("q", 1.0)                                    # not an input


def test_set_failure_restores_values():
    x = tg.Value(2.0, label="x")
    f = x.log()
    s = Stepper(f)
    with pytest.raises(ValueError, match="x = -1"):
        s.set("x", -1.0)
    assert x.data == 2.0 and f.data == pytest.approx(math.log(2.0))
    assert s.events[0].result == pytest.approx(math.log(2.0))


def test_tensor_graph_stepper_matches_backward():
    tg.manual_seed(0)
    x = tg.Tensor(np.arange(6.0).reshape(2, 3), label="x")
    w = tg.randn(3, 4, requires_grad=True)
    w.label = "W"
    b = tg.zeros(4, requires_grad=True)
    b.label = "b"
    with name_scope("fc"):
        h = (x @ w + b).relu()
    loss = (h * h).mean()
    loss.label = "loss"
    s = Stepper(loss)
    fw = [e for e in s.events if isinstance(e, ForwardStep)]
    assert [e.op.name for e in fw] == ["matmul", "add", "relu", "mul", "mean"]
    assert fw[0].result.shape == (2, 4)
    bw = [e for e in s.events if isinstance(e, BackwardStep)]
    assert all(e.local is None and e.local_rule for e in bw)
    assert all(e.parent is not x for e in bw)              # constants get no gradient
    # b's downstream comes back in the broadcast shape and is summed to (4,)
    eb = next(e for e in bw if e.parent is b)
    assert eb.downstream.shape == (2, 4) and eb.accumulated.shape == (4,)
    assert "summed over the broadcast axes" in describe(eb)
    # h * h: two contributions
    eh = [e for e in bw if e.child.op.name == "mul"]
    assert len(eh) == 2 and eh[1].previous is not None
    loss.backward()
    np.testing.assert_allclose(s.gradient(w), w.grad, rtol=1e-6)
    np.testing.assert_allclose(s.gradient(b), b.grad, rtol=1e-6)
    assert set(s.gradients) == {"W", "b"}


def test_tensor_set_replays():
    x = tg.Tensor([1.0, -2.0, 3.0], requires_grad=True, label="x")
    y = (x * x).sum()
    s = Stepper(y)
    assert s.events[1].result == pytest.approx(14.0)
    s.set("x", [2.0, 2.0, 2.0])
    assert s.events[1].result == pytest.approx(12.0)
    np.testing.assert_allclose(s.gradients["x"], [4.0, 4.0, 4.0])
    with pytest.raises(ValueError, match="shape"):
        s.set("x", [1.0, 2.0])


def test_summarize_small_and_large():
    assert summarize(-4.0) == "-4"
    assert summarize(np.array([1.0, 2.0])) == "[1., 2.]"
    big = summarize(np.arange(100, dtype=np.float32))
    assert big.startswith("shape (100,) float32") and "mean 49.5" in big and "max 99" in big


@pytest.mark.parametrize("op, rules, locals_", [
    ("mul", {"x": "d(a*b)/da = b", "y": "d(a*b)/db = a"}, {"x": 3.0, "y": 2.0}),
    ("div", {"x": "d(a/b)/da = 1/b", "y": "d(a/b)/db = -a/b^2"}, {"x": 1 / 3, "y": -2 / 9}),
])
def test_each_edge_shows_the_rule_and_value_of_its_own_slot(op, rules, locals_):
    from viz.format import local_rule
    x, y = tg.Value(2.0, label="x"), tg.Value(3.0, label="y")       # unequal, so a swap shows
    f = x * y if op == "mul" else x / y
    bw = [e for e in Stepper(f).events if isinstance(e, BackwardStep)]
    assert sorted(e.parent.label for e in bw) == ["x", "y"]
    for e in bw:
        assert local_rule(e.op, e.slot) == rules[e.parent.label], (e.parent.label, e.slot)
        assert e.local_rule == rules[e.parent.label].split(" = ", 1)[1]             # the event's own text
        assert e.local == pytest.approx(locals_[e.parent.label], rel=1e-12)
        assert e.downstream == pytest.approx(locals_[e.parent.label], rel=1e-12)    # upstream is 1


def test_state_shows_the_accumulated_gradient_of_a_node_used_twice():
    x = tg.Value(3.0, label="x")
    f = x * x + x                                   # df/dx = 2x + 1 = 7, from three edges
    f.label = "f"
    s = Stepper(f)
    into_x = [e for e in s.events if isinstance(e, BackwardStep) and e.parent is x]
    assert [(e.downstream, e.accumulated) for e in into_x] == [(1.0, 1.0), (3.0, 4.0), (3.0, 7.0)]
    assert s.state(len(s.events)).grads[id(x)] == 7.0 == s.gradient("x")
    last = s.events.index(into_x[1]) + 1            # after the second edge into x: the sum so far
    assert s.state(last).grads[id(x)] == into_x[0].downstream + into_x[1].downstream


def test_set_refuses_a_value_that_overflows_and_keeps_the_old_state():
    x = tg.Value(2.0, label="x")
    f = x * x
    f.label = "f"
    s = Stepper(f)
    with pytest.raises(ValueError, match=r"^with x = 1e\+200: f overflowed to inf$"):
        s.set("x", 1e200)
    assert x.data == 2.0 and f.data == 4.0 and s.gradient("x") == 4.0
    s.set("x", 1e150)                                    # large but finite: fine
    assert f.data == pytest.approx(1e300)
