"""Hyperparameter search: random beats grid, and learning rates live on a log scale.

Learning rate and weight decay are not learned by backprop; we pick them by
training several models and comparing them on a validation split (never on the
test set). With a fixed budget of training runs there are two classic ways to
place them: a grid, or random draws. When one hyperparameter matters much more
than the other, as the learning rate usually does, random search tries many more
distinct values of it for the same cost (Bergstra and Bengio, 2012).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn, optim

LR_RANGE = (1e-3, 1.0)
WD_RANGE = (1e-6, 1e-1)


def log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """n values whose logarithm is uniform on [log lo, log hi]."""
    return 10 ** rng.uniform(math.log10(lo), math.log10(hi), n)


def train_and_validate(data: dict, lr: float, wd: float, epochs: int, batch: int = 50, seed: int = 0) -> float:
    """Train a small MLP with SGD + momentum and weight decay; return validation accuracy."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    x, y = data["x_train"], data["y_train"]
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            loss = F.cross_entropy(model(tg.Tensor(x[idx])), tg.Tensor(y[idx]))
            if not np.isfinite(loss.item()):
                return 0.0                      # diverged: as bad as it gets
            opt.zero_grad()
            loss.backward()
            opt.step()
    data.setdefault("models", {})[(lr, wd)] = model
    with tg.no_grad():
        pred = model(tg.Tensor(data["x_val"])).data.argmax(1)
    return float((pred == data["y_val"]).mean())


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_val, epochs, side = (500, 500, 4, 3) if opts.quick else (2000, 1000, 5, 4)
    budget = side * side

    heading("Sampling on a log scale")
    say("""Learning rates of 0.001 and 0.002 behave very differently (twice the step), while 0.501 and
        0.502 behave the same. What matters is the ratio, so we sample the exponent: lr = 10^u with u
        uniform between -3 and 0. Each decade then gets the same share of the trials. Sampling lr
        itself uniformly between 0.001 and 1 would put nine tenths of the trials in the top decade.""")
    rng = np.random.default_rng(0)
    logu = log_uniform(rng, *LR_RANGE, 30000)
    flat = rng.uniform(*LR_RANGE, 30000)
    decades = [(1e-3, 1e-2), (1e-2, 1e-1), (1e-1, 1.0)]
    share_log = [float(np.mean((logu >= a) & (logu < b))) for a, b in decades]
    share_flat = [float(np.mean((flat >= a) & (flat < b))) for a, b in decades]
    table(["decade", "log-uniform", "uniform"], [[f"[{a:g}, {b:g})", s1, s2] for (a, b), s1, s2 in
                                                 zip(decades, share_log, share_flat)], ".3f")
    check("log-uniform: each decade gets a third", share_log, [1 / 3] * 3, tol=0.015)
    check("uniform: the top decade gets 0.9 / 0.999 of the draws", share_flat[2], 0.9 / 0.999, tol=0.01)

    heading(f"Grid versus random with the same budget of {budget} training runs")
    images, labels = tg.data.mnist("train")
    flat_images = images.reshape(len(images), -1).astype(np.float32) / 255.0
    data = dict(x_train=flat_images[:n_train], y_train=labels[:n_train],
                x_val=flat_images[6000:6000 + n_val], y_val=labels[6000:6000 + n_val])
    say(f"""Model: a 784-32-10 MLP with ReLU, SGD with momentum 0.9, {epochs} epochs over {n_train} training
        digits; score: accuracy on {n_val} validation digits. The search space is lr in [0.001, 1] and
        weight decay in [1e-6, 0.1], both on a log scale. The grid takes {side} evenly spaced exponents
        of each; random search draws {budget} independent (lr, wd) pairs.""")
    grid_lr = np.geomspace(*LR_RANGE, side)
    grid_wd = np.geomspace(*WD_RANGE, side)
    grid = [(float(a), float(b)) for a in grid_lr for b in grid_wd]
    rng = np.random.default_rng(1)
    rand = list(zip(log_uniform(rng, *LR_RANGE, budget).tolist(), log_uniform(rng, *WD_RANGE, budget).tolist()))
    grid_acc = [train_and_validate(data, lr, wd, epochs) for lr, wd in grid]
    rand_acc = [train_and_validate(data, lr, wd, epochs) for lr, wd in rand]
    rows = [["grid", i + 1, lr, wd, a] for i, ((lr, wd), a) in enumerate(zip(grid, grid_acc))]
    rows += [["random", i + 1, lr, wd, a] for i, ((lr, wd), a) in enumerate(zip(rand, rand_acc))]
    table(["search", "run", "lr", "weight decay", "val acc"], rows, ".3g")

    heading("Which hyperparameter mattered?")
    by_lr = np.array(grid_acc).reshape(side, side)          # rows: lr, columns: wd
    spread_lr = float(np.median(by_lr.max(0) - by_lr.min(0)))
    spread_wd = float(np.median(by_lr.max(1) - by_lr.min(1)))
    say(f"""Read the grid both ways. Changing lr at a fixed weight decay moves the validation accuracy by
        {spread_lr:.2f} (median over the columns); changing weight decay at a fixed lr moves it by
        {spread_wd:.2f}. For short training runs like these, weight decay is nearly irrelevant and lr
        decides almost everything: the problem has a low effective dimension.""")
    check("lr moves accuracy more than weight decay does", spread_lr, at_least=3 * spread_wd)
    n_grid_lr = len({round(math.log10(lr), 9) for lr, _ in grid})
    n_rand_lr = len({round(math.log10(lr), 9) for lr, _ in rand})
    say(f"""So count what each search learned about lr. The grid spent {budget} runs but tried only
        {n_grid_lr} distinct learning rates: {side} runs of every lr differ only in the unimportant weight
        decay, and tell us little new. Random search tried {n_rand_lr} distinct learning rates.""")
    best_grid, best_rand = max(grid_acc), max(rand_acc)
    good = max(best_grid, best_rand) - 0.05
    good_grid = len({lr for (lr, _), a in zip(grid, grid_acc) if a >= good})
    good_rand = len({lr for (lr, _), a in zip(rand, rand_acc) if a >= good})
    table(["search", "best val acc", "distinct lrs within 0.05 of the best"],
          [["grid", best_grid, good_grid], ["random", best_rand, good_rand]], ".3f")
    check("random search finds a model at least as good as the grid (within 0.01)", best_rand,
          at_least=best_grid - 0.01)
    check("random search maps the good lr region with more distinct values", good_rand, at_least=good_grid + 1)
    say("""The grid's best result depends on whether one of its few lr values happens to land in the
        good band; random search samples that band several times. Practical recipe from the course:
        one validation split, random search on log scales, first coarse (wide ranges, short runs),
        then fine (narrow ranges around the best, longer runs); and if the best value sits at the edge
        of the range, widen the range.""")

    heading("One look at the test set")
    best_lr, best_wd = rand[int(np.argmax(rand_acc))]
    test_images, test_labels = tg.data.mnist("test")
    model = data["models"][(best_lr, best_wd)]
    with tg.no_grad():
        pred = model(tg.Tensor(test_images[:1000].reshape(1000, -1).astype(np.float32) / 255.0)).data.argmax(1)
    test_acc = float((pred == test_labels[:1000]).mean())
    say(f"""Only after choosing (lr = {best_lr:.3g}, weight decay = {best_wd:.2g}) on the validation split do we
        evaluate that one model on 1000 test digits. Its test accuracy is an honest estimate because
        the test set took no part in the choice.""")
    check("test accuracy of the chosen model", test_acc, at_least=0.7, note="chance is 0.1")
    check("validation and test accuracy agree", abs(test_acc - max(rand_acc)), at_most=0.08)

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, (name, pts, acc) in zip(axes, [("grid", grid, grid_acc), ("random", rand, rand_acc)]):
            lr, wd = np.array(pts).T
            sc = ax.scatter(lr, wd, c=acc, cmap="viridis", vmin=0, vmax=1, s=60, edgecolors="k")
            for v in lr:
                ax.axvline(v, ymin=0, ymax=0.04, color="r", lw=2)
            ax.set(xscale="log", yscale="log", xlabel="learning rate", title=f"{name}: {len(set(lr))} distinct lrs",
                   xlim=(LR_RANGE[0] / 1.5, LR_RANGE[1] * 1.5))
        axes[0].set_ylabel("weight decay")
        fig.colorbar(sc, ax=axes, label="validation accuracy")
        save_figure(opts, fig, "16_grid_vs_random")


if __name__ == "__main__":
    run(main)
