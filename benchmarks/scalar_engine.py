"""One training step of a micrograd-sized MLP: tinygrad_cv's Value against micrograd 0.1.0.

The network (2-16-16-1, ReLU), the 100 points, the hinge loss with L2 and the
weights are identical in both engines, and every step's loss must agree to 1e-9.
Each engine runs alone in a fresh process, the processes alternate (who goes first
changes every round), and the medians of all timed steps are compared.

The steps run as a user's training loop runs them: one after the other, with
Python's cycle collector left as it is. A step's time therefore includes freeing
the graphs it leaves behind, whichever way an engine frees them. That matters:
tinygrad_cv's graphs are freed by reference counting as soon as the step returns,
but each micrograd node is a reference cycle (its ``_backward`` closure holds the
node), so its graphs live until the collector finds them, and a later step pays
for that. ``--collect-between`` runs ``gc.collect()`` before each step, outside
the timer, as an earlier version of this benchmark did: it leaves micrograd's
clean-up out of its time, and is kept only to show the difference.

Run:  python benchmarks/scalar_engine.py [--steps N] [--rounds R] [--collect-between]
(needs `pip install micrograd==0.1.0`).
"""
from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time


import tinygrad_cv as tg
from tinygrad_cv.data import moons


def mlp_weights(seed: int = 1337) -> list[list[tuple[list[float], float]]]:
    """Weights of a 2-16-16-1 MLP: per layer, per neuron, (w, b), drawn like micrograd's uniform(-1, 1)."""
    r = random.Random(seed)
    sizes = [2, 16, 16, 1]
    return [[([r.uniform(-1, 1) for _ in range(nin)], 0.0) for _ in range(nout)] for nin, nout in zip(sizes, sizes[1:])]


class ScalarMLP:
    """The same MLP on any Value class (ReLU hidden layers, linear output)."""

    def __init__(self, value_cls, weights):
        self.layers = [[([value_cls(w) for w in ws], value_cls(b)) for ws, b in layer] for layer in weights]

    def parameters(self):
        return [p for layer in self.layers for ws, b in layer for p in (*ws, b)]

    def __call__(self, x):
        for i, layer in enumerate(self.layers):
            x = [sum((wi * xi for wi, xi in zip(ws, x)), b) for ws, b in layer]
            if i < len(self.layers) - 1:
                x = [v.relu() for v in x]
        return x[0]


def train_step(model, X, y, lr):
    """Forward, hinge loss + 1e-4 L2, backward, SGD update; returns the loss."""
    scores = [model(list(map(float, xrow))) for xrow in X]
    losses = [(1 + -float(yi) * s).relu() for yi, s in zip(y, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    loss = data_loss + 1e-4 * sum(p * p for p in model.parameters())
    for p in model.parameters():
        p.grad = 0.0
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data


def engine_value_class(name: str):
    if name == "micrograd":
        from micrograd.engine import Value as MgValue
        return MgValue
    return tg.Value


WARMUP_STEPS = 2   # untimed: the first steps of a loop have no earlier graphs to free


def run_alone(name: str, steps: int, collect_between: bool = False) -> None:
    """In a child process: time ``steps`` training steps of one engine, after WARMUP_STEPS
    untimed ones, in a plain loop (or with gc.collect() untimed before each); print JSON."""
    import json

    X, y = moons(100, noise=0.1, seed=1)
    y = y * 2 - 1
    model = ScalarMLP(engine_value_class(name), mlp_weights())
    times, losses = [], []
    for step in range(WARMUP_STEPS + steps):
        if collect_between:
            gc.collect()
        t = time.perf_counter()
        losses.append(train_step(model, X, y, 1.0 - 0.9 * step / 100))
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - t)
    print(json.dumps({"times": times, "losses": losses}))


def main(argv=None) -> None:
    import json
    import subprocess

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--collect-between", action="store_true",
                    help="gc.collect() before each step, outside the timer (leaves micrograd's clean-up out)")
    ap.add_argument("--child", choices=("micrograd", "tinygrad_cv"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        run_alone(args.child, args.steps, args.collect_between)
        return
    try:
        import micrograd  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/scalar_engine.py needs micrograd: pip install micrograd==0.1.0")
    times: dict[str, list[float]] = {"micrograd": [], "tinygrad_cv": []}
    losses: dict[str, list[float]] = {}
    for round_ in range(args.rounds):
        for name in (list(times) if round_ % 2 == 0 else list(times)[::-1]):     # who goes first alternates
            extra = ["--collect-between"] if args.collect_between else []
            out = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(args.steps), *extra],
                                 check=True, capture_output=True, text=True).stdout
            r = json.loads(out)
            times[name] += r["times"]
            losses[name] = r["losses"]
    for a, b in zip(losses["micrograd"], losses["tinygrad_cv"]):
        assert abs(a - b) < 1e-9, f"losses differ: {a} vs {b}"
    med = {k: statistics.median(v) for k, v in times.items()}
    how = ("gc.collect() untimed before each step" if args.collect_between
           else f"a plain training loop, after {WARMUP_STEPS} untimed steps")
    print(f"2-16-16-1 MLP, 100 points, {args.rounds} rounds x {args.steps} steps, each engine alone "
          f"in its own process, {how}, medians (losses identical):")
    print(f"  micrograd 0.1.0  {med['micrograd'] * 1e3:8.1f} ms/step")
    print(f"  tinygrad_cv      {med['tinygrad_cv'] * 1e3:8.1f} ms/step")
    print(f"  speed-up         {med['micrograd'] / med['tinygrad_cv']:8.1f}x")


if __name__ == "__main__":
    main()
