"""Regularization beyond L2: L1, elastic net, max-norm constraints and model ensembles.

L2 (lesson 12) shrinks every weight in proportion to its size. L1 adds lambda |w|
instead: a pull of constant strength towards zero, which leaves many weights at
(almost) exactly zero. Elastic net adds both. A max-norm constraint penalises
nothing: after every step it rescales each unit's incoming weight vector back to
length c whenever it grew longer. Last, a trick that is not a penalty at all:
train a few networks from different seeds and average their predictions.
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
from tinygrad_cv import nn, optim

LR, MOMENTUM, BATCH = 0.1, 0.9, 50
SMALL = 1e-3                       # "about zero" for the weight counts


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def layers(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def max_norm_(weight: np.ndarray, c: float) -> None:
    """Project every row (one unit's incoming weights) of ``weight`` onto the ball ||w||_2 <= c, in place."""
    norms = np.linalg.norm(weight.astype(np.float64), axis=1, keepdims=True)
    weight *= np.minimum(1.0, c / np.maximum(norms, 1e-30)).astype(weight.dtype)


def fit(x: np.ndarray, y: np.ndarray, steps: int, *, l1: float = 0.0, l2: float = 0.0, c: float | None = None,
        lr: float = LR, seed: int = 0) -> tuple[nn.Sequential, dict]:
    """SGD with momentum for ``steps`` mini-batches of cross-entropy + l1 * sum |w| (weights only);
    l2 goes to the optimizer's weight_decay (the penalty (l2/2) sum w^2), and with ``c`` every
    step is followed by the max-norm projection. Returns the net (eval mode) and a log with
    the largest row norm seen right after any projection."""
    tg.manual_seed(seed)
    net = mlp()
    weights = [m.weight for m in layers(net)]
    first = net[0].weight.numpy().copy()
    opt = optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=l2)
    loader = tg.data.DataLoader((x, y), batch_size=BATCH, shuffle=True, seed=seed)
    done, worst = 0, 0.0
    net.train()
    while done < steps:
        for xb, yb in loader:
            loss = F.cross_entropy(net(xb), yb)
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if c is not None:                       # projected gradient descent: step, then project
                for w in weights:
                    max_norm_(w.data, c)
                    worst = max(worst, float(np.linalg.norm(w.data.astype(np.float64), axis=1).max()))
            done += 1
            if done == steps:
                break
    net.eval()
    return net, {"init": first, "worst_row_norm": worst}


def l1_reach(w0: np.ndarray, steps: int, l1: float, lr: float = LR, mu: float = MOMENTUM) -> np.ndarray:
    """Where momentum SGD takes weights whose only gradient is the L1 term l1 * sign(w) (float64, NumPy)."""
    w, v = w0.astype(np.float64).copy(), None
    for _ in range(steps):
        g = l1 * np.sign(w)
        v = g.copy() if v is None else mu * v + g
        w -= lr * v
    return w


def l2_factor(steps: int, wd: float, lr: float = LR, mu: float = MOMENTUM) -> float:
    """The factor by which momentum SGD with weight_decay multiplies a weight that sees no data gradient."""
    w, v = 1.0, None
    for _ in range(steps):
        v = wd * w if v is None else mu * v + wd * w
        w -= lr * v
    return w


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n_train, n_val, steps, n_members = (1000, 2000, 300, 4) if opts.quick else (2000, 5000, 800, 5)

    heading("The penalties and their gradients")
    lam, beta = 0.01, 0.5
    w = tg.Tensor(np.array([-1.5, -0.2, 0.03, 0.7, 2.0]), requires_grad=True)
    say(f"""The course's slides write the three penalties as R(W) = sum w^2 (L2), sum |w| (L1) and
        sum (beta w^2 + |w|) (elastic net), each multiplied by lambda. Their gradients with respect
        to one weight: 2 lambda w, lambda sign(w), and lambda (2 beta w + sign(w)). The engine's
        backward through w * w and w.abs() must produce exactly these. (|w| has no derivative at 0;
        its subgradient there is anything in [-1, 1], and like PyTorch the engine uses 0.)
        Here lambda = {lam} and beta = {beta}.""")
    rows, wv = [], w.numpy()
    for name, penalty, theory in (
            ("L2", lambda t: lam * (t * t).sum(), 2 * lam * wv),
            ("L1", lambda t: lam * t.abs().sum(), lam * np.sign(wv)),
            ("elastic net", lambda t: lam * (beta * t * t + t.abs()).sum(), lam * (2 * beta * wv + np.sign(wv)))):
        w.grad = None
        penalty(w).backward()
        rows.append([name, w.grad.numpy(), theory])
        check(f"{name}: tg backward = theory", w.grad.numpy(), theory, tol=1e-7)
    table(["penalty", "tg's gradient", "theory"], rows, ".4f")
    w0 = tg.Tensor(np.zeros(3), requires_grad=True)
    w0.abs().sum().backward()
    check("subgradient of |w| at w = 0", w0.grad.numpy(), np.zeros(3), tol=0.0, note="0, as in PyTorch")
    say("""L2's pull is proportional to w: it shrinks big weights fast and tiny ones hardly at all, so
        no weight ever reaches zero. L1's pull has the same size lambda for every weight, however
        small: a weight the data does not defend is walked all the way to zero.""")

    heading("The same projection, checked on one matrix")
    c = 1.0
    rng = np.random.default_rng(0)
    W = (rng.standard_normal((6, 20)) * np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])[:, None]).astype(np.float32)
    before = np.linalg.norm(W.astype(np.float64), axis=1)
    P = W.copy()
    max_norm_(P, c)
    after = np.linalg.norm(P.astype(np.float64), axis=1)
    table(["unit", "|w| before", "|w| after"], [[i, a, b] for i, (a, b) in enumerate(zip(before, after))], ".4f")
    inside = before <= c
    check("rows already inside the ball are untouched", bool(np.array_equal(P[inside], W[inside])), True)
    check("rows outside land on the sphere |w| = c", after[~inside], np.full((~inside).sum(), c), tol=1e-6)
    cos = (P * W).sum(1) / (after * before)
    check("projection keeps each row's direction (cosine)", cos, np.ones(6), tol=1e-6)

    heading(f"Five regularizers on {n_train} digits")
    x, y = digits("train", n_train)
    x_va, y_va = digits("train", n_val, skip=n_train)
    mean = x.mean(0)
    x, x_va = x - mean, x_va - mean
    dead = np.all(x == 0, axis=0)            # pixels that are 0 in every training digit: no data gradient
    say(f"""A 784-64-10 network, {steps} steps of SGD with momentum {MOMENTUM}, learning rate {LR}, each run from
        the same initial weights. {int(dead.sum())} of the 784 pixels (the frame of the image) are blank in
        every training digit; after centering they are exactly 0, so their first-layer weights get
        no gradient from the data at all, only from the regularizer. They show each penalty's
        pull in its pure form.""")
    configs = {"none": {}, "L2 1e-3": {"l2": 1e-3}, "L1 1e-4": {"l1": 1e-4},
               "elastic 1e-4 + 1e-3": {"l1": 1e-4, "l2": 1e-3}, "max-norm c=1": {"c": c}}
    nets, logs, rows = {}, {}, []
    for name, kw in configs.items():
        nets[name], logs[name] = fit(x, y, steps, **kw)
        with tg.no_grad():
            s_tr, s_va = nets[name](tg.Tensor(x)), nets[name](tg.Tensor(x_va))
        W1 = nets[name][0].weight.numpy()
        rows.append([name, accuracy(s_tr, y), accuracy(s_va, y_va), F.cross_entropy(s_va, y_va).item(),
                     float((np.abs(W1) < SMALL).mean()), float((np.abs(W1[:, dead]) < SMALL).mean()),
                     float(np.linalg.norm(W1, axis=1).max())])
    table(["regularizer", "train acc", "val acc", "val loss", "|w|<1e-3", "|w|<1e-3 (blank px)", "max row |w|"],
          rows, ".3f")
    small = {r[0]: r[4] for r in rows}
    w_none, w_l2, w_l1 = (nets[n][0].weight.numpy() for n in ("none", "L2 1e-3", "L1 1e-4"))
    init = logs["none"]["init"]
    check("no regularizer: blank-pixel weights never move", bool(np.array_equal(w_none[:, dead], init[:, dead])),
          True, note="zero gradient")
    factor = l2_factor(steps, 1e-3)
    say(f"""With L2 each blank-pixel weight obeys the same linear recursion (momentum included), so all of
        them are multiplied by one number: {factor:.4f} after {steps} steps. None of them reaches zero.""")
    check("L2: blank-pixel weights / (initial * decay factor), worst", float(np.abs(
        w_l2[:, dead] / (init[:, dead] * factor) - 1).max()), 0.0, tol=1e-4, note="all scaled by one number")
    reach = l1_reach(init[:, dead], steps, 1e-4)
    predicted = float((np.abs(reach) < SMALL).mean())
    say(f"""With L1 each one moves towards zero by the same amount per step, whatever its size (about
        lr lambda / (1 - momentum) = {LR * 1e-4 / (1 - MOMENTUM):.0e} once momentum has built up), then jitters
        around zero. Simulating that recursion in NumPy predicts the fraction that ends within
        {SMALL:g} of zero: {predicted:.3f}.""")
    check("L1: fraction of blank-pixel weights within 1e-3 of 0", rows[2][5], predicted, tol=0.02,
          note="NumPy recursion")
    check("L1: fraction of all first-layer weights near 0", small["L1 1e-4"], at_least=0.4)
    check("... against L2's and none's", small["L1 1e-4"] / max(small["L2 1e-3"], small["none"]), at_least=5.0,
          note="times as many")
    check("elastic net also zeroes most weights", small["elastic 1e-4 + 1e-3"], at_least=0.4)
    check("max-norm: the largest row norm after any step", logs["max-norm c=1"]["worst_row_norm"], at_most=c + 1e-6,
          note="checked after every projection")
    check("... while without it a row grows to", rows[0][6], at_least=1.2 * c, note="so the constraint binds")
    l1_acc, none_acc = rows[2][2], rows[0][2]
    say(f"""The sparse L1 network keeps its validation accuracy ({l1_acc:.3f} against {none_acc:.3f} without
        regularization) with most of its first-layer weights switched off: it learned to ignore
        the pixels that carry no information. Max-norm thins the blank-pixel weights too
        ({rows[4][5]:.0%} near zero), by another route: each projection scales a whole row down, blank pixels
        included, and they have no data gradient to grow back. On this small problem none of the five changes the
        validation accuracy by much; what differs is what the weights look like (the figure).""")
    check("L1 val accuracy - none's", l1_acc - none_acc, 0.0, tol=0.03, note="about the same")

    heading("Max-norm keeps a too-large learning rate from exploding")
    big_lr = 0.5
    say(f"""The course's argument for max-norm: the weights cannot explode even with a learning rate
        set too high, because every update is followed by a projection. Learning rate {big_lr}, five
        times the one above, with and without the constraint.""")
    rows_lr = []
    for name, kw in (("none", {}), ("max-norm c=1", {"c": c})):
        net, _ = fit(x, y, steps, lr=big_lr, **kw)
        with tg.no_grad():
            s_va = net(tg.Tensor(x_va))
        rows_lr.append([name, F.cross_entropy(s_va, y_va).item(), accuracy(s_va, y_va),
                        float(np.linalg.norm(net[0].weight.numpy(), axis=1).max())])
    table(["lr 0.5", "val loss", "val acc", "max row |w|"], rows_lr, ".4g")
    check("unconstrained: validation loss blows up", rows_lr[0][1], at_least=10.0, note="chance level is log 10 = 2.3")
    check("max-norm: validation loss stays sane", rows_lr[1][1], at_most=1.0)
    check("max-norm: validation accuracy", rows_lr[1][2], at_least=0.75)

    heading(f"Model ensembles: {n_members} networks from different seeds")
    say(f"""The course's most reliable few-percent gain: train several networks independently and
        average their predicted probabilities at test time. Here {n_members} copies of the unregularized
        network differ only in their random initial weights and the order of their mini-batches.""")
    probs = []
    for seed in range(n_members):
        net, _ = fit(x, y, steps, seed=seed + 1)
        with tg.no_grad():
            probs.append(F.softmax(net(tg.Tensor(x_va)), dim=1).numpy().astype(np.float64))
    probs = np.stack(probs)                                         # (members, n_val, 10)
    idx = np.arange(n_val)
    member_nll = -np.log(probs[:, idx, y_va])                       # (members, n_val)
    member_ce, member_acc = member_nll.mean(1), (probs.argmax(2) == y_va).mean(1)
    rows_e = [[f"net {m + 1}", member_ce[m], member_acc[m]] for m in range(n_members)]
    ens_ce, ens_acc = [], []
    for m in range(1, n_members + 1):
        avg = probs[:m].mean(0)
        ens_ce.append(float(-np.log(avg[idx, y_va]).mean()))
        ens_acc.append(float((avg.argmax(1) == y_va).mean()))
    rows_e += [["mean of the nets", member_ce.mean(), member_acc.mean()],
               [f"ensemble of {n_members}", ens_ce[-1], ens_acc[-1]]]
    table(["model", "val cross-entropy", "val accuracy"], rows_e, ".4f")
    table(["members averaged"] + [str(m) for m in range(1, n_members + 1)],
          [["val cross-entropy"] + ens_ce, ["val accuracy"] + ens_acc], ".4f")
    say("""Why the loss can only improve: -log is convex, so for every single digit the ensemble's
        -log(average of the members' probabilities) is at most the average of the members' -log
        probabilities (Jensen's inequality). Averaging over digits keeps the inequality. Accuracy
        has no such guarantee: it is a vote, and the ensemble can lose a digit that a majority of
        the members got right.""")
    per_digit = -np.log(probs.mean(0)[idx, y_va]) <= member_nll.mean(0) + 1e-12
    check("Jensen on every digit: ensemble -log p <= mean member -log p", bool(per_digit.all()), True,
          note="convexity of -log")
    check("ensemble cross-entropy <= mean member cross-entropy", ens_ce[-1], at_most=float(member_ce.mean()))
    check("ensemble cross-entropy <= best member's", ens_ce[-1], at_most=float(member_ce.min()),
          note="not a theorem, but the usual outcome")
    gain = ens_acc[-1] - float(member_acc.mean())
    say(f"""Accuracy: the ensemble reaches {ens_acc[-1]:.3f} against {member_acc.mean():.3f} for the average member
        ({gain:+.3f}) and {member_acc.max():.3f} for the best one. The loss gain is the larger effect here,
        {member_ce.mean() - ens_ce[-1]:.3f} nats: the members are over-confident in different places, and
        averaging tempers each one's confident mistakes. Dropout (lesson 12) is the cheap version of
        the same idea: one network that trains an ensemble of thinned sub-networks sharing weights.""")
    check("ensemble accuracy - mean member accuracy", gain, at_least=-0.005,
          note="measured: no loss here")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(2, 3, figsize=(12, 6.4))
        top = max(float(np.abs(nets[name][0].weight.numpy()).max()) for name in configs)
        bins = np.linspace(-top, top, 121)
        for ax, name in zip(axes.flat, configs):
            ax.hist(nets[name][0].weight.numpy().ravel(), bins=bins, color="C0")
            ax.set_yscale("log")
            ax.set_title(f"{name}: {small[name]:.0%} with |w| < 1e-3", fontsize=9)
            ax.set_xlabel("first-layer weight")
        ax = axes.flat[5]
        ax.plot(range(1, n_members + 1), ens_ce, "o-", label="ensemble of the first m nets")
        ax.axhline(member_ce.mean(), color="grey", ls="--", label="mean single net")
        ax.set(xlabel="members averaged", ylabel="validation cross-entropy", title="ensembles",
               xticks=range(1, n_members + 1))
        ax.legend(fontsize=8)
        fig.suptitle(f"first-layer weight histograms (log counts) after {steps} steps, and averaging nets")
        fig.tight_layout()
        save_figure(opts, fig, "29_weight_histograms")
        fig, axes = plt.subplots(2, 5, figsize=(11, 4.8))
        for col, name in enumerate(configs):
            W1 = nets[name][0].weight.numpy()
            for row, unit in enumerate((0, 1)):
                v = np.abs(W1[unit]).max()
                axes[row, col].imshow(W1[unit].reshape(28, 28), cmap="bwr", vmin=-v, vmax=v)
                axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
            axes[0, col].set_title(name, fontsize=9)
        fig.suptitle("two hidden units' incoming weights as 28x28 images (white = 0)")
        save_figure(opts, fig, "29_unit_weights")


if __name__ == "__main__":
    run(main)
