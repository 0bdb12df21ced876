"""LeNet-5 on MNIST: the first ConvNet, trained end to end on the shipped digits.

LeCun's LeNet-5 (1998) set the pattern every later ConvNet follows: convolution,
non-linearity and pooling twice, then fully-connected layers down to ten class
scores. The course describes the original with average pooling and sigmoid/tanh
units; the library's default models.lenet5() keeps the layer sizes but uses the
later ReLU and max pooling. We follow a digit through its layers, count its
parameters, train the modern variant with the library's recipe
(tinygrad_cv.train), look at what it learned (the first-layer filters and the
confusion matrix of its mistakes), and finally race it against the course's
average-pooling tanh and sigmoid versions.
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
from lessons._lesson import accuracy, check, heading, plots_wanted, run, save_figure, say, start, table, train_steps
from tinygrad_cv import models, optim, train


def race(activation: str, pool: str, images: np.ndarray, labels: np.ndarray, steps: int,
         test_x: np.ndarray, test_y: np.ndarray) -> list:
    """Train lenet5(activation, pool) for ``steps`` Adam steps (constant lr 4e-3, seed 0); its row."""
    tg.manual_seed(0)
    net = models.lenet5(activation=activation, pool=pool)
    opt = optim.Adam(net.parameters(), lr=4e-3)
    loader = train.make_loader(images, labels, 32, seed=0)
    loss = train_steps(net, opt, loader, steps)
    with tg.no_grad():
        scores = net(tg.Tensor(train.prepare(test_x)))
    return [f"{activation} + {pool} pool", loss.item(), accuracy(scores, test_y)]


def main(argv: list[str] | None = None) -> None:
    opts = start(__doc__, argv)

    heading("A digit's way through LeNet-5 (modern variant: ReLU, max pooling)")
    model = models.lenet5()
    x = tg.Tensor(train.prepare(tg.data.mnist("test")[0][:2]))
    rows, h = [["input", "", tuple(x.shape[1:]), 0]], x
    for name, block in (("features", model.features), ("classifier", model.classifier)):
        if name == "classifier":
            h = model.flatten(h)
            rows.append(["flatten", "Flatten", tuple(h.shape[1:]), 0])
        for i, layer in enumerate(block):
            h = layer(h)
            rows.append([f"{name}.{i}", type(layer).__name__, tuple(h.shape[1:]),
                         sum(p.data.size for p in layer.parameters())])
    table(["layer", "type", "output (C, H, W)", "params"], [[a, b, "x".join(map(str, c)), d] for a, b, c, d in rows])
    shapes = [r[2] for r in rows]
    say("""conv1 pads by 2 so its 5x5 filters keep 28x28; each 2x2 pool halves the size; conv2 has no
        padding, (14 - 5)/1 + 1 = 10; the last pool leaves 16 maps of 5x5 = 400 numbers for the
        fully-connected layers 400 -> 120 -> 84 -> 10.""")
    check("after conv1", shapes[1], (6, 28, 28), note="(28 - 5 + 2*2)/1 + 1 = 28")
    check("after pool1", shapes[3], (6, 14, 14))
    check("after conv2", shapes[4], (16, 10, 10), note="(14 - 5)/1 + 1 = 10")
    check("after pool2 and flatten", shapes[7], (400,))
    n_params = sum(p.data.size for p in model.parameters())
    by_hand = (6 * 5 * 5 * 1 + 6) + (16 * 5 * 5 * 6 + 16) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    check("total parameters", n_params, by_hand, note="156 + 2,416 + 48,120 + 10,164 + 850")
    say(f"""Of the {n_params:,} parameters, the two conv layers hold only {156 + 2416:,}: weight sharing makes
        convolution cheap in parameters, and the first fully-connected layer holds most of the rest.""")

    heading("Before training: the loss should be about ln 10")
    say("""With small random weights the ten scores are nearly equal, the softmax gives each class about
        1/10, and the cross-entropy loss is -ln(1/10) = ln 10 = 2.303. A very different first loss
        means a bug (or a bad initialization) before any training has happened.""")
    images, labels = tg.data.mnist("train")
    with tg.no_grad():
        first = F.cross_entropy(model(tg.Tensor(train.prepare(images[:500]))), tg.Tensor(labels[:500])).item()
    check("loss of the untrained network on 500 digits", first, math.log(10), tol=0.15, note="theory: ln 10")

    heading("Training with the library's recipe")
    config = train.TrainConfig(epochs=2, limit=3000) if opts.quick else train.TrainConfig()
    say(f"""tinygrad_cv.train.fit runs the recipe: {config.optimizer.capitalize()} at lr {config.learning_rate:g},
        batches of
        {config.batch_size}, a linear warmup then cosine decay of the learning rate, inputs normalised with
        MNIST's mean and standard deviation, random shifts of up to {config.augment} pixel(s). Here: {config.epochs}
        epoch(s) over {config.limit or len(images)} training digits; after every epoch the network is
        evaluated on the 2,000 held-out digits.""")
    lines: list[str] = []
    result = train.fit(config, progress=False, log=lambda line: (lines.append(line), print("    " + line)))
    acc = result.history[-1].accuracy
    check("one line per epoch", sum(line.startswith("epoch ") for line in lines), config.epochs)
    check("last epoch's mean training loss, far below the initial ln 10", result.history[-1].loss,
          at_most=0.25 * math.log(10))
    if opts.quick:
        check("held-out accuracy after two short epochs", acc, at_least=0.9, note="quick mode: 3,000 digits")
    else:
        check("held-out accuracy after the default run", acc, at_least=0.98, note="the recipe's promise")

    heading("Where does it go wrong?")
    test_x, test_y = tg.data.mnist("test")
    net = result.model
    net.eval()
    with tg.no_grad():
        pred = np.concatenate([net(tg.Tensor(train.prepare(test_x[i:i + 500]))).data.argmax(1)
                               for i in range(0, len(test_x), 500)])
    conf = np.zeros((10, 10), dtype=np.int64)
    np.add.at(conf, (test_y, pred), 1)
    print("    true \\ predicted " + " ".join(f"{c:4d}" for c in range(10)))
    for c in range(10):
        print(f"    {c:17d} " + " ".join(f"{v:4d}" for v in conf[c]))
    off = conf.copy()
    np.fill_diagonal(off, 0)
    a, b = np.unravel_index(off.argmax(), off.shape)
    say(f"""Rows are the true digits, columns the network's answers; the diagonal holds the correct ones.
        The most frequent mistake: a {a} called {b} ({off[a, b]} times).""")
    check("confusion matrix diagonal / total = accuracy", np.trace(conf) / conf.sum(), acc, tol=1e-12)
    check("every digit is recognised more often than anything else",
          bool(all(conf[c, c] == conf[c].max() for c in range(10))), True)

    heading("The course's LeNet-5: average pooling and tanh or sigmoid")
    n_race, steps = (1500, 100) if opts.quick else (3000, 200)
    say(f"""The 1998 network averaged each 2x2 window (subsampling) and squashed with tanh/sigmoid-like
        units; models.lenet5(activation=..., pool="avg") builds that version with the same layer
        sizes and parameter count. Three versions, the same seed, data ({n_race:,} training digits) and
        {steps} Adam steps at a constant lr 4e-3, then accuracy on the first 1,000 test digits:""")
    rows = [race(a, p, images[:n_race], labels[:n_race], steps, test_x[:1000], test_y[:1000])
            for a, p in (("relu", "max"), ("tanh", "avg"), ("sigmoid", "avg"))]
    table(["network", "last batch loss", "test accuracy"], rows, ".3f")
    acc_race = {r[0]: r[2] for r in rows}
    modern, classic, sig = acc_race["relu + max pool"], acc_race["tanh + avg pool"], acc_race["sigmoid + avg pool"]
    check("parameters of the course's version", sum(p.data.size for p in models.lenet5(activation="tanh", pool="avg").parameters()),
          n_params, note="pooling and activations have none")
    check("tanh + avg pool learns", classic, at_least=0.85 if opts.quick else 0.9)
    check("ReLU + max pool - tanh + avg pool", modern - classic, at_least=0.01, note="the modern variant learns faster")
    check("sigmoid + avg pool lags far behind tanh", classic - sig, at_least=0.15 if opts.quick else 0.1)
    say(f"""The course's version works ({classic:.1%}), but in the same short run ReLU with max pooling gets
        further ({modern:.1%}): ReLU does not saturate and max pooling passes on the strongest response.
        Sigmoid is far behind ({sig:.1%}): its outputs are not zero-centred and its largest local
        gradient is 1/4, so every layer shrinks the signal flowing back, exactly the drawbacks the
        course lists. That head start is why the library's default is the ReLU + max-pool
        variant.""")

    plt = plots_wanted(opts)
    if plt is not None:
        w = net.features[0].weight.data[:, 0]
        fig, axes = plt.subplots(1, 6, figsize=(9, 1.9))
        for i, ax in enumerate(axes):
            ax.imshow(w[i], cmap="RdBu_r", vmin=-abs(w).max(), vmax=abs(w).max())
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"filter {i}", fontsize=8)
        fig.suptitle("conv1: the six learned 5x5 filters (red +, blue -)")
        save_figure(opts, fig, "19_conv1_filters")
        fig, ax = plt.subplots(figsize=(5, 4.4))
        ax.imshow(np.log1p(conf), cmap="Blues")
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="w" if i == j else "k")
        ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
               title=f"confusion matrix, accuracy {acc:.1%}")
        save_figure(opts, fig, "19_confusion")
        if len(result.step_losses) > 1:
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.plot(result.step_losses, lw=0.8)
            ax.axhline(math.log(10), color="k", ls="--", lw=0.6)
            ax.set(xlabel="step", ylabel="training loss", yscale="log", title="loss per batch (dashed: ln 10)")
            save_figure(opts, fig, "19_loss")


if __name__ == "__main__":
    run(main)
