"""Optimization: from random guessing to following the gradient.

Training means finding the weights W that make the loss small. We try three
strategies on the digits' linear softmax classifier with the same budget of
loss evaluations: guessing at random, randomly stepping and keeping what helps,
and stepping along the negative gradient. Then we check the engine's analytic
gradient against a numerical one, and see why mini-batches are the norm.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import accuracy, check, digits, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import optim


def loss_of(W: tg.Tensor, x: tg.Tensor, y: np.ndarray) -> float:
    with tg.no_grad():
        return F.cross_entropy(x @ W, y).item()


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n, budget = (1000, 100) if opts.quick else (4000, 300)
    x_np, y = digits("train", n)
    x_np = np.c_[x_np - x_np.mean(0), np.ones(n, dtype=np.float32)]   # centred, plus the bias feature
    x = tg.Tensor(x_np)
    rng = np.random.default_rng(0)
    say(f"""{n} digits, centred, with a constant-1 feature appended so that the bias is the last row of
        W (785 x 10). Every strategy gets {budget} evaluations of the loss.""")

    heading("Strategy 1: random search")
    best_loss, best_W = np.inf, None
    for _ in range(budget):
        W = tg.Tensor(rng.standard_normal((785, 10)) * 0.01)
        loss = loss_of(W, x, y)
        if loss < best_loss:
            best_loss, best_W = loss, W
    random_acc = accuracy(x @ best_W, y)
    say(f"""Draw W at random, keep the best. After {budget} draws the best loss is {best_loss:.3f}: barely
        below log 10 = 2.303, the loss of knowing nothing.""")
    check("random search: best loss", best_loss, at_least=2.0, at_most=np.log(10), note="just below log 10")
    check("random search: accuracy", random_acc, at_least=0.1, at_most=0.5, note="a little better than chance (0.10)")

    heading("Strategy 2: random local search")
    W, loss = tg.Tensor(rng.standard_normal((785, 10)) * 0.001), None
    loss = loss_of(W, x, y)
    for _ in range(budget):
        trial = tg.Tensor(W.numpy() + rng.standard_normal((785, 10)) * 0.001)
        trial_loss = loss_of(trial, x, y)
        if trial_loss < loss:
            W, loss = trial, trial_loss
    local_loss, local_acc = loss, accuracy(x @ W, y)
    say(f"""Start somewhere, try a small random step, take it only if the loss goes down. In 785 x 10 = 7,850
        dimensions almost every random direction is useless, so progress is slow: loss {local_loss:.3f}.""")

    heading("Strategy 3: follow the gradient")
    W = tg.Tensor(rng.standard_normal((785, 10)) * 0.001, requires_grad=True)
    opt = optim.SGD([W], lr=0.5)
    curve = []
    for _ in range(budget):
        loss = F.cross_entropy(x @ W, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
    gd_loss, gd_acc = loss_of(W, x, y), accuracy(x @ W, y)
    table(["strategy", "final loss", "train accuracy"],
          [["random search", best_loss, random_acc], ["random local search", local_loss, local_acc],
           ["gradient descent", gd_loss, gd_acc]], ".3f")
    say("""The gradient is the direction of steepest increase, computed exactly by one backward pass;
        stepping against it, W -= lr * dL/dW, is gradient descent.""")
    check("gradient descent: accuracy", gd_acc, at_least=0.85)
    check("gradient descent beats random local search by (loss ratio)", local_loss / gd_loss, at_least=3.0)

    heading("Numerical versus analytic gradient")
    say("""The numerical gradient perturbs one weight at a time: (L(w + h) - L(w - h)) / 2h. It is slow
        (two loss evaluations per weight) and approximate, but hard to get wrong, so it is the
        referee for the fast analytic gradient from backward. Compare them with the relative
        error |a - n| / max(|a|, |n|), in float64.""")
    xs64 = tg.Tensor(x_np[:50], dtype=np.float64)
    W64 = tg.Tensor(rng.standard_normal((785, 10)) * 0.01, requires_grad=True, dtype=np.float64)
    F.cross_entropy(xs64 @ W64, y[:50]).backward()
    i, j = 300, 3                                       # one weight: pixel 300 (near the centre), class 3
    analytic = float(W64.grad[i, j])
    rows = []
    for h in (1e-1, 1e-3, 1e-5, 1e-7, 1e-9, 1e-11):
        Wp, Wm = W64.numpy().copy(), W64.numpy().copy()
        Wp[i, j] += h
        Wm[i, j] -= h
        numeric = (loss_of(tg.Tensor(Wp, dtype=np.float64), xs64, y[:50])
                   - loss_of(tg.Tensor(Wm, dtype=np.float64), xs64, y[:50])) / (2 * h)
        rows.append([h, numeric, abs(analytic - numeric) / max(abs(analytic), abs(numeric))])
    table(["h", "numerical", "relative error"], rows, ".3g")
    say(f"""The analytic value is {analytic:.6g}. Large h sees the curvature of the loss; tiny h drowns in
        round-off, since L(w + h) and L(w - h) agree in almost every digit. In between the two
        gradients agree to many digits.""")
    check("best relative error over h", min(r[2] for r in rows), at_most=1e-7)
    check("relative error at h = 1e-1 (curvature) and 1e-11 (round-off)", [rows[0][2], rows[-1][2]],
          at_least=1e3 * min(r[2] for r in rows), note="both ends far worse than the best h")
    small = tg.Tensor(x_np[:20, 250:300], dtype=np.float64)
    Ws = tg.Tensor(rng.standard_normal((50, 10)) * 0.1, requires_grad=True, dtype=np.float64)
    check("tg.gradcheck: softmax loss, all 500 weights", tg.gradcheck(lambda w: F.cross_entropy(small @ w, y[:20]), Ws),
          True)
    check("tg.gradcheck: SVM loss, all 500 weights", tg.gradcheck(lambda w: F.svm_loss(small @ w, y[:20]), Ws), True)

    heading("Mini-batch SGD")
    say("""A full pass over the data buys one gradient step. A mini-batch of B examples gives a noisy
        but unbiased estimate of the same gradient for B/N of the price. With the same number of
        examples processed, many cheap noisy steps beat a few exact ones.""")
    seen = 5 * n
    results = {}
    for B in (n, 100, 20):
        W = tg.Tensor(np.zeros((785, 10)), requires_grad=True)
        opt = optim.SGD([W], lr=0.5 if B == n else 0.1)
        loader = tg.data.DataLoader((x_np, y), batch_size=B, shuffle=True, seed=1)
        steps = 0
        while steps * B < seen:
            for xb, yb in loader:
                loss = F.cross_entropy(xb @ W, yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                steps += 1
                if steps * B >= seen:
                    break
        results[B] = (steps, loss_of(W, x, y))
    table(["batch size", "steps", "full-data loss after 5 epochs' worth"], [[B, *results[B]] for B in results], ".3f")
    check("batch 100 ends lower than full batch", results[100][1], at_most=results[n][1])
    check("batch 20 ends lower than batch 100", results[20][1], at_most=results[100][1])
    sizes = (8, 128)
    spread = {}
    for B in sizes:
        batch_losses = [loss_of(W, tg.Tensor(x_np[idx]), y[idx])
                        for idx in (rng.choice(n, B, replace=False) for _ in range(40))]
        spread[B] = float(np.std(batch_losses))
    say(f"""The price is noise. At the same W, the loss of a batch of 8 scatters with std {spread[8]:.3f},
        a batch of 128 with std {spread[128]:.3f}: roughly sqrt(128 / 8) = 4 times less. That is the
        wiggle you see on a training curve.""")
    check("noise ratio std(B=8) / std(B=128)", spread[8] / spread[128], at_least=2.0, at_most=8.0,
          note="theory: about 4; 40 batches each, so only within 2x")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(curve)
        ax.axhline(np.log(10), ls="--", color="gray", label="log 10")
        ax.set(xlabel="gradient step", ylabel="training loss", title="gradient descent, linear softmax")
        ax.legend()
        save_figure(opts, fig, "04_optimization_loss")


if __name__ == "__main__":
    run(main)
