"""The perceptron, its training rule, and why XOR needs a hidden layer.

A perceptron outputs sgn(w·x + b). Its training rule nudges w towards every
example it gets wrong. On data that a straight line can separate it stops
making mistakes after a few passes; on XOR no line exists, so it never does.
One hidden layer of nonlinear units bends the space until a line suffices.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([-1, 1, 1, -1])


def with_bias(x: np.ndarray) -> np.ndarray:
    """The bias trick: append a constant-1 feature so that b becomes the last weight."""
    return np.c_[x, np.ones(len(x), dtype=np.float32)]


def predict(w: tg.Tensor, x: np.ndarray) -> np.ndarray:
    """sgn(w·x) for every row of x (already carrying the bias feature); sgn(0) counts as +1."""
    with tg.no_grad():
        s = tg.Tensor(x) @ w
    return np.where(s.numpy() >= 0, 1, -1)


def train_perceptron(x: np.ndarray, y: np.ndarray, epochs: int) -> tuple[tg.Tensor, list[int], list[float]]:
    """The course's rule: for each example, y' = sgn(w·x); if wrong, w <- w + alpha (y - y') x.

    alpha decays with the epoch t as 1000 / (1000 + t). Returns the weights, the number
    of mistakes in each epoch (stopping after the first epoch without one), and the
    accuracy of the weights at the end of each epoch.
    """
    xb = with_bias(x)
    w = tg.zeros(xb.shape[1])
    mistakes, accuracy = [], []
    for t in range(epochs):
        alpha = 1000.0 / (1000.0 + t)
        wrong = 0
        for xi, yi in zip(xb, y):
            y_hat = int(predict(w, xi[None])[0])
            if y_hat != yi:
                w.data += alpha * (yi - y_hat) * xi
                wrong += 1
        mistakes.append(wrong)
        accuracy.append(float((predict(w, xb) == y).mean()))
        if wrong == 0:
            break
    return w, mistakes, accuracy


def mlp_xor(x: np.ndarray, y01: np.ndarray, hidden: int, steps: int, lr: float) -> tuple[list[tg.Tensor], list[float]]:
    """One hidden layer, p = sigmoid(W2 tanh(W1 x + b1) + b2), trained by gradient descent
    on the negative log-likelihood; the engine's backward() supplies every gradient."""
    w1 = tg.Tensor(tg.randn(2, hidden).numpy() * 1.0, requires_grad=True, label="W1")
    b1 = tg.zeros(hidden, requires_grad=True)
    w2 = tg.Tensor(tg.randn(hidden, 1).numpy() * 0.5, requires_grad=True, label="W2")
    b2 = tg.zeros(1, requires_grad=True)
    params, xs, ys = [w1, b1, w2, b2], tg.Tensor(x), tg.Tensor(y01.reshape(-1, 1).astype(np.float32))
    losses = []
    for _ in range(steps):
        p = ((xs @ w1 + b1).tanh() @ w2 + b2).sigmoid()
        loss = -(ys * p.log() + (1 - ys) * (1 - p).log()).mean()
        for q in params:
            q.zero_grad()
        loss.backward()
        for q in params:
            q.data -= lr * q.grad
        losses.append(loss.item())
    return params, losses


def mlp_forward(params: list[tg.Tensor], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hidden activations and output probabilities, without recording a graph."""
    w1, b1, w2, b2 = params
    with tg.no_grad():
        h = (tg.Tensor(x) @ w1 + b1).tanh()
        p = (h @ w2 + b2).sigmoid()
    return h.numpy(), p.numpy().ravel()


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("A perceptron on data a line can separate")
    x, y01 = tg.data.blobs(n=100 if opts.quick else 400, centers=[[-1.5, -1.5], [1.5, 1.5]], std=0.6, seed=1)
    y = np.where(y01 == 1, 1, -1)
    say("""Two clouds of 2-D points, labelled -1 and +1. The weights start at zero; every time the
        perceptron gets an example wrong, it adds alpha*(y - y')*x to w, which turns the
        decision line towards that example. Correct answers change nothing.""")
    w, mistakes, acc = train_perceptron(x, y, epochs=50)
    table(["epoch", "mistakes", "accuracy after"],
          [[i + 1, m, a] for i, (m, a) in enumerate(zip(mistakes, acc))], ".3f")
    check("mistakes in the last epoch", mistakes[-1], 0, note="converged")
    check("training accuracy", acc[-1], 1.0)
    wv = w.numpy()
    say(f"""Learned line: {wv[0]:.2f}*x0 {wv[1]:+.2f}*x1 {wv[2]:+.2f} = 0. The perceptron convergence
        theorem promises this: if some line separates the classes, the rule finds one after a
        finite number of mistakes.""")

    heading("The same rule on XOR")
    say("""XOR labels (0,1) and (1,0) as +1 and (0,0) and (1,1) as -1. Any line that puts both +1
        corners on one side puts at least one -1 corner there too, so at most 3 of the 4 points
        can be right, whatever the weights.""")
    w_xor, mistakes_xor, acc_xor = train_perceptron(XOR_X, XOR_Y, epochs=100)
    print(f"  mistakes per epoch (first 10): {mistakes_xor[:10]}")
    check("epochs without a mistake", sum(m == 0 for m in mistakes_xor), 0, note="it never converges")
    check("best accuracy over 100 epochs", max(acc_xor), at_most=0.75, note="theory: 3 of 4 at best")

    heading("A hidden layer solves XOR")
    say("""Now put a layer of tanh units in front, h = tanh(W1 x + b1), and read the answer from a
        sigmoid unit on top, p = sigmoid(W2 h + b2). The sgn step has no useful gradient, so we
        train with the negative log-likelihood loss and gradient descent; backward() computes
        every gradient through the graph.""")
    tg.manual_seed(0)
    params, losses = mlp_xor(XOR_X, (XOR_Y > 0).astype(np.int64), hidden=4, steps=600 if opts.quick else 1500, lr=0.5)
    hidden, prob = mlp_forward(params, XOR_X)
    table(["x0", "x1", "label", "p(+1)"],
          [[*map(int, xi), int(yi), pi] for xi, yi, pi in zip(XOR_X, XOR_Y, prob)], ".3f")
    check("loss after training", losses[-1], at_most=0.1, note=f"it started at {losses[0]:.3f}")
    check("XOR points right", int(((prob > 0.5) == (XOR_Y > 0)).sum()), 4)
    say("""Why does it work? In the space of the hidden activations the four corners are no longer
        arranged as XOR. Run the plain perceptron rule on h instead of x: it converges.""")
    _, mistakes_h, acc_h = train_perceptron(hidden, XOR_Y, epochs=100)
    check("perceptron on the hidden features: accuracy", acc_h[-1], 1.0,
          note=f"after {len(mistakes_h)} epochs")

    heading("A noisy XOR cloud")
    xs, ys = tg.data.xor(n=200 if opts.quick else 400, noise=0.1, seed=0)
    tg.manual_seed(1)
    params2, _ = mlp_xor(xs, ys, hidden=8, steps=800 if opts.quick else 2000, lr=0.5)
    _, prob2 = mlp_forward(params2, xs)
    mlp_acc = float(((prob2 > 0.5) == (ys == 1)).mean())
    _, _, lin_acc = train_perceptron(xs, np.where(ys == 1, 1, -1), epochs=20)
    check("perceptron accuracy on noisy XOR", max(lin_acc), at_most=0.80, note="a line cannot do it")
    check("one-hidden-layer network accuracy", mlp_acc, at_least=0.90)

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        for ax, pts, labels, decide, name in (
                (axes[0], x, y, lambda g: predict(w, with_bias(g)) > 0, "perceptron on separable data"),
                (axes[1], xs, ys, lambda g: mlp_forward(params2, g)[1] > 0.5, "one hidden layer on XOR")):
            lo, hi = pts.min(0) - 0.5, pts.max(0) + 0.5
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
            grid = np.c_[gx.ravel(), gy.ravel()].astype(np.float32)
            ax.contourf(gx, gy, decide(grid).reshape(gx.shape), alpha=0.25, cmap="coolwarm")
            ax.scatter(*pts.T, c=labels, cmap="coolwarm", s=10)
            ax.set_title(name)
        save_figure(opts, fig, "05_perceptron_xor")

if __name__ == "__main__":
    run(main)
