"""Linear classifiers and the templates they learn.

A linear classifier scores an image x with f(x) = W x + b: one row of W per
class, so each score is the inner product of the image with that row. Each row
is therefore a template, and classifying means finding the template that
matches best. We train one on the digits with a softmax loss and look at its
ten templates.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import accuracy, check, heading, images, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn, optim


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, epochs = (2000, 8) if opts.quick else (8000, 15)
    x_train, y_train, what = images(opts, "train", n_train)
    x_test, y_test, _ = images(opts, "test")
    digits, d = what == "digits", x_train.shape[1]      # --data DIR: CIFAR-10, 3072 inputs, lower floors
    mean_image = x_train.mean(0)
    xs, xt = x_train - mean_image, x_test - mean_image

    heading("The score function")
    model = nn.Linear(d, 10)
    nn.init.small_random_(model.weight, std=0.001)
    nn.init.zeros_(model.bias)
    say(f"""W is {tuple(model.weight.shape)} and b is {tuple(model.bias.shape)}: {d} pixel values go in, 10 class
        scores come out, {10 * d + 10:,} numbers in all. Once trained, the training set can be thrown away;
        classifying a digit costs one matrix-vector product instead of a pass over every stored
        example, as k-NN needed.""")
    check("parameters", sum(p.size for p in model.parameters()), 10 * d + 10, note=f"10 x {d} weights + 10 biases")
    one = tg.Tensor(xs[:1])
    check("F.linear(x, W, b) is x W^T + b", model(one).numpy(),
          xs[:1] @ model.weight.numpy().T + model.bias.numpy(), tol=1e-6)

    heading("Training with the softmax loss and mini-batch SGD")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = tg.data.DataLoader((xs, y_train), batch_size=100, shuffle=True, seed=0)
    rows = []
    for epoch in range(1, epochs + 1):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with tg.no_grad():
            rows.append([epoch, F.cross_entropy(model(tg.Tensor(xs)), y_train).item(),
                         accuracy(model(tg.Tensor(xs)), y_train), accuracy(model(tg.Tensor(xt)), y_test)])
    table(["epoch", "train loss", "train acc", "test acc"], rows, ".3f")
    check("test accuracy", rows[-1][3], at_least=0.85 if digits else 0.25,
          note="chance is 0.10; lesson 01's k-NN: 0.875 with --quick, 0.948 in full" if digits else "chance is 0.10")
    check("train loss fell below log(10)", rows[-1][1], at_most=0.5 if digits else 2.0, note="it starts near 2.303")

    heading("Each row of W is a template")
    W = model.weight.numpy()
    say("""Reshape a row of W to 28x28 and it looks like a blurred digit: positive weight where that
        class tends to have ink, negative where other classes do. Compare each template with the
        average digit of every class (after the same centering): the best match should be its own.""")
    class_means = np.stack([xs[y_train == c].mean(0) for c in range(10)])
    corr = np.corrcoef(np.r_[W, class_means])[:10, 10:]
    table(["template", "best-matching class mean", "correlation"],
          [[c, int(corr[c].argmax()), float(corr[c].max())] for c in range(10)], ".2f")
    check("templates whose best match is their own class", int((corr.argmax(1) == np.arange(10)).sum()),
          at_least=9 if digits else 5)
    say("""One template per class is also the weakness: a class that comes in several shapes (a 7 with
        and without a bar, a 4 open or closed) must be squeezed into a single blurry average.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(2, 5, figsize=(10, 4.4))
        for c, ax in enumerate(axes.ravel()):
            lim = np.abs(W[c]).max()
            ax.imshow(W[c].reshape(28, 28) if digits else W[c].reshape(3, 32, 32).mean(0), cmap="RdBu_r",
                      vmin=-lim, vmax=lim)
            ax.set_title(f"template {c}")
            ax.axis("off")
        fig.suptitle("rows of W (red: evidence for the class, blue: against)")
        save_figure(opts, fig, "02_linear_templates")


if __name__ == "__main__":
    run(main)
