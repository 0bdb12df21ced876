"""Parameter updates: from SGD to Adam on a narrow bowl.

Backprop gives the gradient; the update rule decides what to do with it. We race
the course's six rules on the bowl f(x, y) = (x^2 + 25 y^2) / 2, which is 25 times
steeper across (y) than along (x): plain gradient descent crawls along the floor,
and once its rate is high enough to make progress there it zig-zags across the
valley (at a small rate it only crawls). The parameters are
engine Tensors, the gradient comes from backward(), and the steps are taken by
the library's optim classes; NumPy re-does each update by the course's formulas.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import optim

CURV = np.array([1.0, 25.0])          # the Hessian's diagonal: curvature along x and along y
START = (-5.0, 1.0)
TOL = 1e-6                            # "converged" once f < TOL
MAX_STEPS = 1000


def bowl(p: tg.Tensor, rot: np.ndarray | None = None) -> tg.Tensor:
    """f = 1/2 sum_i CURV_i q_i^2 with q = p (or q = R p for the rotated bowl), built from engine ops."""
    q = p if rot is None else tg.Tensor(rot, dtype=np.float64) @ p
    return (q * q * tg.Tensor(CURV, dtype=np.float64)).sum() * 0.5


def grad_np(p: np.ndarray, rot: np.ndarray | None = None) -> np.ndarray:
    """The same gradient written by hand: R^T diag(CURV) R p."""
    if rot is None:
        return CURV * p
    return rot.T @ (CURV * (rot @ p))


def descend(make: Callable[[list], optim.Optimizer], steps: int = MAX_STEPS, start=START,
            rot: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run an optimizer on the bowl; return the path (steps+1, 2) and the loss before each step."""
    p = tg.Tensor(np.array(start), dtype=np.float64, requires_grad=True)
    opt = make([p])
    path, losses = [p.data.copy()], []
    for _ in range(steps):
        loss = bowl(p, rot)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
        path.append(p.data.copy())
    return np.array(path), np.array(losses)


def steps_to(losses: np.ndarray, tol: float = TOL) -> int | None:
    hit = np.nonzero(losses < tol)[0]
    return int(hit[0]) if len(hit) else None


RULES: dict[str, Callable[[list], optim.Optimizer]] = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.02),
    "SGD (best lr)": lambda ps: optim.SGD(ps, lr=2 / 26),
    "Momentum 0.9": lambda ps: optim.SGD(ps, lr=0.02, momentum=0.9),
    "Momentum (tuned)": lambda ps: optim.SGD(ps, lr=4 / 36, momentum=(4 / 6) ** 2),
    "Nesterov 0.9": lambda ps: optim.SGD(ps, lr=0.02, momentum=0.9, nesterov=True),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=1.0),
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.05, alpha=0.99),
    "Adam": lambda ps: optim.Adam(ps, lr=0.3),
}


def by_hand(rule: str, steps: int, lr: float, mu: float = 0.9, rho: float = 0.99, b1: float = 0.9,
            b2: float = 0.999, eps: float = 1e-8) -> np.ndarray:
    """The course's update formulas in NumPy; returns the iterates (steps+1, 2).

    For Nesterov the returned point is the look-ahead theta + mu v (see the lesson text).
    """
    x = np.array(START, dtype=np.float64)
    v = np.zeros(2)
    cache = np.zeros(2)
    m = np.zeros(2)
    out = [x.copy()]
    for t in range(1, steps + 1):
        if rule == "sgd":                       # x += -lr dx
            x = x - lr * grad_np(x)
            out.append(x.copy())
        elif rule == "momentum":                # v = mu v - lr dx; x += v
            v = mu * v - lr * grad_np(x)
            x = x + v
            out.append(x.copy())
        elif rule == "nesterov":                # v = mu v - lr grad(x + mu v); x += v
            v_new = mu * v - lr * grad_np(x + mu * v)
            x = x + v_new
            v = v_new
            out.append(x + mu * v)
        elif rule == "adagrad":                 # cache += dx^2; x += -lr dx / (sqrt(cache) + eps)
            dx = grad_np(x)
            cache = cache + dx ** 2
            x = x - lr * dx / (np.sqrt(cache) + eps)
            out.append(x.copy())
        elif rule == "rmsprop":                 # r = rho r + (1 - rho) g^2; x += -lr g / (eps + sqrt(r))
            dx = grad_np(x)
            cache = rho * cache + (1 - rho) * dx ** 2
            x = x - lr * dx / (eps + np.sqrt(cache))
            out.append(x.copy())
        elif rule == "adam":                    # moments, bias correction, then the step
            dx = grad_np(x)
            m = b1 * m + (1 - b1) * dx
            cache = b2 * cache + (1 - b2) * dx * dx
            m_hat, v_hat = m / (1 - b1 ** t), cache / (1 - b2 ** t)
            x = x - lr * m_hat / (np.sqrt(v_hat) + eps)
            out.append(x.copy())
    return np.array(out)


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("The bowl and what plain SGD does on it")
    say("""The gradient of f = (x^2 + 25 y^2)/2 is (x, 25 y). A step x <- x - lr * grad multiplies x by
        (1 - lr) and y by (1 - 25 lr). So y shrinks fast while x crawls; and if lr is above 2/25 =
        0.08, |1 - 25 lr| > 1 and y blows up. The best single rate, 2/(1 + 25), balances the two
        factors at 12/13 each. Check the engine against that closed form:""")
    path, losses = descend(RULES["SGD"], steps=30)
    k = np.arange(31)
    closed = np.stack([START[0] * (1 - 0.02) ** k, START[1] * (1 - 25 * 0.02) ** k], axis=1)
    check("SGD(lr=0.02): max |path - closed form (0.98^k x0, 0.5^k y0)| over 30 steps",
          float(np.abs(path - closed).max()), 0.0, tol=1e-12)
    p_div, l_div = descend(lambda ps: optim.SGD(ps, lr=0.085), steps=40)
    check("SGD with lr = 0.085 > 2/25 diverges along y: |y_40| / |y_0|", abs(p_div[-1, 1] / START[1]),
          abs(1 - 25 * 0.085) ** 40, rel=1e-9, note="theory: |1 - 25 lr|^40")

    heading("The race: steps until f < 1e-6")
    say("""Every rule starts at (-5, 1). SGD, momentum and Nesterov share lr = 0.02 so that only the
        rule differs; one more SGD run uses the best constant rate 2/26. The adaptive rules get
        rates that suit them (their step size is measured in 'units of lr', not of the gradient).""")
    runs = {name: descend(make) for name, make in RULES.items()}
    rows = []
    for name, (pth, ls) in runs.items():
        zig = int(np.sum(np.diff(np.sign(pth[:60, 1])) != 0))
        rows.append([name, steps_to(ls) if steps_to(ls) is not None else f">{MAX_STEPS}", ls[0], ls[20], ls[100], zig])
    table(["rule", "steps to 1e-6", "f(0)", "f(20)", "f(100)", "y sign flips in 60 steps"], rows, ".3g")
    s = {name: steps_to(ls) for name, (_, ls) in runs.items()}
    check("momentum needs fewer steps than SGD at the same lr", s["Momentum 0.9"], at_most=s["SGD"] / 2)
    check("tuned momentum beats SGD with its best constant lr, by at least 2x", s["Momentum (tuned)"],
          at_most=s["SGD (best lr)"] / 2)
    check("Nesterov needs fewer steps than classic momentum", s["Nesterov 0.9"], at_most=s["Momentum 0.9"])
    check("every rule reaches f < 1e-6", all(v is not None for v in s.values()), True)
    flips = {r[0]: r[5] for r in rows}
    say(f"""Where is the zig-zag? At the shared lr = 0.02 plain SGD has none: y is multiplied by 1 - 25 lr
        = 0.5 each step, so it decays without changing sign ({flips["SGD"]} sign flips), and x crawls. Above
        lr = 1/25 the factor turns negative, and at the best rate 2/26 it is -12/13: y changes sign on
        every step ({flips["SGD (best lr)"]} flips in 60 steps), the zig-zag across the valley, which is the price of
        a rate large enough to move along it. Momentum at lr = 0.02 overshoots too, through its
        velocity.""")
    check("SGD at lr 0.02: y sign flips in 60 steps", flips["SGD"], 0, note="factor 0.5 > 0: no zig-zag")
    check("SGD at lr 2/26: y sign flips in 60 steps", flips["SGD (best lr)"], 59, note="factor -12/13: every step")
    say("""Momentum accumulates the small but consistent x-gradient into a velocity, while the
        alternating y-gradients cancel in it. Nesterov looks where the velocity is about to take it
        before measuring the gradient, so it brakes earlier and overshoots less.

        With the condition number k = 25 (steepest over flattest curvature), the best constant-lr SGD
        shrinks the error by (k - 1)/(k + 1) = 0.923 per step; momentum with lr = 4/(1 + 5)^2 and
        mu = ((5 - 1)/(5 + 1))^2 = 0.444 (the "tuned" row, 5 = sqrt(k)) shrinks it by
        (sqrt(k) - 1)/(sqrt(k) + 1) = 0.667 per step. On a long, narrow valley that is the difference
        between hundreds of steps and dozens.

        Adagrad and RMSprop divide each coordinate by the size of its own gradients, so the steep y
        and the flat x get steps of similar length. This bowl's steep direction lies exactly along
        an axis, which is the best case for per-coordinate scaling; see section 5.""")

    heading("One update at a time, by the course's formulas")
    say("""Now NumPy replays 25 steps of each rule exactly as the course writes it, with the
        gradient (x, 25 y) computed by hand, and the engine's optimizer must agree to 1e-6.

        Two forms need a word. The course writes momentum as v = mu v - lr dx, x += v; PyTorch (and
        this library) keeps b = mu b + dx and steps x -= lr b. With a constant lr, v = -lr b, so the
        iterates are identical. For Nesterov the course evaluates the gradient at the look-ahead
        point x + mu v; PyTorch's form tracks that look-ahead point itself as its parameter, so we
        compare the optimizer's parameter with x + mu v of the course's iteration.

        Two small print matters in the course's summary table: its Adagrad line adds
        eps/(delta + sqrt(r)) * g to the parameters, without the minus sign that every other line
        has (as printed it would climb the loss; the report's code has it right, x += -lr * dx /
        ...), and the slides' Adam code adds 1e-7 in the denominator where PyTorch's default eps is
        1e-8; we pass eps explicitly to both sides.""")
    n = 25
    pairs = [
        ("SGD: x += -lr dx", "sgd", lambda ps: optim.SGD(ps, lr=0.03), dict(lr=0.03)),
        ("Momentum: v = mu v - lr dx; x += v", "momentum", lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9),
         dict(lr=0.01, mu=0.9)),
        ("Nesterov: v = mu v - lr grad(x + mu v)", "nesterov",
         lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9, nesterov=True), dict(lr=0.01, mu=0.9)),
        ("Adagrad: cache += dx^2", "adagrad", lambda ps: optim.Adagrad(ps, lr=0.5, eps=1e-10),
         dict(lr=0.5, eps=1e-10)),
        ("RMSprop: r = rho r + (1-rho) g^2", "rmsprop", lambda ps: optim.RMSprop(ps, lr=0.05, alpha=0.9, eps=1e-8),
         dict(lr=0.05, rho=0.9, eps=1e-8)),
        ("Adam: bias-corrected moments", "adam", lambda ps: optim.Adam(ps, lr=0.1, betas=(0.9, 0.999), eps=1e-8),
         dict(lr=0.1, b1=0.9, b2=0.999, eps=1e-8)),
    ]
    rows = []
    for label, rule, make, kw in pairs:
        engine, _ = descend(make, steps=n)
        hand = by_hand(rule, n, **kw)
        diff = float(np.abs(engine - hand).max())
        rows.append([label, engine[1], hand[1], diff])
        check(f"{rule}: optimizer = formula over {n} steps (max |diff|)", diff, 0.0, tol=1e-6)
    table(["rule", "engine step 1", "formula step 1", "max |diff|"], rows, ".6g")

    heading("Adam's first step has length lr in every coordinate")
    say("""At t = 1 the bias corrections undo the (1 - beta) factors exactly: m_hat = g and v_hat = g^2,
        so the step is lr * g / (|g| + eps), i.e. lr * sign(g) up to eps. Whether a coordinate's
        gradient is 5 or 25, it moves by lr: the step size is set by lr, not by the gradient's scale.
        Without the bias correction the first step would be (1 - b1)/sqrt(1 - b2) = 3.16 times larger.""")
    for lr in (1e-3, 0.1):
        pth, _ = descend(lambda ps, lr=lr: optim.Adam(ps, lr=lr), steps=1)
        step = np.abs(pth[1] - pth[0])
        check(f"Adam(lr={lr:g}) first step |dx|, |dy|", step, np.array([lr, lr]), rel=1e-6,
              note="theory: lr * |g| / (|g| + eps)")
    p = tg.Tensor(np.array(START), dtype=np.float64, requires_grad=True)
    adam = optim.Adam([p], lr=0.1)
    bowl(p).backward()
    g = np.abs(np.asarray(p.grad, dtype=np.float64))
    adam.step()
    state = adam.state[id(p)]
    raw = np.abs(state["exp_avg"]) / np.sqrt(state["exp_avg_sq"])        # the uncorrected m / sqrt(v)
    check("engine's Adam state at t = 1: |m| / sqrt(v), the uncorrected step in units of lr", raw,
          np.full(2, (1 - 0.9) / math.sqrt(1 - 0.999)), rel=1e-9, note="(1 - b1)/sqrt(1 - b2) = 3.1623")
    check("engine's m at t = 1 = (1 - b1) g", np.abs(state["exp_avg"]), 0.1 * g, rel=1e-12)

    heading("Turn the bowl by 45 degrees")
    say("""Rotate the same bowl, and the starting point with it, so that the narrow direction is
        the diagonal and the start sits at the same spot relative to the valley. Gradient descent and
        momentum do not care which way the valley points: their step counts do not change at all.
        Adagrad and RMSprop lose their free lunch, because x and y now both mix the steep and the
        flat direction and scaling each coordinate no longer straightens the valley. Adam's count
        moves too, either way depending on the start: its momentum part still carries it, its
        scaling part no longer helps much.""")
    c = math.cos(math.pi / 4)
    rot = np.array([[c, -c], [c, c]])
    rows = []
    rot_steps = {}
    for name in ("SGD", "Momentum 0.9", "Nesterov 0.9", "Adagrad", "RMSprop", "Adam"):
        _, ls = descend(RULES[name], rot=rot, start=tuple(rot.T @ np.array(START)))
        rot_steps[name] = steps_to(ls)
        rows.append([name, s[name], rot_steps[name] if rot_steps[name] is not None else f">{MAX_STEPS}"])
    table(["rule", "axis-aligned", "rotated 45 deg"], rows)
    for name in ("SGD", "Momentum 0.9", "Nesterov 0.9"):
        check(f"{name} does not notice the rotation (steps)", rot_steps[name], s[name])
    slower = (rot_steps["Adagrad"] or MAX_STEPS * 10) / s["Adagrad"]
    check("Adagrad is slower once the valley is diagonal (ratio)", slower, at_least=1.5)

    plt = plots_wanted(opts)
    if plt is not None:
        xs, ys = np.meshgrid(np.linspace(-5.5, 2.0, 200), np.linspace(-1.6, 1.6, 200))
        fig, ax = plt.subplots(figsize=(9, 4.2))
        ax.contour(xs, ys, 0.5 * (xs ** 2 + 25 * ys ** 2), levels=np.geomspace(0.01, 40, 14), cmap="Greys",
                   linewidths=0.7)
        for name in ("SGD", "SGD (best lr)", "Momentum 0.9", "Nesterov 0.9", "Adagrad", "RMSprop", "Adam"):
            pth = runs[name][0][:80]
            ax.plot(pth[:, 0], pth[:, 1], ".-", ms=3, lw=1, label=name)
        ax.plot(0, 0, "k*", ms=12)
        ax.set(xlabel="x", ylabel="y", title="f = (x^2 + 25 y^2)/2: first 80 steps of each rule")
        ax.legend(fontsize=8, loc="lower right")
        save_figure(opts, fig, "14_trajectories")
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name, (_, ls) in runs.items():
            ax.semilogy(np.maximum(ls[:400], 1e-30), label=name)
        ax.axhline(TOL, color="k", lw=0.5, ls="--")
        ax.set(xlabel="step", ylabel="f", ylim=(1e-12, 100), title="loss per step")
        ax.legend(fontsize=7)
        save_figure(opts, fig, "14_loss_curves")


if __name__ == "__main__":
    run(main)
