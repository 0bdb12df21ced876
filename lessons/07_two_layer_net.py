"""A two-layer neural network on the spiral.

Three interleaved spiral arms in the plane: no straight line separates them,
so a linear classifier is stuck near 50%. Insert one hidden layer of ReLU units,
s = W2 max(0, W1 x + b1) + b2, and the decision boundary can bend around the
arms. The nonlinearity is the whole trick: without it W2 W1 would collapse back
into a single linear map.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import accuracy, check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn, optim


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int, lr: float, reg: float) -> list[float]:
    """Full-batch gradient descent with momentum on softmax loss + L2 weight decay."""
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=reg)
    xs, losses = tg.Tensor(x), []
    for _ in range(steps):
        loss = F.cross_entropy(model(xs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    x, y = tg.data.spiral(n_per_class=100, classes=3, noise=0.2, seed=0)
    steps = 1000 if opts.quick else 3000
    say(f"""{len(x)} points, 3 classes, 2 features each (the CS231n spiral). We train on all of them with
        full-batch gradient descent and report training accuracy: the question here is what each
        model *can* represent.""")

    heading("A linear classifier")
    linear = nn.Linear(2, 3)
    train(linear, x, y, steps=300, lr=0.5, reg=1e-3)
    lin_acc = accuracy(linear(tg.Tensor(x)), y)
    say("""Each class gets one straight boundary, so at best it can claim a wedge of the plane; every
        arm winds through all three wedges.""")
    check("linear classifier accuracy", lin_acc, at_least=0.4, at_most=0.65, note="CS231n: about 0.49")

    heading("One hidden layer of 100 ReLU units")
    net = nn.Sequential(nn.Linear(2, 100), nn.ReLU(), nn.Linear(100, 3))
    losses = train(net, x, y, steps=steps, lr=0.1, reg=1e-3)
    net_acc = accuracy(net(tg.Tensor(x)), y)
    table(["step", "loss"], [[s, losses[s - 1]] for s in (1, 10, 100, steps // 2, steps)], ".4f")
    check("loss at the first step", losses[0], 1.0986, tol=0.1, note="log 3, no knowledge yet")
    check("two-layer network accuracy", net_acc, at_least=0.90, note="CS231n: about 0.98")
    table(["model", "parameters", "training accuracy"],
          [["linear", sum(p.size for p in linear.parameters()), lin_acc],
           ["2-layer, 100 hidden", sum(p.size for p in net.parameters()), net_acc]], ".3f")

    heading("Without the nonlinearity")
    flat = nn.Sequential(nn.Linear(2, 100), nn.Linear(100, 3))
    train(flat, x, y, steps=300, lr=0.05, reg=1e-3)
    flat_acc = accuracy(flat(tg.Tensor(x)), y)
    W1, b1, W2, b2 = (p.numpy() for p in flat.parameters())
    say(f"""Remove the ReLU and the two layers compose into one: W2 (W1 x + b1) + b2 = (W2 W1) x +
        (W2 b1 + b2), a 3 x 2 linear classifier with extra steps. Accuracy: {flat_acc:.3f}.""")
    with tg.no_grad():
        check("largest |stacked net - single linear map|",
              float(np.abs(flat(tg.Tensor(x)).numpy() - (x @ (W2 @ W1).T + W2 @ b1 + b2)).max()), 0.0, tol=1e-4)
    check("stacked linear layers accuracy", flat_acc, at_most=0.65, note="no better than linear")

    plt = plots_wanted(opts)
    if plt is not None:
        gx, gy = np.meshgrid(np.linspace(-1.2, 1.2, 240), np.linspace(-1.2, 1.2, 240))
        grid = tg.Tensor(np.c_[gx.ravel(), gy.ravel()])
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
        for ax, model, name, acc in ((axes[0], linear, "linear", lin_acc), (axes[1], net, "2-layer ReLU net", net_acc)):
            with tg.no_grad():
                z = model(grid).numpy().argmax(1).reshape(gx.shape)
            ax.contourf(gx, gy, z, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3, cmap="brg")
            ax.scatter(*x.T, c=y, s=8, cmap="brg")
            ax.set(title=f"{name}: accuracy {acc:.2f}", aspect="equal")
        save_figure(opts, fig, "07_spiral_boundaries")


if __name__ == "__main__":
    run(main)
