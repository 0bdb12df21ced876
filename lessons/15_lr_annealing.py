"""Annealing the learning rate: step, exponential, 1/t, cosine and warmup schedules.

A large learning rate makes fast progress early but, with noisy mini-batch
gradients, leaves the parameters rattling around the bottom of the loss instead of
settling into it. Lowering the rate over time (annealing) gets both. We check
every scheduler of the library against the course's closed forms, then let four
of them drive the same small training run.
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
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, heading, plots_wanted, run, save_figure, say, start, table
from tinygrad_cv import nn, optim
from tinygrad_cv.optim import lr_scheduler as sched

A0 = 0.1  # the initial learning rate alpha_0 used for the sequences


def lr_sequence(make: Callable[[optim.Optimizer], sched.LRScheduler], steps: int, lr: float = A0) -> np.ndarray:
    """The lr in force at steps t = 0..steps-1, read from the optimizer while training as usual:
    optimizer.step() then scheduler.step() once per step."""
    p = tg.Tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([p], lr=lr)
    scheduler = make(opt)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        p.grad = np.zeros(1, dtype=np.float32)
        opt.step()
        scheduler.step()
    return np.array(out)


def train_softmax(x: np.ndarray, y: np.ndarray, make, steps: int, lr: float, batch: int, seed: int) -> float:
    """SGD on a linear softmax classifier with tiny (noisy) batches; return the full-data loss at the end."""
    tg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = nn.Linear(x.shape[1], 10)
    opt = optim.SGD(model.parameters(), lr=lr)
    scheduler = make(opt) if make is not None else None
    for _ in range(steps):
        idx = rng.integers(0, len(x), batch)
        loss = F.cross_entropy(model(tg.Tensor(x[idx])), tg.Tensor(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    with tg.no_grad():
        return F.cross_entropy(model(tg.Tensor(x)), tg.Tensor(y)).item()


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    T = 100
    t = np.arange(T)

    heading("Six schedules against their closed forms")
    say(f"""Each scheduler wraps an optimizer and rewrites its lr after every optimizer step. We read
        the lr that was in force at each of T = {T} steps and compare it with the formula from the
        course, with alpha_0 = {A0}:

        step: multiply by 0.1 every 30 steps (the slides' ResNet recipe divides by 10 at epochs 30,
        60 and 90); exponential: a = a0 / e^(kt); 1/t: a = a0 / (1 + kt); cosine: a = a0 (1 + cos(pi
        t / T)) / 2; linear: a = a0 (1 - t/T); inverse square root: a = a0 / sqrt(t), which the
        library shifts by one step, a0 / sqrt(t + 1), so that it is defined at t = 0.""")
    k_exp, k_inv = 0.05, 0.1
    schedules = {
        "step (x0.1 every 30)": (lambda o: sched.StepLR(o, step_size=30, gamma=0.1), A0 * 0.1 ** (t // 30)),
        "exponential k=0.05": (lambda o: sched.ExponentialLR(o, gamma=math.exp(-k_exp)), A0 / np.exp(k_exp * t)),
        "1/t k=0.1": (lambda o: sched.InverseTimeLR(o, k=k_inv), A0 / (1 + k_inv * t)),
        "cosine T=100": (lambda o: sched.CosineAnnealingLR(o, T_max=T), 0.5 * A0 * (1 + np.cos(t * np.pi / T))),
        "linear T=100": (lambda o: sched.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=T),
                         A0 * (1 - t / T)),
        "inverse sqrt": (lambda o: sched.InverseSqrtLR(o), A0 / np.sqrt(t + 1)),
    }
    seqs = {}
    for name, (make, closed) in schedules.items():
        seqs[name] = lr_sequence(make, T)
        check(f"{name}: max |scheduler - closed form| over {T} steps", float(np.abs(seqs[name] - closed).max()),
              0.0, tol=1e-12)
    shown = [0, 1, 10, 29, 30, 50, 60, 90, 99]
    table(["t"] + list(seqs), [[s] + [seqs[n][s] for n in seqs] for s in shown], ".3g")
    check("step: lr just before the first drop (t = 29)", seqs["step (x0.1 every 30)"][29], A0, tol=1e-15)
    check("step: after drops at 30, 60, 90", seqs["step (x0.1 every 30)"][[30, 60, 90]], [A0 / 10, A0 / 100, A0 / 1000],
          rel=1e-12, note="slides: x0.1 after 30, 60 and 90")
    check("cosine at t = T/2 is half the initial rate", seqs["cosine T=100"][50], A0 / 2, tol=1e-15)
    half = round(math.log(2) / k_exp)
    check(f"exponential: halved after ln 2 / k = {math.log(2) / k_exp:.1f} steps (t = {half})",
          seqs["exponential k=0.05"][half], A0 / 2, rel=0.01)

    heading("The perceptron's schedule 1000/(1000 + t)")
    say("""The first slides suggest letting the perceptron's rate decay as 1000/(1000 + t). That is
        1/t decay with a0 = 1 and k = 1/1000: after 1000 epochs the rate has halved, after 9000 it is
        a tenth.""")
    perc = lr_sequence(lambda o: sched.InverseTimeLR(o, k=1e-3), 9001, lr=1.0)
    check("1000/(1000 + t) at t = 1000", perc[1000], 0.5, tol=1e-15)
    check("1000/(1000 + t) at t = 9000", perc[9000], 0.1, tol=1e-15)
    say("""Stochastic gradient descent is guaranteed to converge when the rates add up to infinity
        (it can travel any distance) while their squares add up to something finite (the noise
        dies out). 1/t decay satisfies both: its partial sums keep growing like log t. Exponential
        decay does not: its sum is at most a0 / (1 - e^-k), so it may freeze before it arrives.""")
    exp_long = lr_sequence(schedules["exponential k=0.05"][0], 2000)
    inv_long = lr_sequence(schedules["1/t k=0.1"][0], 2000)
    table(["steps", "sum 1/t", "sum exponential", "sum of squares 1/t"],
          [[n, inv_long[:n].sum(), exp_long[:n].sum(), (inv_long[:n] ** 2).sum()] for n in (100, 500, 2000)], ".4g")
    check("exponential: total distance budget a0 / (1 - e^-k)", exp_long.sum(), A0 / (1 - math.exp(-k_exp)), rel=1e-6)
    offset = 1 / k_inv                                    # a0/(1 + k t) = (a0/k) / (t + 1/k)
    check("1/t: steps 200..1999 add (a0/k) ln((2000 + 1/k)/(200 + 1/k))", inv_long[:2000].sum() - inv_long[:200].sum(),
          A0 / k_inv * math.log((2000 + offset) / (200 + offset)), rel=0.005,
          note="the integral; about (a0/k) ln 10 per tenfold t")

    heading("Warmup")
    say("""Right after initialization the gradients can be huge and, for Adam, the second-moment
        estimate is based on very few samples, so a large rate may throw the network somewhere it
        never recovers from. Warmup starts small and raises the rate linearly to its target over the
        first steps (the slides mention ~5000 iterations for large models); any decay follows.""")
    warm = lr_sequence(lambda o: sched.WarmupLR(o, warmup_steps=10), 30)
    check("warmup: lr rises by a0/10 per step for 10 steps", warm[:10], A0 * np.arange(1, 11) / 10, tol=1e-15)
    check("warmup: then holds a0", warm[10:], np.full(20, A0), tol=1e-15)
    wc = lr_sequence(lambda o: sched.WarmupCosineLR(o, warmup_steps=10, total_steps=T), T + 1)
    closed = np.where(t < 10, A0 * (t + 1) / 10, 0.5 * A0 * (1 + np.cos(np.pi * (t - 10) / (T - 10))))
    check("warmup + cosine: max |scheduler - closed form|", float(np.abs(wc[:T] - closed).max()), 0.0, tol=1e-12)
    check("warmup + cosine ends at 0", wc[T], 0.0, tol=1e-15)
    seqs["warmup 10 + cosine"] = wc[:T]

    heading("Does annealing help? A noisy training run")
    n_train = 1000 if opts.quick else 4000
    steps = 300 if opts.quick else 1000
    seeds = (0, 1, 2)
    images, labels = tg.data.mnist("train")
    x = images[:n_train].reshape(n_train, -1).astype(np.float32) / 255.0
    y = labels[:n_train]
    say(f"""A linear softmax classifier on {n_train} digits, trained for {steps} SGD steps on batches of 10
        digits: the gradients are very noisy. We compare a constant high rate (0.5), a constant low
        rate (0.05), and the high rate annealed four ways, reporting the loss on all {n_train} digits at the
        end: its mean over {len(seeds)} seeds and its spread. The problem is convex, so a lower final loss
        means closer to
        the one best answer.""")
    runs = {
        "constant 0.5": (None, 0.5),
        "constant 0.05": (None, 0.05),
        "step 0.5 (x0.1 at 1/2)": (lambda o: sched.StepLR(o, step_size=steps // 2, gamma=0.1), 0.5),
        "exponential 0.5 -> 0.025": (lambda o: sched.ExponentialLR(o, gamma=20 ** (-1 / steps)), 0.5),
        "1/t 0.5 -> 0.083": (lambda o: sched.InverseTimeLR(o, k=5 / steps), 0.5),
        "cosine 0.5 -> 0": (lambda o: sched.CosineAnnealingLR(o, T_max=steps), 0.5),
    }
    final, budget = {}, {}
    for name, (make, lr) in runs.items():
        losses = [train_softmax(x, y, make, steps, lr, 10, s) for s in seeds]
        final[name] = (float(np.mean(losses)), float(np.std(losses)))
        budget[name] = float(lr_sequence(make, steps, lr).sum()) if make is not None else lr * steps
    table(["schedule", "final loss (mean)", "spread (std)", "sum of lr"],
          [[n, m, s, budget[n]] for n, (m, s) in final.items()], ".4f")
    annealed = [n for n in final if not n.startswith("constant")]
    for n in annealed:
        check(f"{n}: steadier end than the constant high rate (std)", final[n][1],
              at_most=final["constant 0.5"][1] / 2)
        check(f"{n}: lower loss than the constant low rate", final[n][0], at_most=final["constant 0.05"][0])
    for n in ("cosine 0.5 -> 0", "step 0.5 (x0.1 at 1/2)"):
        check(f"{n}: lower mean loss than the constant high rate", final[n][0], at_most=final["constant 0.5"][0])
    say("""The constant high rate makes fast progress, but its last steps are as noisy as its first,
        so where it stops is a matter of luck: look at its spread over seeds. The constant low rate is
        steady but slow. Every annealed run ends steadier, because its final steps are small.

        The column "sum of lr" is how far the schedule lets the parameters travel in total. Step and
        cosine keep the high rate for a long time and cut it late; exponential and 1/t start cutting
        at once and spend less, so on this short run they trade some progress for stability. That is
        the practical reason cosine is a popular default: one parameter (the length T), a long
        stretch of large steps, and a gentle landing.""")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(7, 3.8))
        for name, seq in seqs.items():
            ax.plot(t, seq, label=name)
        ax.set(xlabel="step t", ylabel="learning rate", title=f"schedules, alpha_0 = {A0}")
        ax.legend(fontsize=8)
        save_figure(opts, fig, "15_schedules")


if __name__ == "__main__":
    run(main)
