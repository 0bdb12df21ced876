"""Batch normalization: make the activations unit Gaussian, on purpose.

Instead of hoping the initialization keeps each layer's activations well
scaled, batch normalization forces it: for every feature it subtracts the
mini-batch mean and divides by the mini-batch standard deviation, then lets the
network rescale with learned gamma and beta. At test time it uses running
averages collected during training instead of the batch's own statistics.
"""
from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as a file: make the checkout's `lessons` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

import tinygrad_cv as tg
import tinygrad_cv.nn.functional as F
from lessons._lesson import check, digits, heading, plots_wanted, pyplot, run, save_figure, say, start, table
from tinygrad_cv import nn, optim
from tinygrad_cv.models.deep import deep_mlp
from viz.flow import input_batch, measure


def deep_net(depth: int, width: int, bn: bool) -> nn.Sequential:
    """784 -> depth x (Linear, [BatchNorm1d], Sigmoid) -> 10, with small 0.01 * randn weights."""
    layers: list[nn.Module] = []
    fan_in = 784
    for _ in range(depth):
        linear = nn.Linear(fan_in, width)
        nn.init.small_random_(linear.weight, std=0.01)
        nn.init.zeros_(linear.bias)
        layers += [linear] + ([nn.BatchNorm1d(width)] if bn else []) + [nn.Sigmoid()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 10))
    return nn.Sequential(*layers)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, steps: int) -> list[float]:
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loader = tg.data.DataLoader((x, y), batch_size=100, shuffle=True, seed=0, drop_last=True)
    losses: list[float] = []
    while len(losses) < steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("Normalize each feature over the mini-batch")
    rng = np.random.default_rng(0)
    means, stds = np.array([5.0, -3.0, 0.0, 100.0]), np.array([2.0, 0.1, 1.0, 30.0])
    x = tg.Tensor(rng.normal(means, stds, size=(64, 4)))
    out = F.batch_norm(x, None, None, training=True).numpy()
    say("""A batch of 64 examples with 4 features on wildly different scales goes through F.batch_norm in
        training mode: mu = mean over the batch, sigma^2 = biased variance over the batch,
        x_hat = (x - mu) / sqrt(sigma^2 + eps), y = gamma x_hat + beta (here gamma = 1, beta = 0).""")
    table(["feature", "mean in", "std in", "mean out", "std out"],
          [[j, x.numpy()[:, j].mean(), x.numpy()[:, j].std(), out[:, j].mean(), out[:, j].std()] for j in range(4)],
          ".3g")
    check("per-feature mean after batch norm", out.mean(0), 0.0, tol=1e-5)
    check("per-feature std after batch norm", out.std(0), 1.0, tol=1e-3, note="sqrt(var / (var + eps))")
    gamma = tg.Tensor(x.numpy().std(0) * np.sqrt(1 + 1e-5 / x.numpy().var(0)))
    beta = tg.Tensor(x.numpy().mean(0))
    back = F.batch_norm(x, None, None, gamma, beta, training=True).numpy()
    say("""The last step can undo the first three: with gamma = sqrt(sigma^2 + eps) and beta = mu the layer
        returns its input unchanged. Normalization is the default, not a constraint; the network can
        learn its way out if that helps.""")
    check("with gamma = sigma and beta = mu, output == input", float(np.abs(back - x.numpy()).max()), 0.0,
          tol=1e-3)

    heading("Running statistics for test time")
    bn = nn.BatchNorm1d(4)
    batch = tg.Tensor(rng.normal(means, stds, size=(64, 4)))
    bn(batch)
    say("""In training mode the layer also keeps running averages, with momentum 0.1 as in PyTorch:
        running = 0.9 running + 0.1 (batch statistic), the variance unbiased (divided by m - 1).""")
    check("running mean after one batch", bn.running_mean.numpy(), 0.1 * batch.numpy().mean(0), tol=1e-4)
    check("running var after one batch", bn.running_var.numpy(), 0.9 + 0.1 * batch.numpy().var(0, ddof=1), rel=1e-4)
    for _ in range(100 if opts.quick else 300):
        bn(tg.Tensor(rng.normal(means, stds, size=(64, 4))))
    check("running mean after many batches, in units of each feature's std", (bn.running_mean.numpy() - means) / stds,
          0.0, tol=0.15)
    check("running std after many batches", np.sqrt(bn.running_var.numpy()), stds, rel=0.1)

    heading("Training mode versus eval mode")
    x0 = rng.normal(means, stds, size=(1, 4))
    batch_a = tg.Tensor(np.r_[x0, rng.normal(means, stds, size=(31, 4))])
    batch_b = tg.Tensor(np.r_[x0, rng.normal(means, stds, size=(31, 4)) * 3])
    bn.train()
    train_a, train_b = bn(batch_a).numpy()[0], bn(batch_b).numpy()[0]
    bn.eval()
    eval_a, eval_b = bn(batch_a).numpy()[0], bn(batch_b).numpy()[0]
    say("""In training mode the same example comes out differently depending on which other examples
        share its batch (a little noise that also acts as a regularizer). In eval mode the fixed
        running statistics make the output a plain function of the example.""")
    check("train mode: same example, two batches, largest difference", float(np.abs(train_a - train_b).max()),
          at_least=0.05)
    check("eval mode: same example, two batches, largest difference", float(np.abs(eval_a - eval_b).max()), 0.0,
          tol=1e-6)
    expected = (x0[0] - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5)
    check("eval output = (x - running_mean) / sqrt(running_var + eps)", eval_a, expected, tol=1e-4)

    heading("A deep sigmoid network, with and without batch norm")
    depth, steps = (6, 100) if opts.quick else (8, 500)
    xs, ys = digits("train", 1000 if opts.quick else 8000)
    xs = xs - xs.mean(0)
    say(f"""{depth} hidden layers of 100 sigmoid units, weights 0.01 * randn, the same data, learning rate and
        {steps} SGD steps. Without normalization the small weights shrink the signal layer after layer
        and sigmoids pass back at most 1/4 of the gradient each: the loss barely leaves log 10.
        Inserting BatchNorm1d after each Linear (before the nonlinearity) keeps every layer's
        input at unit scale.""")
    results = {}
    for bn_on in (False, True):
        tg.manual_seed(0)
        results[bn_on] = train(deep_net(depth, 100, bn_on), xs, ys, steps)
    table(["step", "loss without BN", "loss with BN"],
          [[s, results[False][s - 1], results[True][s - 1]] for s in (1, steps // 4, steps // 2, steps)], ".3f")
    late = {k: float(np.mean(v[-20:])) for k, v in results.items()}
    check("without BN: mean loss over the last 20 steps", late[False], at_least=2.0, note="stalled near log 10 = 2.303")
    check("with BN: mean loss over the last 20 steps", late[True], at_most=1.0)

    heading("Why: the gradient flow at the first step (tgcv flow mlp --act sigmoid --compare nobn,bn)")
    say(f"""The same two {depth}-layer sigmoid nets, fresh, one batch of 100 digits: rho = ||dL/dW|| / ||W||
        per layer, the size of an SGD step relative to the weight, with the verdict bands of viz.flow
        (vanishing below 1e-4, exploding above 10).""")
    xf, yf = input_batch((784,), 100)
    flow = {}
    for bn_on in (False, True):
        tg.manual_seed(0)
        flow[bn_on] = measure(deep_mlp(depth, 100, "sigmoid", "small", bn_on), xf, yf)[0]
    linears = {k: [r for r in rows if r["type"] == "Linear"] for k, rows in flow.items()}
    table(["Linear", "rho without BN", "verdict", "rho with BN", "verdict"],
          [[i, a["ratio"], a["status"], b["ratio"], b["status"]]
           for i, (a, b) in enumerate(zip(linears[False], linears[True]))], ".2e")
    check("without BN: layers in the vanishing band", sum(r["status"] == "vanishing" for r in flow[False]),
          at_least=depth // 2, note="the first layers barely move")
    check("without BN: first layer's rho", flow[False][0]["ratio"], at_most=1e-6)
    check(f"with BN: layers in the healthy band, of all {len(flow[True])} (Linear and BatchNorm1d)",
          sum(r["status"] == "healthy" for r in flow[True]), len(flow[True]))
    say("""Without normalization each sigmoid passes back at most 1/4 of the gradient and each small weight
        matrix shrinks it again, so the first layers get a gradient millions of times too small to learn
        from: the loss above sits at log 10. After every Linear the batch norm rescales the signal to unit
        size, forward and backward, and the whole net is in the healthy band from the first step.""")
    if opts.out is not None and pyplot() is not None:
        from viz.flowsheet import sheet

        made = sheet([("sigmoid, no batch norm", flow[False]), ("sigmoid, batch norm", flow[True])],
                     opts.out / "11_flow_batch_norm.png", title=f"{depth}-layer sigmoid MLP, 0.01 init, at step 1")
        print(f"  figure: {made.path}")

    plt = plots_wanted(opts)
    if plt is not None:
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        ax.plot(results[False], label="without batch norm")
        ax.plot(results[True], label="with batch norm")
        ax.axhline(np.log(10), ls="--", color="gray", lw=0.8)
        ax.set(xlabel="step", ylabel="training loss", title=f"{depth}-layer sigmoid net")
        ax.legend()
        save_figure(opts, fig, "11_batch_norm_training")


if __name__ == "__main__":
    run(main)
