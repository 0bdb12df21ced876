"""Sanity checks before and during training.

Before spending hours on training, spend seconds on four checks the course
recommends: the loss at initialization has the value chance predicts; the
analytic gradients match numerical ones; the network can overfit a tiny
subset; and during training each update changes the weights by about a
thousandth of their size.
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
from lessons._lesson import accuracy, check, digits, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn, optim
from tinygrad_cv.gradcheck import GradcheckError


class BuggySigmoid(tg.autograd.Function):
    """A sigmoid whose backward forgot the (1 - sigma) factor: the kind of slip gradcheck exists for."""

    @staticmethod
    def forward(ctx, a):
        out = 1 / (1 + (-a).exp())
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, up):
        (out,) = ctx.saved_tensors
        return up * out                          # should be up * out * (1 - out)


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    x, y = digits("train", 1000 if opts.quick else 4000)
    x = x - x.mean(0)
    xt = tg.Tensor(x)

    heading("The loss at initialization")
    say("""With small random weights a 10-class softmax classifier is maximally unsure: every class
        gets probability about 1/10, so the loss should be about -log(1/10) = log 10 = 2.303. A very
        different number means a bug or a bad initialization, before any training has happened.""")
    model = mlp()
    nn.init.small_random_(model[2].weight, std=0.001)
    with tg.no_grad():
        loss0 = F.cross_entropy(model(xt), y).item()
    check("loss at initialization", loss0, math.log(10), tol=0.02, note="log 10 = 2.303")
    lam = 10.0
    say(f"""Turn on a strong L2 penalty (lambda = {lam:g}) and the loss must go up, by exactly
        (lambda/2) sum(w^2) over the weight matrices. Below, the engine builds the penalty into the
        graph; NumPy recomputes it from the raw weights. A loss that does not move, or moves by a
        different amount, means the penalty is not wired in.""")
    weights = [p for n, p in model.named_parameters() if "weight" in n]
    penalty = sum((w * w).sum() for w in weights) * (lam / 2)
    loss_reg = F.cross_entropy(model(xt), y) + penalty
    expected_penalty = lam / 2 * sum(float((w.numpy().astype(np.float64) ** 2).sum()) for w in weights)
    check("loss with the penalty - loss without", loss_reg.item() - loss0, expected_penalty, rel=1e-4,
          note="(lambda/2) sum w^2 from NumPy")
    model.zero_grad()
    loss_reg.backward()
    g_reg = np.array(model[0].weight.grad)
    model.zero_grad()
    F.cross_entropy(model(xt), y).backward()
    g_plain = np.asarray(model[0].weight.grad)
    w0 = model[0].weight.numpy()
    check("its gradient: dR/dW1 = lambda W1", float(np.abs((g_reg - g_plain) - lam * w0).max()), at_most=1e-5 * lam * float(np.abs(w0).max()),
          note="largest error, relative to the largest lambda|W1|")
    model.zero_grad()

    heading("Gradient check")
    rng = np.random.default_rng(0)
    xs = tg.Tensor(rng.standard_normal((8, 20)), dtype=np.float64)
    ys = rng.integers(0, 3, 8)
    params = [tg.Tensor(rng.standard_normal(s) * 0.5, requires_grad=True, dtype=np.float64)
              for s in ((16, 20), (16,), (3, 16), (3,))]

    def two_layer(w1, b1, w2, b2):
        return F.cross_entropy(F.linear(F.tanh(F.linear(xs, w1, b1)), w2, b2), ys)

    say("""tg.gradcheck compares every analytic derivative from backward with a central difference in
        float64. Here: a small 20-16-3 tanh network, all 387 parameters.""")
    check("gradcheck, 20-16-3 tanh network", tg.gradcheck(two_layer, *params), True)
    say("""Now an operation with a bug in its backward rule: a sigmoid whose local derivative forgot the
        (1 - sigma) factor. The forward pass is right, so the loss looks fine; only the check sees it.""")
    z = tg.Tensor(rng.standard_normal(5), requires_grad=True, dtype=np.float64)
    try:
        tg.gradcheck(lambda t: BuggySigmoid.apply(t).sum(), z, raise_exception=True)
        caught = ""
    except GradcheckError as e:
        caught = str(e)
    print(f"   gradcheck says: {caught}")
    check("gradcheck catches the buggy backward", bool(caught), True)

    heading("Overfit a tiny subset")
    tiny_x, tiny_y = x[:20], y[:20]
    model = mlp()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    rows, curve = [], []
    for step in range(1, 201):
        loss = F.cross_entropy(model(tg.Tensor(tiny_x)), tiny_y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curve.append(loss.item())
        if step in (1, 25, 50, 100, 200):
            rows.append([step, loss.item(), accuracy(model(tg.Tensor(tiny_x)), tiny_y)])
    say("""Twenty digits, no regularization: a network that cannot drive the loss to about zero on them
        has a bug (or far too little capacity). This says nothing about generalization; it checks the
        plumbing.""")
    table(["step", "loss", "train accuracy"], rows, ".4f")
    check("accuracy on the 20 digits", rows[-1][2], 1.0)
    check("loss on the 20 digits", rows[-1][1], at_most=0.01)

    heading("The weights:updates ratio")
    say("""While training, compare the size of each update with the size of the weights it changes,
        ||W_after - W_before|| / ||W_before||, layer by layer. The course's rule of thumb is about 1e-3:
        far below, the learning rate is too low and nothing happens; far above, each step rewrites
        the weights. Here: 50 steps of SGD with momentum 0.9 at five learning rates, geometric mean
        of the 50 ratios per layer.""")
    xv, yv = digits("train", 1000, skip=len(x))
    xv = xv - digits("train", len(x))[0].mean(0)

    def sweep_run(lr: float) -> list:
        tg.manual_seed(0)
        model = mlp()
        opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        loader = tg.data.DataLoader((x, y), batch_size=100, shuffle=True, seed=0)
        per_layer: dict[str, list[float]] = {"0.weight": [], "2.weight": []}
        while len(per_layer["0.weight"]) < 50:
            for xb, yb in loader:
                before = {n: p.numpy().copy() for n, p in model.named_parameters() if n in per_layer}
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                for n, p in model.named_parameters():
                    if n in per_layer:
                        per_layer[n].append(float(np.linalg.norm(p.numpy() - before[n]) / np.linalg.norm(before[n])))
                if len(per_layer["0.weight"]) == 50:
                    break
        with tg.no_grad():
            train_loss = F.cross_entropy(model(xt), y).item()
            val_acc = accuracy(model(tg.Tensor(xv)), yv)
        ratios[lr] = [float(np.exp(np.mean(np.log(v)))) for v in per_layer.values()]
        return [lr, *ratios[lr], train_loss, val_acc]

    ratios: dict[float, list[float]] = {}
    rows = [sweep_run(lr) for lr in (1e-4, 1e-3, 1e-2, 1e-1, 3.0)]
    table(["learning rate", "layer 1 ratio", "layer 2 ratio", "train loss", "val acc"], rows, ".3g")
    check("lr 1e-4: update/weight ratios", max(ratios[1e-4]), at_most=1e-4, note="far below 1e-3")
    check("lr 1e-4: loss still at chance", rows[0][3], math.log(10), tol=0.05)
    check("lr 3.0: update/weight ratios", min(ratios[3.0]), at_least=0.1, note="each step rewrites 10%+")
    check("lr 3.0: loss after 50 steps", rows[-1][3] if np.isfinite(rows[-1][3]) else float("inf"), at_least=5.0,
          note="it blew up")
    check("lr 1e-2 / lr 1e-3: ratio of their layer-1 ratios", ratios[1e-2][0] / ratios[1e-3][0], 10.0, rel=0.2,
          note="small steps: the update grows with the learning rate")

    say("""While the steps are small the ratio is proportional to the learning rate, so the 1e-3 run
        says which learning rate gives the course's 1e-3: lr = 1e-3 * (1e-3 / its measured ratio).
        Train once more at that learning rate and measure.""")
    lr_star = float(f"{1e-3 * 1e-3 / ratios[1e-3][0]:.2g}")
    star = sweep_run(lr_star)
    table(["learning rate", "layer 1 ratio", "layer 2 ratio", "train loss", "val acc"], [star], ".3g")
    check(f"lr {lr_star:g}: update/weight ratios", star[1:3], 1e-3, rel=0.2, note="the course's ~1e-3")
    check(f"lr {lr_star:g}: train loss after 50 steps", star[3], at_most=rows[1][3] - 0.05,
          note="below the lr 1e-3 run: it learns")
    best = max(rows + [star], key=lambda r: r[4] if np.isfinite(r[3]) else -1.0)
    check(f"best validation accuracy after 50 steps: lr", best[0], 0.1)
    check(f"lr {best[0]:g}: update/weight ratios", best[1:3], at_least=1e-2, at_most=5e-2, note="10-50x the rule of thumb")
    say(f"""At ratio ~1e-3 the network learns, steadily but slowly. In only 50 steps, though, the best
        validation accuracy comes from lr {best[0]:g}, whose updates are about {best[1]:.0%} of the weights
        per step: a short run rewards big steps, and 1e-3 is a rough heuristic for long runs, where
        the gradients, and with them the updates, shrink. What the ratio catches reliably, at a
        glance and per layer, is a learning rate that is off by orders of magnitude (the 1e-4 and
        3.0 rows).""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.plot(range(1, len(curve) + 1), curve)
        ax.set(xlabel="step", ylabel="loss on 20 digits", yscale="log", title="overfitting a tiny subset")
        save_figure(opts, fig, "13_overfit_tiny")


if __name__ == "__main__":
    run(main)
