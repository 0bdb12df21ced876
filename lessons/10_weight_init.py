"""Weight initialization: keeping activations and gradients alive through depth.

Push unit-Gaussian data through 10 layers of 500 units and watch the spread
of the activations layer by layer. Weights that are too small shrink the
signal geometrically until it vanishes; weights that are too large saturate
every tanh. Scaling each layer by its fan-in keeps the spread steady: Xavier,
std = 1/sqrt(fan_in), for tanh; He, std = sqrt(2/fan_in), for ReLU.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import viz
from lessons._lesson import check, heading, plots_wanted, pyplot, run, save_figure, save_graph, say, start, table
from tinygrad_cv import nn
from tinygrad_cv.models.deep import deep_mlp
from viz.flow import input_batch, measure

DEPTH, WIDTH = 10, 500
# The course's printed runs (10 layers of 500 units, 1000 unit-Gaussian inputs): std per hidden layer.
SEED_STD = {
    "small": [0.213081, 0.047551, 0.010630, 0.002378, 0.000532, 0.000119, 0.000026, 0.000006, 0.000001, 0.0],
    "large": [0.981879, 0.981649, 0.981601, 0.981755, 0.981614, 0.981560, 0.981520, 0.981913, 0.981728, 0.981736],
    "xavier": [0.627953, 0.486051, 0.407723, 0.357108, 0.320917, 0.292116, 0.273387, 0.254935, 0.239266, 0.228008],
    "xavier_relu": [0.582273, 0.403795, 0.276912, 0.198685, 0.140299, 0.103280, 0.072748, 0.051572, 0.038583, 0.026076],
    "he_relu": [0.825232, 0.827835, 0.813855, 0.826902, 0.834092, 0.860035, 0.870610, 0.889348, 0.845357, 0.844523],
}
CONFIGS = {  # name -> (activation, how to initialize a weight, short description)
    "small": ("tanh", lambda w: nn.init.small_random_(w, std=0.01), "0.01 tanh"),
    "large": ("tanh", lambda w: nn.init.normal_(w, 0.0, 1.0), "1.0 tanh"),
    "xavier": ("tanh", nn.init.xavier_, "Xavier tanh"),
    "xavier_relu": ("relu", nn.init.xavier_, "Xavier ReLU"),
    "he_relu": ("relu", nn.init.he_, "He ReLU"),
}


def build(config: str) -> nn.Sequential:
    """10 x (Linear 500 -> 500 without bias, then the activation), initialized as ``config`` says."""
    act, init, _ = CONFIGS[config]
    layers: list[nn.Module] = []
    for _ in range(DEPTH):
        linear = nn.Linear(WIDTH, WIDTH, bias=False)
        init(linear.weight)
        layers += [linear, nn.Tanh() if act == "tanh" else nn.ReLU()]
    return nn.Sequential(*layers)


def forward_stats(model: nn.Sequential, x: tg.Tensor, probe: np.ndarray) -> tuple[list[tg.Tensor], list[float]]:
    """Each hidden layer's output, and each Linear's |dL/dW| for L = sum(output * probe)."""
    hs, h = [], x
    for i in range(0, len(model), 2):
        h = model[i + 1](model[i](h))
        hs.append(h)
    model.zero_grad()
    (h * tg.Tensor(probe)).sum().backward()
    return hs, [float(np.linalg.norm(model[i].weight.grad)) for i in range(0, len(model), 2)]


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)
    n = 500 if opts.quick else 1000
    x = tg.randn(n, WIDTH)
    probe = tg.randn(n, WIDTH).numpy()
    say(f"""Input: {n} samples of {WIDTH} unit-Gaussian features. Every configuration below is 10 layers of
        {WIDTH} units, no biases, the same input; only the activation and the initial weights differ.
        The course prints the same experiment; its numbers are in the 'course' columns.""")

    stds, grads, models = {}, {}, {}
    for name in CONFIGS:
        tg.manual_seed(1)
        models[name] = build(name)
        hs, grads[name] = forward_stats(models[name], x, probe)
        stds[name] = [float(h.numpy().std()) for h in hs]

    heading("Small random weights: 0.01 * randn")
    say("""Each layer multiplies the spread by about 0.01 * sqrt(500) = 0.22, so after ten layers
        nothing is left. The backward pass multiplies by the same W, so the gradients die too.""")
    table(["layer", "std (ours)", "std (course)", "0.2236^layer"],
          [[i + 1, s, c, 0.2236 ** (i + 1)] for i, (s, c) in enumerate(zip(stds["small"], SEED_STD["small"]))], ".3g")
    check("layers 1-5: std vs the course's table", stds["small"][:5], SEED_STD["small"][:5], rel=0.15)
    check("layer 10 std", stds["small"][-1], at_most=1e-5, note="'all activations become zero'")

    heading("Large random weights: 1.0 * randn")
    sat = float((np.abs(forward_stats(models["large"], x, probe)[0][-1].numpy()) > 0.99).mean())
    say(f"""Now every pre-activation is huge, tanh sits at -1 or +1 ({sat:.0%} of the last layer's outputs
        beyond |0.99|) and its local gradient 1 - tanh^2 is almost 0: the units are saturated.""")
    table(["layer", "std (ours)", "std (course)"],
          [[i + 1, s, c] for i, (s, c) in enumerate(zip(stds["large"], SEED_STD["large"]))], ".3f")
    check("every layer's std", stds["large"], SEED_STD["large"], rel=0.03)
    check("outputs saturated beyond |0.99|", sat, at_least=0.7)

    heading("Xavier with tanh, then with ReLU; He with ReLU")
    say("""With Var(w) = 1/fan_in the variance of w.x matches the variance of x, so tanh activations
        keep a healthy spread. The derivation assumes a zero-centred, roughly linear activation:
        ReLU zeroes half of its inputs and halves the variance at every layer, and He's extra
        factor 2 puts it back.""")
    table(["layer", "Xavier tanh", "(course)", "Xavier ReLU", "(course)", "He ReLU", "(course)"],
          [[i + 1, stds["xavier"][i], SEED_STD["xavier"][i], stds["xavier_relu"][i], SEED_STD["xavier_relu"][i],
            stds["he_relu"][i], SEED_STD["he_relu"][i]] for i in range(DEPTH)], ".3f")
    check("Xavier tanh vs the course's table", stds["xavier"], SEED_STD["xavier"], rel=0.1)
    say("""Theory for ReLU: if the pre-activation is N(0, s^2), the output's std is s sqrt(1/2 - 1/(2 pi)) =
        0.584 s. With He weights s stays sqrt(2) (std 0.826 at every layer); with Xavier weights s
        shrinks by 1/sqrt(2) per layer. Each layer's actual gain wobbles by a few percent with only
        500 units, and the wobbles compound, so compare the per-layer trend rather than single layers.""")
    trend = {c: (stds[c][-1] / stds[c][0]) ** (1 / (DEPTH - 1)) for c in ("xavier_relu", "he_relu")}
    check("Xavier ReLU: layer 1 std", stds["xavier_relu"][0], 0.584, rel=0.05, note="theory 0.584; course 0.582")
    check("Xavier ReLU: std ratio per layer", trend["xavier_relu"], 0.7071, tol=0.05, note="theory 1/sqrt(2)")
    check("He ReLU: layer 1 std", stds["he_relu"][0], 0.826, rel=0.05, note="theory 0.826; course 0.825")
    check("He ReLU: std ratio per layer", trend["he_relu"], 1.0, tol=0.05, note="theory 1: stable through depth")
    check("Xavier ReLU, layers 1-10 vs the course's table", stds["xavier_relu"], SEED_STD["xavier_relu"], rel=0.35)
    check("He ReLU, layers 1-10 vs the course's table", stds["he_relu"], SEED_STD["he_relu"], rel=0.3)

    heading("Gradient flow: |dL/dW| per layer")
    say("""Backward, from a loss L = sum(output * r) with a fixed random r. A layer's weight gradient is
        (its input)^T (the gradient arriving at its output): both factors shrink with small weights.""")
    table(["layer"] + [CONFIGS[c][2] for c in CONFIGS],
          [[i + 1] + [grads[c][i] for c in CONFIGS] for i in range(DEPTH)], ".2e")
    check("small init: largest |dL/dW| / smallest Xavier-tanh |dL/dW|", max(grads["small"]) / min(grads["xavier"]),
          at_most=1e-3, note="no learning")
    say("""The 1.0 column is unstable in the other direction. Most local gradients are tiny, but each
        backward step also multiplies by weights 22 times larger than Xavier's (1 against 1/sqrt(500)), and at this
        depth the product grows towards the input: the first layer's gradient is orders of
        magnitude larger than the last one's, so no single learning rate suits every layer.""")
    check("1.0 init: |dL/dW| of layer 1 / layer 10", grads["large"][0] / grads["large"][-1], at_least=100.0)
    check("He ReLU: largest / smallest |dL/dW| over layers", max(grads["he_relu"]) / min(grads["he_relu"]),
          at_most=3.0, note="every layer learns at a similar pace")
    for name in ("small", "he_relu"):
        save_graph(opts, viz.grad_flow(models[name]), f"10_grad_flow_{name}")

    heading("The same on digits, with a real loss (tgcv flow mlp --compare small,xavier)")
    say("""A 6-layer tanh MLP (784 -> 100 x 6 -> 10) on one batch of 128 shipped digits with cross-entropy, the
        net `tgcv flow mlp` draws. viz.flow calls a layer vanishing when rho = ||dL/dW|| / ||W||, the size
        of an SGD step at lr 1 relative to the weight, is below 1e-4, exploding above 10.""")
    xd, yd = input_batch((784,), 128)
    flows = {}
    for init in ("small", "xavier"):
        tg.manual_seed(0)
        flows[init] = measure(deep_mlp(6, 100, "tanh", init), xd, yd)[0]
    table(["layer", "rho, 0.01 init", "verdict", "rho, Xavier", "verdict"],
          [[a["name"], a["ratio"], a["status"], b["ratio"], b["status"]]
           for a, b in zip(flows["small"], flows["xavier"])], ".2e")
    check("0.01 init: layers vanishing, of 7", sum(r["status"] == "vanishing" for r in flows["small"]), 7)
    check("Xavier: layers healthy, of 7", sum(r["status"] == "healthy" for r in flows["xavier"]), 7)
    check("Xavier / 0.01 init: first layer's rho", flows["xavier"][0]["ratio"] / flows["small"][0]["ratio"],
          at_least=1e4)
    if opts.out is not None and pyplot() is not None:
        from viz.flowsheet import sheet

        made = sheet([("tanh, 0.01 init", flows["small"]), ("tanh, Xavier init", flows["xavier"])],
                     opts.out / "10_flow_init.png", title="6-layer tanh MLP on digits, at step 1")
        print(f"  figure: {made.path}")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for name in CONFIGS:
            axes[0].semilogy(range(1, DEPTH + 1), np.maximum(stds[name], 1e-12), "o-", label=CONFIGS[name][2])
            axes[1].semilogy(range(1, DEPTH + 1), grads[name], "o-", label=CONFIGS[name][2])
        axes[0].set(xlabel="layer", title="activation std")
        axes[1].set(xlabel="layer", title="|dL/dW|")
        axes[1].legend(fontsize=7)
        save_figure(opts, fig, "10_weight_init_stats")


if __name__ == "__main__":
    run(main)
