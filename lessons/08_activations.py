"""Activation functions: saturation, dead units and the fixes.

The nonlinearity sits on every path a gradient takes, so its local derivative
multiplies everything that flows back through it. Sigmoid and tanh flatten out
for large inputs and pass back almost nothing; ReLU passes everything or
nothing, and a ReLU pushed into the negative side for every input is dead for
good. Leaky ReLU, ELU and Maxout keep a gradient alive.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn

ACTIVATIONS = {
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu(0.01)": lambda t: F.leaky_relu(t, 0.01),
    "elu(1)": lambda t: F.elu(t, 1.0),
}


def local_gradient(act, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """act(x) and d act / dx at every x, the derivative from the engine's backward pass."""
    t = tg.Tensor(x, requires_grad=True)
    y = act(t)
    y.sum().backward()
    return y.numpy(), t.grad


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("Local gradients across the input range")
    xs = np.array([-10.0, -5.0, -2.0, 0.0, 2.0, 5.0, 10.0], dtype=np.float32)
    grads = {name: local_gradient(act, xs)[1] for name, act in ACTIVATIONS.items()}
    table(["x"] + [f"d {n}" for n in ACTIVATIONS], [[x] + [grads[n][i] for n in ACTIVATIONS] for i, x in enumerate(xs)],
          ".3g")
    dense = np.linspace(-10, 10, 20001, dtype=np.float32)
    dsig = local_gradient(F.sigmoid, dense)[1]
    check("largest sigmoid derivative, over x in [-10, 10]", float(dsig.max()), 0.25, tol=1e-6,
          note="sigma(0)(1 - sigma(0)) = 1/4")
    check("where it is largest", float(dense[dsig.argmax()]), 0.0, tol=1e-3)
    check("sigmoid derivative at x = 10", float(grads["sigmoid"][-1]), 4.54e-5, rel=0.01,
          note="saturated: almost nothing passes")
    check("tanh derivative at x = 0 and x = 5", [float(grads["tanh"][3]), float(grads["tanh"][5])], [1.0, 1.82e-4],
          rel=0.01)
    say("""A sigmoid never passes back more than a quarter of the gradient it receives, and far less
        once its input is large in either direction: the neuron is saturated. Tanh is a stretched
        sigmoid (tanh(x) = 2 sigmoid(2x) - 1) with derivative 1 at 0, but it saturates the same way.""")

    heading("Saturation compounds with depth")
    x = tg.Value(0.0, label="x")
    h = x
    for _ in range(10):
        h = h.sigmoid()
    h.backward()
    say("""Feed a number through ten sigmoid gates in a row (no weights at all). Backward multiplies
        ten local derivatives, each at most 1/4.""")
    check("d(output)/dx through 10 sigmoids", x.grad, at_most=0.25 ** 10, note=f"bound 0.25^10 = {0.25 ** 10:.3g}")

    heading("Sigmoid outputs are not zero-centred")
    z = tg.randn(10000)
    sig_mean, tanh_mean = F.sigmoid(z).numpy().mean(), F.tanh(z).numpy().mean()
    say(f"""On zero-mean inputs the sigmoid's outputs average {sig_mean:.3f} and are all positive, so the
        next layer receives only positive inputs (lesson 09 showed what that does to its weight
        gradients); tanh's average {tanh_mean:.3f}.""")
    check("mean sigmoid output on N(0, 1) inputs", float(sig_mean), 0.5, tol=0.01)
    check("mean tanh output on N(0, 1) inputs", float(tanh_mean), 0.0, tol=0.02)

    heading("Dead ReLUs after a large negative bias")
    layer = nn.Linear(50, 200)
    nn.init.he_(layer.weight)
    nn.init.zeros_(layer.bias)
    inputs = tg.randn(500, 50)
    say("""A layer of 200 units sees 500 random inputs. Then a bad update (say, a learning rate
        that is too large) shifts every bias by -10. A unit is dead when it outputs 0 for every
        input: its local gradient is then 0 everywhere, so its weights never receive a gradient
        again and nothing can revive it.""")
    rows = []
    for shift in (0.0, -10.0):
        layer.bias.data[:] = shift
        for name in ("relu", "leaky_relu(0.01)", "elu(1)"):
            layer.zero_grad()
            out = ACTIVATIONS[name](layer(inputs))
            out.sum().backward()
            dead = float((np.abs(layer.weight.grad).sum(1) == 0).mean())
            rows.append([shift, name, dead, float(np.linalg.norm(layer.weight.grad))])
    table(["bias", "activation", "fraction of units with no gradient", "|dL/dW|"], rows, ".3g")
    check("dead ReLUs after the shift", rows[3][2], at_least=0.95)
    check("units without gradient: leaky ReLU, ELU after the shift", [rows[4][2], rows[5][2]], [0.0, 0.0])
    check("ReLUs with no gradient before the shift", rows[0][2], 0.0)
    say("""Leaky ReLU keeps a slope of 0.01 for negative inputs, so every unit still gets a small
        gradient and can climb back. ELU's negative side, alpha (e^x - 1), flattens out for very
        negative inputs: its units are alive, but their gradient here is tiny.""")

    heading("Maxout: the max of two linear pieces")
    m = nn.Maxout(50, 20, pieces=2)
    lin = nn.Linear(50, 20)
    say("""A Maxout unit computes max(w1.x + b1, w2.x + b2). It is never flat everywhere and never
        saturates, at the cost of twice the parameters. ReLU is the special case where the second
        piece is fixed at zero.""")
    n_maxout, n_linear = sum(p.size for p in m.parameters()), sum(p.size for p in lin.parameters())
    check("Maxout parameters / Linear parameters", n_maxout / n_linear, 2.0)
    w, b = m.weight.numpy(), m.bias.numpy()
    by_hand = np.maximum(inputs.numpy() @ w[0::2].T + b[0::2], inputs.numpy() @ w[1::2].T + b[1::2])
    check("nn.Maxout equals the max of the two pieces", float(np.abs(m(inputs).numpy() - by_hand).max()), 0.0, tol=1e-5)
    m.weight.data[1::2] = 0.0
    m.bias.data[1::2] = 0.0
    first = inputs.numpy() @ w[0::2].T + b[0::2]
    check("with the second piece at zero it is ReLU", float(np.abs(m(inputs).numpy() - np.maximum(first, 0)).max()),
          0.0, tol=1e-5)
    m.bias.data[0::2] = -10.0
    m.zero_grad()
    m(inputs).sum().backward()
    check("Maxout units with no gradient after the same -10 shift",
          float((np.abs(m.weight.grad.reshape(20, 2, 50)).sum((1, 2)) == 0).mean()), 0.0,
          note="the zero piece wins and keeps learning")

    plt = plots_wanted(opts)
    if plt is not None:
        grid = np.linspace(-5, 5, 401, dtype=np.float32)
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for name, act in ACTIVATIONS.items():
            y, g = local_gradient(act, grid)
            axes[0].plot(grid, y, label=name)
            axes[1].plot(grid, g, label=name)
        axes[0].set(title="activation", ylim=(-1.5, 3))
        axes[1].set(title="local gradient (from backward)")
        axes[1].legend(fontsize=8)
        save_figure(opts, fig, "08_activations")


if __name__ == "__main__":
    run(main)
