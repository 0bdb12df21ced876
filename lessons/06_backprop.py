"""Backpropagation on a computational graph.

Every expression the engine evaluates is recorded as a graph of small gates.
Backward walks that graph from the output to the inputs; at every edge it
multiplies the gradient arriving from above (upstream) by the gate's own local
derivative to get the gradient passed below (downstream). The gates never need
to know the whole circuit, but the walk has to visit them in the right order.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, run, save_graph, say, start, table
from tinygrad_cv.step import Stepper
from viz.format import describe


def naive_backward(root: tg.Value, order: list[tg.Value]) -> None:
    """Apply each node's chain-rule step once, in the given order, as a careless implementation would.

    Gradients are pushed from a node to its parents as soon as the node is visited;
    if a node is visited before every one of its children has pushed into it, the
    contributions that arrive later never travel any further.
    """
    for node in order:
        node.grad = 0.0
    root.grad = 1.0
    for node in order:
        if node.is_leaf:
            continue
        local = node.op.local(*[p.data for p in node.parents], node.data)
        for parent, d in zip(node.parents, local):
            parent.grad += node.grad * d                # upstream x local = downstream


class SigmoidGate(tg.autograd.Function):
    """sigma(x) = 1 / (1 + e^-x) as one gate: forward keeps s, backward uses ds/dx = (1 - s) s."""

    formula, derivatives = "sigma(a)", ("(1 - sigma(a)) sigma(a)",)

    @staticmethod
    def forward(ctx, x):
        s = 1 / (1 + (-x).exp())
        ctx.save_for_backward(s)
        return s

    @staticmethod
    def backward(ctx, upstream):
        (s,) = ctx.saved_tensors
        return upstream * (1 - s) * s


def depth_first_from_root(root: tg.Value) -> list[tg.Value]:
    """Nodes in the order a depth-first walk from the output meets them (each node once)."""
    seen, order, stack = set(), [], [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        stack.extend(reversed(node.parents))
    return order


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4")
    say("""Split the expression into two gates: q = x + y and f = q z. Forward: q = 3, f = -12.
        Backward: df/df = 1; the multiply gate gives df/dq = z = -4 and df/dz = q = 3; the add gate
        passes df/dq on to x and to y, each times a local derivative of 1.""")
    x, y, z = tg.Value(-2.0, label="x"), tg.Value(5.0, label="y"), tg.Value(-4.0, label="z")
    q = x + y
    q.label = "q"
    f = q * z
    f.label = "f"
    f.backward()
    check("f", f.data, -12.0, tol=1e-12, note="the course's example")
    check("df/dx", x.grad, -4.0, tol=1e-12)
    check("df/dy", y.grad, -4.0, tol=1e-12)
    check("df/dz", z.grad, 3.0, tol=1e-12)
    save_graph(opts, f, "06_backprop_xyz")

    heading("The same pass, one step at a time")
    say("""The Stepper replays the recorded graph: forward steps recompute each node from its inputs,
        then one backward step per edge shows upstream x local = downstream.""")
    stepper = Stepper(f)
    for event in stepper:
        print("   " + describe(event).replace("\n", "\n   "))
    check("Stepper's gradients agree with backward()", stepper.gradients, {"x": -4.0, "y": -4.0, "z": 3.0})
    stepper.set("x", 3.0)
    check("after set x = 3, replayed f", stepper.values["f"], -32.0, tol=1e-12, note="(3 + 5) * (-4)")

    heading("A sigmoid neuron: f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))")
    say("""CS231n's classic circuit, with w0 = 2, x0 = -1, w1 = -3, x1 = -2, w2 = -3. Written with
        primitive gates (multiply, add, negate, exp, add 1, reciprocal) the graph is long, yet
        backward needs nothing but each gate's local rule.""")
    w0, x0, w1, x1, w2 = (tg.Value(v, label=n) for v, n in zip((2.0, -1.0, -3.0, -2.0, -3.0),
                                                                ("w0", "x0", "w1", "x1", "w2")))
    dot = w0 * x0 + w1 * x1 + w2
    out = (1 + (-dot).exp()) ** -1
    out.label = "f"
    out.backward()
    prims = {n.label: n.grad for n in (w0, x0, w1, x1, w2)}
    sig = 1 / (1 + math.exp(-1.0))
    table(["input", "value", "gradient", "theory: dsigma * other input"],
          [[n.label, n.data, n.grad, t] for n, t in zip((w0, x0, w1, x1, w2),
           (-1 * sig * (1 - sig), 2 * sig * (1 - sig), -2 * sig * (1 - sig), -3 * sig * (1 - sig), sig * (1 - sig)))])
    check("f", out.data, 0.73, tol=0.005, note="sigma(1) = 0.731")
    check("gradients w0, x0, w1, x1, w2", [prims[k] for k in ("w0", "x0", "w1", "x1", "w2")],
          [-0.20, 0.39, -0.39, -0.59, 0.20], tol=0.01, note="the course's figures, rounded")
    say("""Group the last four gates into one sigmoid gate: its local derivative is simply
        sigma(1 - sigma) = 0.731 * 0.269 = 0.197. Same gradients, much shorter graph.""")
    for v in (w0, x0, w1, x1, w2):
        v.zero_grad()
    gate = (w0 * x0 + w1 * x1 + w2).sigmoid()
    gate.backward()
    check("sigmoid gate gives the same gradients", [v.grad for v in (w0, x0, w1, x1, w2)],
          [prims[k] for k in ("w0", "x0", "w1", "x1", "w2")], tol=1e-12)
    check("nodes in the graph: primitive gates vs one sigmoid gate", (len(tg.trace(out)), len(tg.trace(gate))),
          (14, 10), note="5 inputs, 4 for the dot product, then 5 or 1")
    save_graph(opts, out, "06_backprop_sigmoid_neuron")

    heading("Gate patterns: add distributes, multiply swaps, max routes")
    say("""f = 2 (x y + max(z, w)) at x = 3, y = -4, z = 2, w = -1. The gradient arriving at the add gate
        is 2. Add copies it to both inputs. Max sends all of it to the larger input (z) and none to
        w. Multiply hands each input the upstream gradient times the *other* input.""")
    a, b, c, d = (tg.Value(v, label=n) for v, n in ((3.0, "x"), (-4.0, "y"), (2.0, "z"), (-1.0, "w")))
    g = (a * b + c.max(d)) * 2
    g.backward()
    table(["input", "value", "gradient", "why"],
          [["x", 3, a.grad, "mul swaps: 2 * y"], ["y", -4, b.grad, "mul swaps: 2 * x"],
           ["z", 2, c.grad, "max routes to the winner"], ["w", -1, d.grad, "max gives the loser 0"]])
    check("gradients x, y, z, w", [a.grad, b.grad, c.grad, d.grad], [-8.0, 6.0, 2.0, 0.0], tol=1e-12)

    heading("Why the order of the backward walk matters")
    say("""Take a = x y and f = a (a + 1), at x = 2, y = 3. The node a feeds f twice: directly, and
        through c = a + 1. Its gradient is the sum of both paths: df/da = (a + 1) + a = 2a + 1 = 13,
        so df/dx = 13 y = 39 and df/dy = 13 x = 26.""")
    x, y = tg.Value(2.0, label="x"), tg.Value(3.0, label="y")
    a_ = x * y
    a_.label = "a"
    c_ = a_ + 1
    c_.label = "c"
    f2 = a_ * c_
    f2.label = "f"
    order = depth_first_from_root(f2)
    print("   depth-first order from f:", " -> ".join(n.label or "1" for n in order))
    naive_backward(f2, order)
    naive = (x.grad, y.grad)
    say(f"""Walking in that order, a is reached straight from f and pushes its gradient down to x and y
        at once, before c has added its share. a's gradient ends up right ({a_.grad:g}), but x and y
        got only the first contribution: df/dx = {naive[0]:g}, df/dy = {naive[1]:g}.""")
    check("naive order: df/dx (wrong)", naive[0], 21.0, tol=1e-12, note="only the (a + 1) y path")
    topo = [n.label or "1" for n in tg.trace(f2).nodes]
    x.zero_grad(), y.zero_grad()
    f2.backward()
    say(f"""The engine sorts the graph topologically first (parents before children: {' -> '.join(topo)})
        and walks it in reverse, so every node has collected all of its upstream gradient before it
        passes anything down.""")
    check("engine: df/dx", x.grad, 39.0, tol=1e-12)
    check("engine: df/dy", y.grad, 26.0, tol=1e-12)
    save_graph(opts, f2, "06_backprop_reused_node")

    heading("Any group of gates can become one gate")
    say("""The sigmoid 1 / (1 + e^-x) is four gates: negate, exp, add 1, invert. Because its local
        derivative has the short form ds/dx = (1 - s) s, we can also write it as a single gate that
        keeps s from the forward pass and uses it in backward. tg.autograd.Function does exactly that,
        with PyTorch's API: forward(ctx, x) saves s, backward(ctx, upstream) returns upstream (1 - s) s.""")
    z = np.array([-2.0, 0.0, 1.0], dtype=np.float64)
    a = tg.Tensor(z, requires_grad=True, dtype=np.float64)
    b = tg.Tensor(z, requires_grad=True, dtype=np.float64)
    one_gate = SigmoidGate.apply(a)
    composed = 1 / (1 + (-b).exp())
    one_gate.sum().backward()
    composed.sum().backward()
    n_one, n_composed = len(tg.trace(one_gate).nodes), len(tg.trace(composed).nodes)
    table(["", "nodes in the graph", "ds/dx at x = -2, 0, 1"],
          [["one gate", n_one, a.grad], ["composed gates", n_composed, b.grad]])
    check("one gate: same gradients as the composed gates", a.grad, b.grad, tol=1e-15)
    s = 1 / (1 + np.exp(-z))
    check("one gate: ds/dx = (1 - s) s", a.grad, (1 - s) * s, tol=1e-15)
    check("one gate: fewer nodes (x and s only)", n_one, 2)
    check("one gate: gradcheck against central differences",
          tg.gradcheck(lambda t: SigmoidGate.apply(t), tg.Tensor(z, requires_grad=True, dtype=np.float64)), True)


if __name__ == "__main__":
    run(main)
